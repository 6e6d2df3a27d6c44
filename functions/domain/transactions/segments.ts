import { recordBytes } from '../messages.js';
import { TX } from './limits.js';
import type { PreparedMessage } from './model.js';

/** One segment of a commit: a partition's messages (indexes into the transaction's messages) that fit one item. */
export interface PlannedSegment {
  readonly topicKey: string;
  readonly partition: number;
  readonly indexes: readonly number[];
}

/**
 * How a transaction's messages become segments: per partition in prepare order, a new segment whenever
 * one would pass the segment size (a DynamoDB item holds 400 KB). `skip` leaves out messages found to be
 * duplicates at commit.
 */
export function segmentPlan(messages: readonly PreparedMessage[], skip: ReadonlySet<number> = new Set()): PlannedSegment[] {
  const byPartition = new Map<string, { topicKey: string; partition: number; chunks: number[][]; bytes: number }>();
  messages.forEach((m, index) => {
    if (skip.has(index)) return;
    const key = `${m.topicKey}#${m.partition}`;
    let entry = byPartition.get(key);
    if (!entry) {
      entry = { topicKey: m.topicKey, partition: m.partition, chunks: [[]], bytes: 0 };
      byPartition.set(key, entry);
    }
    const size = recordBytes(m.record) + 1;
    if (entry.bytes + size > TX.maxSegmentBytes && entry.chunks.at(-1)!.length > 0) {
      entry.chunks.push([]);
      entry.bytes = 0;
    }
    entry.chunks.at(-1)!.push(index);
    entry.bytes += size;
  });
  return [...byPartition.values()].flatMap((e) => e.chunks.map((indexes) => ({ topicKey: e.topicKey, partition: e.partition, indexes })));
}
