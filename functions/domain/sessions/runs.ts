import type { SessionRecord } from '../ports.js';

export type Position = readonly [partition: number, offset: number];

/**
 * A request's places as runs of consecutive offsets on one partition, in message order. Unkeyed messages
 * of one request share a partition, so a request of 100 is usually one run of 12 bytes, not 100 pairs:
 * the record stays a fraction of a kilobyte whatever the batch (a write is billed per started KB).
 */
export function runsOf(positions: readonly Position[]): Array<[number, number, number]> {
  const runs: Array<[number, number, number]> = [];
  for (const [partition, offset] of positions) {
    const last = runs.at(-1);
    if (last && last[0] === partition && last[1] + last[2] === offset) last[2]++;
    else runs.push([partition, offset, 1]);
  }
  return runs;
}

/** The place of each sequence a record covers. */
export function positionsOf(record: SessionRecord): Map<number, Position> {
  const out = new Map<number, Position>();
  let sequence = record.first;
  for (const [partition, offset, count] of record.runs) {
    for (let i = 0; i < count; i++) out.set(sequence++, [partition, offset + i]);
  }
  return out;
}
