import { serverMessageId } from '../ids.js';
import { iso } from '../time.js';
import type { LogMessage, Segment } from '../messages.js';
import type { LogStore } from '../ports.js';

export function messageAt(segment: Segment, offset: number): LogMessage | undefined {
  const record = segment.records[offset - segment.base];
  if (!record) return undefined;
  return {
    id: record.i ?? serverMessageId(segment.producedAt, segment.partition, offset),
    partition: segment.partition,
    offset,
    producedAt: iso(segment.producedAt),
    ...(record.x !== undefined ? { bodyBase64: record.x } : { body: record.b }),
    ...(record.k !== undefined ? { key: record.k } : {}),
    tags: record.t ?? [],
    headers: record.h ?? {},
    ...(record.d !== undefined ? { deliverAt: iso(record.d) } : {}),
  };
}

const contains = (s: Segment, offset: number) => offset >= s.base && offset < s.base + s.count;

/** Reads single offsets of one partition, fetching each segment once. */
export class OffsetReader {
  private readonly segments: Segment[] = [];

  constructor(
    private readonly log: LogStore,
    private readonly topicKey: string,
    private readonly partition: number,
  ) {}

  async at(offset: number): Promise<LogMessage | undefined> {
    let segment = this.segments.find((s) => contains(s, offset));
    if (!segment) {
      segment = await this.log.segmentAtOrBefore(this.topicKey, this.partition, offset);
      if (!segment) return undefined;
      this.segments.push(segment);
    }
    return contains(segment, offset) ? messageAt(segment, offset) : undefined;
  }
}

export interface ReadBatch {
  readonly messages: LogMessage[];
  /** The first offset not read. */
  readonly next: number;
  /** Base of the segment holding `next`, or `next` at a segment boundary. */
  readonly nextSegmentHint: number;
  /** Bytes of the messages read, as the budget counted them. */
  readonly bytes?: number;
}

/** Whether segments, read from `from` on, skip an offset. */
function hasHole(segments: readonly Segment[], from: number): boolean {
  let expected = from;
  for (const s of segments) {
    if (s.base + s.count <= expected) continue;
    if (s.base > expected) return true;
    expected = s.base + s.count;
  }
  return false;
}

/** Most segments one read fetches (each holds at least one message; a Query page is also capped at 1 MB). */
const MAX_SEGMENTS_PER_READ = 16;

/**
 * Reads up to `limit` messages from `from` on. `segmentHint` (base of the segment holding `from`) lets
 * the read start with a forward Query that costs almost nothing when the log has nothing new.
 *
 * Cost: segments are immutable, so they are read eventually consistent (half price); such a read may
 * miss the newest segments, which only delays them. A hole in what comes back is never skipped on an
 * eventually consistent answer: only a strongly consistent read can show that retention removed it.
 * Segments are fetched one, then two, then four… so a small pull does not pay for a large read.
 */
/** Bytes a message adds to a reply: its JSON plus the delivery fields (receipt, deliveryCount) and separators. */
export const replyBytes = (message: LogMessage) => Buffer.byteLength(JSON.stringify(message), 'utf8') + 96;

export interface ReadBudget {
  /** Bytes the messages read may add to the reply (LIMITS.maxReplyMessageBytes for a whole reply). */
  readonly maxBytes: number;
  /** What a message costs of `maxBytes` (0 for messages that will not be returned, e.g. filtered out). */
  readonly sizeOf?: (message: LogMessage) => number;
}

export async function readFrom(
  log: LogStore,
  topicKey: string,
  partition: number,
  from: number,
  segmentHint: number,
  limit: number,
  budget: ReadBudget = { maxBytes: Infinity },
): Promise<ReadBatch> {
  if (limit <= 0) return { messages: [], next: from, nextSegmentHint: segmentHint };
  let hint = segmentHint;
  if (hint < 0 || hint > from) {
    const holding = await log.segmentAtOrBefore(topicKey, partition, from);
    hint = holding && contains(holding, from) ? holding.base : from;
  }
  const messages: LogMessage[] = [];
  const sizeOf = budget.sizeOf ?? replyBytes;
  let bytes = 0;
  let full = false;
  let next = from;
  let nextSegmentHint = hint;
  let queryFrom = hint;
  for (let batchSize = 1; messages.length < limit; batchSize = Math.min(batchSize * 2, MAX_SEGMENTS_PER_READ)) {
    let segments = await log.segmentsFrom(topicKey, partition, queryFrom, batchSize, false);
    if (hasHole(segments, next)) {
      segments = await log.segmentsFrom(topicKey, partition, queryFrom, batchSize, true);
    }
    let progressed = false;
    for (const segment of segments) {
      if (segment.base + segment.count <= next) continue;
      if (segment.base > next) next = segment.base; // retention removed the hole (confirmed by a consistent read)
      while (next < segment.base + segment.count && messages.length < limit) {
        const message = messageAt(segment, next);
        if (message) {
          // A reply must fit Lambda's 6 MB response limit: stop before the message that would not fit.
          const size = budget.maxBytes === Infinity ? 0 : sizeOf(message);
          if (bytes + size > budget.maxBytes) {
            full = true;
            break;
          }
          bytes += size;
          messages.push(message);
        }
        next++;
      }
      progressed = true;
      nextSegmentHint = next < segment.base + segment.count ? segment.base : next;
      queryFrom = segment.base + 1;
      if (messages.length >= limit || full) break;
    }
    if (!progressed || full || segments.length < batchSize) break;
  }
  return { messages, next, nextSegmentHint, bytes };
}
