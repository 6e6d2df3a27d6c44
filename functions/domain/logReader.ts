import { serverMessageId } from './ids.js';
import { iso } from './time.js';
import type { LogMessage, Segment } from './messages.js';
import type { LogStore } from './ports.js';

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

  remember(segment: Segment) {
    this.segments.push(segment);
  }

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
}

/** Most segments one read fetches (each at least one message; a Query page is also capped at 1 MB). */
const MAX_SEGMENTS_PER_READ = 25;

/**
 * Reads up to `limit` messages from `from` on. `segmentHint` (base of the segment holding `from`) lets
 * the read be one forward Query that costs almost nothing when the log has nothing new.
 */
export async function readFrom(
  log: LogStore,
  topicKey: string,
  partition: number,
  from: number,
  segmentHint: number,
  limit: number,
): Promise<ReadBatch> {
  if (limit <= 0) return { messages: [], next: from, nextSegmentHint: segmentHint };
  let hint = segmentHint;
  if (hint < 0 || hint > from) {
    const holding = await log.segmentAtOrBefore(topicKey, partition, from);
    hint = holding && contains(holding, from) ? holding.base : from;
  }
  const segments = await log.segmentsFrom(topicKey, partition, hint, Math.min(limit, MAX_SEGMENTS_PER_READ));
  const messages: LogMessage[] = [];
  let next = from;
  let nextSegmentHint = hint;
  for (const segment of segments) {
    // Segments below `from` were trimmed or precede it; a base beyond `next` means retention removed the gap.
    if (segment.base + segment.count <= next) continue;
    if (segment.base > next) next = segment.base;
    while (next < segment.base + segment.count && messages.length < limit) {
      const message = messageAt(segment, next);
      if (message) messages.push(message);
      next++;
    }
    nextSegmentHint = next < segment.base + segment.count ? segment.base : next;
    if (messages.length >= limit) break;
  }
  return { messages, next, nextSegmentHint };
}
