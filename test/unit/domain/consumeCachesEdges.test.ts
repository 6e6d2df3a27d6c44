/**
 * The warm-process caches of consume (functions/domain/groups/progressCache.ts, segmentCache.ts) at their
 * edges, driven directly over the in-memory ports: what each cache learns and forgets, its bounds (items,
 * segments per partition, bytes, age, retention), the read-ahead it asks for, and that every answer is the
 * store's own. consumeCaches.test.ts covers the same caches through pull and ack.
 *
 * Sizes: the segment cache weighs a segment as JSON.stringify(records).length + 48, so a segment of one
 * record `{ b: 'x'.repeat(n) }` weighs exactly n + 58 bytes (`[{"b":"…"}]` is 10 characters around the body).
 */
import { describe, expect, it, vi } from 'vitest';
import type { PartitionProgress } from '../../../functions/domain/groups/progress.js';
import { forgetKnownProgress, knownProgress, readProgress, writeProgress } from '../../../functions/domain/groups/progressCache.js';
import { cachedLog, forgetKnownSegments } from '../../../functions/domain/groups/segmentCache.js';
import type { Segment } from '../../../functions/domain/messages.js';
import { VersionConflict, type GroupStateStore, type LogStore } from '../../../functions/domain/ports.js';
import { useClock } from '../../memory/fixtures.js';
import { memoryStores, type MemoryStores } from '../../memory/stores.js';

const clock = useClock();

// ---------------------------------------------------------------------------------------------- progress

const item = (version: number, dispatched = version): PartitionProgress => ({ dispatched, segmentHint: -1, entries: [], dead: [], version });

/** The cache's bound on known items per store (MAX_KNOWN in progressCache.ts). */
const MAX_KNOWN = 256;

/** Items v1 of partitions 0..n-1 of group `g`, learned in that order (the first is the least recently learned). */
async function learn(store: GroupStateStore, n: number) {
  for (let p = 0; p < n; p++) await writeProgress(store, 'g', p, item(1));
}

const knownPartitions = (store: GroupStateStore, n: number) =>
  Array.from({ length: n }, (_, p) => p).filter((p) => knownProgress(store, 'g', p) !== undefined);

describe('known progress: what a read teaches', () => {
  it('a read learns the stored item; an absent item teaches nothing', async () => {
    const { groupState } = memoryStores();
    expect(await readProgress(groupState, 'g', 0, true)).toBeUndefined();
    expect(knownProgress(groupState, 'g', 0)).toBeUndefined();
    // Written by another process: this one knows nothing of it until it reads.
    await groupState.putProgress('g', 0, item(1, 7));
    expect(knownProgress(groupState, 'g', 0)).toBeUndefined();
    expect(await readProgress(groupState, 'g', 0, true)).toEqual(item(1, 7));
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(1, 7));
  });

  it('a read older than the known item (a stale replica) is returned, but the newer known item is kept', async () => {
    const stores = memoryStores();
    const { groupState } = stores;
    await writeProgress(groupState, 'g', 0, item(1, 1));
    stores.replica.freeze();
    await writeProgress(groupState, 'g', 0, item(2, 2));
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(2, 2));
    expect(await readProgress(groupState, 'g', 0, false)).toEqual(item(1, 1));
    expect(stores.calls.at(-1)).toBe('groupState.getProgress(eventual)');
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(2, 2));
    // A strongly consistent read of the same version changes nothing either.
    expect(await readProgress(groupState, 'g', 0, true)).toEqual(item(2, 2));
    expect(stores.calls.at(-1)).toBe('groupState.getProgress');
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(2, 2));
  });

  it('items are known per group and partition, and per store object (another process knows nothing)', async () => {
    const { groupState } = memoryStores();
    await writeProgress(groupState, 'g', 0, item(1, 10));
    await writeProgress(groupState, 'g', 1, item(1, 20));
    await writeProgress(groupState, 'h', 0, item(1, 30));
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(1, 10));
    expect(knownProgress(groupState, 'g', 1)).toEqual(item(1, 20));
    expect(knownProgress(groupState, 'h', 0)).toEqual(item(1, 30));
    expect(knownProgress(groupState, 'h', 1)).toBeUndefined();
    const other: GroupStateStore = Object.create(groupState);
    expect(knownProgress(other, 'g', 0)).toBeUndefined();
    // Its read teaches it, not this process (which still knows its own item).
    expect(await readProgress(other, 'g', 1, true)).toEqual(item(1, 20));
    expect(knownProgress(other, 'g', 1)).toEqual(item(1, 20));
  });

  it('forgetKnownProgress: every store object starts cold', async () => {
    const { groupState } = memoryStores();
    const other: GroupStateStore = Object.create(groupState);
    await writeProgress(groupState, 'g', 0, item(1));
    await readProgress(other, 'g', 0, true);
    forgetKnownProgress();
    expect(knownProgress(groupState, 'g', 0)).toBeUndefined();
    expect(knownProgress(other, 'g', 0)).toBeUndefined();
  });
});

describe('known progress: what a write teaches', () => {
  it('a write that lands is known at its version', async () => {
    const { groupState } = memoryStores();
    await writeProgress(groupState, 'g', 0, item(1, 3));
    await writeProgress(groupState, 'g', 0, item(2, 5));
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(2, 5));
  });

  it('a write that loses its condition learns the item the failure returned, and the caller still sees the conflict', async () => {
    const { groupState } = memoryStores();
    const other: GroupStateStore = Object.create(groupState);
    await writeProgress(groupState, 'g', 0, item(1, 1));
    await writeProgress(other, 'g', 0, item(2, 9));
    const error = await writeProgress(groupState, 'g', 0, item(2, 4)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VersionConflict);
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(2, 9));
    expect(await groupState.getProgress('g', 0)).toEqual(item(2, 9));
  });

  it('a conflict without the current item forgets the known one', async () => {
    const { groupState } = memoryStores();
    await writeProgress(groupState, 'g', 0, item(1));
    vi.spyOn(groupState, 'putProgress').mockRejectedValueOnce(new VersionConflict());
    const error = await writeProgress(groupState, 'g', 0, item(2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VersionConflict);
    expect(knownProgress(groupState, 'g', 0)).toBeUndefined();
  });

  it('an error of unknown outcome forgets the known item (even one that carries a `current` field) and is rethrown as it was', async () => {
    const { groupState } = memoryStores();
    await writeProgress(groupState, 'g', 0, item(1));
    const reset = Object.assign(new Error('connection reset'), { current: item(5) });
    vi.spyOn(groupState, 'putProgress').mockRejectedValueOnce(reset);
    expect(await writeProgress(groupState, 'g', 0, item(2)).catch((e: unknown) => e)).toBe(reset);
    expect(knownProgress(groupState, 'g', 0)).toBeUndefined();
  });

  it('a failed write on a store that knows nothing yet rethrows the store error (nothing to forget)', async () => {
    const { groupState } = memoryStores();
    const timeout = new Error('timeout');
    vi.spyOn(groupState, 'putProgress').mockRejectedValueOnce(timeout).mockRejectedValueOnce(new VersionConflict());
    expect(await writeProgress(groupState, 'g', 0, item(1)).catch((e: unknown) => e)).toBe(timeout);
    expect(await writeProgress(groupState, 'g', 0, item(1)).catch((e: unknown) => e)).toBeInstanceOf(VersionConflict);
    expect(knownProgress(groupState, 'g', 0)).toBeUndefined();
  });
});

describe('known progress: the bound', () => {
  it(`keeps ${MAX_KNOWN} items per store; the next one pushes out the least recently learned`, async () => {
    const { groupState } = memoryStores();
    await learn(groupState, MAX_KNOWN);
    expect(knownPartitions(groupState, MAX_KNOWN + 1)).toHaveLength(MAX_KNOWN);
    await writeProgress(groupState, 'g', MAX_KNOWN, item(1));
    const known = knownPartitions(groupState, MAX_KNOWN + 1);
    expect(known).toHaveLength(MAX_KNOWN);
    expect(known[0]).toBe(1);
  });

  it('learning an item again makes it the most recent', async () => {
    const { groupState } = memoryStores();
    await learn(groupState, MAX_KNOWN);
    await writeProgress(groupState, 'g', 0, item(2));
    await writeProgress(groupState, 'g', MAX_KNOWN, item(1));
    expect(knownProgress(groupState, 'g', 0)).toEqual(item(2));
    expect(knownProgress(groupState, 'g', 1)).toBeUndefined();
    // A newer version found by a read is learned as well.
    await groupState.putProgress('g', 2, item(2));
    expect(await readProgress(groupState, 'g', 2, true)).toEqual(item(2));
    await writeProgress(groupState, 'g', MAX_KNOWN + 1, item(1));
    expect(knownProgress(groupState, 'g', 2)).toEqual(item(2));
    expect(knownProgress(groupState, 'g', 3)).toBeUndefined();
  });

  it('a read of the version already known learns nothing: the item stays where it was in line', async () => {
    const { groupState } = memoryStores();
    await learn(groupState, MAX_KNOWN);
    expect(await readProgress(groupState, 'g', 0, true)).toEqual(item(1));
    await writeProgress(groupState, 'g', MAX_KNOWN, item(1));
    expect(knownProgress(groupState, 'g', 0)).toBeUndefined();
    expect(knownProgress(groupState, 'g', 1)).toEqual(item(1));
  });

  it('a conflict that returns no item takes no place among the known ones', async () => {
    const { groupState } = memoryStores();
    await learn(groupState, MAX_KNOWN);
    vi.spyOn(groupState, 'putProgress').mockRejectedValueOnce(new VersionConflict());
    expect(await writeProgress(groupState, 'g', 999, item(1)).catch((e: unknown) => e)).toBeInstanceOf(VersionConflict);
    expect(knownPartitions(groupState, MAX_KNOWN)).toHaveLength(MAX_KNOWN);
  });
});

// ---------------------------------------------------------------------------------------------- segments

const TOPIC = 'topic-edges@1';
const MB = 1024 * 1024;
/** The cache's budget for records (MAX_BYTES in segmentCache.ts). */
const MAX_BYTES = 8 * MB;

/** A segment of `count` small records. */
const segment = (base: number, count = 1, producedAt = Date.now()): Segment => ({
  partition: 0,
  base,
  count,
  producedAt,
  records: Array.from({ length: count }, (_, i) => ({ b: base + i })),
});

/** A segment of one record that the cache weighs at exactly `bytes`. */
const sized = (base: number, bytes: number): Segment => ({
  partition: 0,
  base,
  count: 1,
  producedAt: Date.now(),
  records: [{ b: 'x'.repeat(bytes - 58) }],
});

/** Stores segments in partition `partition` of the topic, as appends would have. */
function put(stores: MemoryStores, partition: number, ...segments: Segment[]) {
  const key = `${TOPIC}#${partition}`;
  const list = [...(stores.log.partitions.get(key) ?? []), ...segments.map((s) => ({ ...s, partition }))];
  stores.log.partitions.set(
    key,
    list.sort((a, b) => a.base - b.base),
  );
}

/** Reads of segments the store received (the cost the cache saves). */
const segmentReads = (stores: MemoryStores) => stores.calls.filter((c) => c === 'log.segmentAtOrBefore' || c.startsWith('log.segmentsFrom')).length;

/** The segment holding `offset` through the cache, and whether the store was asked for it. */
async function holding(view: LogStore, stores: MemoryStores, partition: number, offset: number) {
  const before = segmentReads(stores);
  const found = await view.segmentAtOrBefore(TOPIC, partition, offset);
  return { base: found?.base, fromStore: segmentReads(stores) > before };
}

/** Eventually consistent "segments from base on" through the cache: their bases, and whether the store was asked. */
async function from(view: LogStore, stores: MemoryStores, fromBase: number, limit: number) {
  const before = segmentReads(stores);
  const found = await view.segmentsFrom(TOPIC, 0, fromBase, limit, false);
  return { bases: found.map((s) => s.base), fromStore: segmentReads(stores) > before };
}

/** The limits of the eventually consistent reads the store receives (read-ahead: what each read costs). */
function askedLimits(stores: MemoryStores): number[] {
  const asked: number[] = [];
  const real = stores.log.segmentsFrom.bind(stores.log);
  vi.spyOn(stores.log, 'segmentsFrom').mockImplementation(async (topicKey, partition, fromBase, limit, consistent) => {
    if (consistent === false) asked.push(limit);
    return real(topicKey, partition, fromBase, limit, consistent);
  });
  return asked;
}

describe('known segments: answers are the store’s', () => {
  it('the segment holding an offset: a known one holds it only from its base to its end', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0, 3), segment(3, 1), segment(4, 2));
    const view = cachedLog(stores.log, 72);
    expect(await holding(view, stores, 0, 4)).toEqual({ base: 4, fromStore: true });
    expect(await holding(view, stores, 0, 1)).toEqual({ base: 0, fromStore: true });
    expect(await holding(view, stores, 0, 2)).toEqual({ base: 0, fromStore: false });
    expect(await holding(view, stores, 0, 5)).toEqual({ base: 4, fromStore: false });
    // Offset 3: the known segment at 0 is below it, but does not hold it.
    expect(await holding(view, stores, 0, 3)).toEqual({ base: 3, fromStore: true });
    expect(await holding(view, stores, 0, 3)).toEqual({ base: 3, fromStore: false });
    // Nothing stored at or before: undefined, and nothing learned.
    expect(await holding(view, stores, 1, 0)).toEqual({ base: undefined, fromStore: true });
    expect(await holding(view, stores, 1, 0)).toEqual({ base: undefined, fromStore: true });
  });

  it('a read from inside a known segment starts at its end: the next known segment answers without the store', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0, 3), segment(3, 3), segment(6, 3));
    const view = cachedLog(stores.log, 72);
    expect(await from(view, stores, 0, 2)).toEqual({ bases: [0, 3], fromStore: true });
    // The store's segments from base 1 on start with 3 (none starts inside the segment at 0).
    expect(await from(view, stores, 1, 1)).toEqual({ bases: [3], fromStore: false });
    expect(await from(view, stores, 4, 1)).toEqual({ bases: [6], fromStore: true });
  });

  it('a known segment after a gap is not served for the gap: what lies between comes from the store, in order', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0), segment(1), segment(2), segment(3));
    const view = cachedLog(stores.log, 72);
    // Known: 0 and 2, not 1.
    await holding(view, stores, 0, 0);
    await holding(view, stores, 0, 2);
    expect(await from(view, stores, 2, 1)).toEqual({ bases: [2], fromStore: false });
    expect(await from(view, stores, 0, 2)).toEqual({ bases: [0, 1], fromStore: true });
  });

  it('never more than asked: a known run is cut at the limit, a read after a partial run is cut to what is missing', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0), segment(1), segment(2), segment(3), segment(4), segment(5));
    const view = cachedLog(stores.log, 72);
    await holding(view, stores, 0, 0);
    // Segment 0 is known; the store is asked for the two after it (and, small as they are, reads ahead to
    // the end of the partition): only those two are returned.
    expect(await from(view, stores, 0, 3)).toEqual({ bases: [0, 1, 2], fromStore: true });
    expect(await from(view, stores, 0, 2)).toEqual({ bases: [0, 1], fromStore: false });
    expect(await from(view, stores, 0, 3)).toEqual({ bases: [0, 1, 2], fromStore: false });
    expect(await from(view, stores, 1, 4)).toEqual({ bases: [1, 2, 3, 4], fromStore: false });
    expect(await from(view, stores, 3, 1)).toEqual({ bases: [3], fromStore: false });
  });

  it('segments learned out of order are kept in order, once each', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0), segment(1), segment(2), segment(3));
    const view = cachedLog(stores.log, 72);
    for (const offset of [2, 0, 1, 3]) await holding(view, stores, 0, offset);
    expect(await from(view, stores, 0, 4)).toEqual({ bases: [0, 1, 2, 3], fromStore: false });
    // Read again (strongly consistent: from the store), nothing is learned twice.
    expect((await view.segmentsFrom(TOPIC, 0, 0, 4, true)).map((s) => s.base)).toEqual([0, 1, 2, 3]);
    expect(await from(view, stores, 0, 4)).toEqual({ bases: [0, 1, 2, 3], fromStore: false });
  });

  it('a segment read twice is known once', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0), segment(1), segment(2));
    const view = cachedLog(stores.log, 72);
    await view.segmentsFrom(TOPIC, 0, 0, 3, true);
    await view.segmentsFrom(TOPIC, 0, 0, 3, true);
    expect(await from(view, stores, 0, 3)).toEqual({ bases: [0, 1, 2], fromStore: false });
  });

  it('strongly consistent reads (the default) always go to the store, and teach the cache', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0), segment(1));
    const view = cachedLog(stores.log, 72);
    expect(await from(view, stores, 0, 2)).toEqual({ bases: [0, 1], fromStore: true });
    stores.replica.freeze();
    put(stores, 0, segment(2));
    // Another process's retention removed segment 0: a strong read must not see it, nor miss segment 2.
    stores.log.partitions.set(`${TOPIC}#0`, stores.log.partitions.get(`${TOPIC}#0`)!.slice(1));
    expect((await view.segmentsFrom(TOPIC, 0, 0, 10)).map((s) => s.base)).toEqual([1, 2]);
    expect(stores.calls.at(-1)).toBe('log.segmentsFrom');
    expect(await from(view, stores, 1, 2)).toEqual({ bases: [1, 2], fromStore: false });
  });

  it('eventually consistent reads that go to the store are eventually consistent there too (half the price)', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0));
    const view = cachedLog(stores.log, 72);
    await from(view, stores, 0, 1);
    expect(stores.calls.filter((c) => c.startsWith('log.segmentsFrom'))).toEqual(['log.segmentsFrom(eventual)']);
  });

  it('the other methods are the store’s own', async () => {
    const stores = memoryStores();
    const view = cachedLog(stores.log, 72);
    await view.appendSegment(TOPIC, { partition: 0, base: 0, producedAt: Date.now(), records: [{ b: 'a' }] }, [], 0);
    await view.appendSegment(TOPIC, { partition: 0, base: 1, producedAt: Date.now(), records: [{ b: 'b' }, { b: 'c' }] }, [], 0);
    expect(stores.log.partitions.get(`${TOPIC}#0`)!.map((s) => [s.base, s.count])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(await view.tail(TOPIC, 0)).toEqual(await stores.log.tail(TOPIC, 0));
    expect(await view.tail(TOPIC, 0)).toMatchObject({ base: 1, count: 2 });
    expect(await view.head(TOPIC, 0)).toEqual(await stores.log.head(TOPIC, 0));
    expect(await view.head(TOPIC, 0)).toMatchObject({ base: 0, count: 1 });
    expect(await view.segmentKeysFrom(TOPIC, 0, 1, 10)).toEqual(await stores.log.segmentKeysFrom(TOPIC, 0, 1, 10));
    expect((await view.segmentKeysFrom(TOPIC, 0, 0, 10)).map((k) => k.base)).toEqual([0, 1]);
    expect(await view.setSegmentExpiry(TOPIC, 0, 1, 12345)).toBe(true);
    expect(stores.log.expiryOf(TOPIC, 0, 1)).toBe(12345);
    expect(await view.setSegmentExpiry(TOPIC, 0, 7, 12345)).toBe(false);
    await view.deleteSegments(TOPIC, 0, [0]);
    expect(stores.log.partitions.get(`${TOPIC}#0`)!.map((s) => s.base)).toEqual([1]);
  });
});

describe('known segments: age and retention', () => {
  it('forgetKnownSegments: the next read of the same store object goes to the store (a cold process)', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0));
    const view = cachedLog(stores.log, 72);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
    expect(await holding(cachedLog(stores.log, 72), stores, 0, 0)).toEqual({ base: 0, fromStore: false });
    forgetKnownSegments();
    expect(await holding(cachedLog(stores.log, 72), stores, 0, 0)).toEqual({ base: 0, fromStore: true });
    expect(await holding(cachedLog(stores.log, 72), stores, 0, 0)).toEqual({ base: 0, fromStore: false });
  });

  it('a segment is known for 60 s from when it was read', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0));
    const view = cachedLog(stores.log, 72);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
    clock.advance(59_999);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: false });
    expect(await from(view, stores, 0, 1)).toEqual({ bases: [0], fromStore: false });
    clock.advance(1);
    expect(await from(view, stores, 0, 1)).toEqual({ bases: [0], fromStore: true });
  });

  it('a known segment is served until 5 minutes before its retention ends, not from then on', async () => {
    const stores = memoryStores();
    const producedAt = Date.now();
    put(stores, 0, segment(0, 1, producedAt));
    const view = cachedLog(stores.log, 1);
    const horizon = 3600_000 - 5 * 60_000;
    clock.set(producedAt + horizon - 30_000);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
    clock.set(producedAt + horizon - 1);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: false });
    clock.set(producedAt + horizon);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
    expect(await from(view, stores, 0, 1)).toEqual({ bases: [0], fromStore: true });
  });

  it('what this process deletes is no longer served; the rest of the partition still is', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0), segment(1), segment(2));
    const view = cachedLog(stores.log, 72);
    await view.segmentsFrom(TOPIC, 0, 0, 3, true);
    await view.deleteSegments(TOPIC, 0, [0]);
    expect(await from(view, stores, 1, 2)).toEqual({ bases: [1, 2], fromStore: false });
    expect(await holding(view, stores, 0, 0)).toEqual({ base: undefined, fromStore: true });
    // A delete in a partition this process never read.
    put(stores, 1, segment(0), segment(1));
    await view.deleteSegments(TOPIC, 1, [0]);
    expect(stores.log.partitions.get(`${TOPIC}#1`)!.map((s) => s.base)).toEqual([1]);
  });

  it('a read of this process while its delete is under way does not bring the deleted segment back', async () => {
    const stores = memoryStores();
    put(stores, 0, segment(0), segment(1));
    const deleteSegments = stores.log.deleteSegments.bind(stores.log);
    // A pull of this process reads segment 0 (from the store) between the start and the end of the delete.
    stores.log.deleteSegments = async (topicKey, partition, bases) => {
      expect(await holding(view, stores, partition, 0)).toEqual({ base: 0, fromStore: true });
      await deleteSegments(topicKey, partition, bases);
    };
    const view = cachedLog(stores.log, 72);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
    await view.deleteSegments(TOPIC, 0, [0]);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: undefined, fromStore: true });
  });
});

describe('known segments: bounds', () => {
  it('64 segments per partition: reading a 65th pushes out the oldest', async () => {
    const stores = memoryStores();
    put(stores, 0, ...Array.from({ length: 65 }, (_, i) => segment(i)));
    const view = cachedLog(stores.log, 72);
    expect(await view.segmentsFrom(TOPIC, 0, 0, 65, true)).toHaveLength(65);
    expect((await from(view, stores, 1, 64)).fromStore).toBe(false);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
  });

  it('the oldest segment pushed out of a full partition no longer counts against the byte budget', async () => {
    const stores = memoryStores();
    const each = 100_000;
    put(stores, 1, sized(0, 1_900_000));
    put(stores, 0, ...Array.from({ length: 65 }, (_, i) => sized(i, each)));
    const view = cachedLog(stores.log, 72);
    expect(await holding(view, stores, 1, 0)).toEqual({ base: 0, fromStore: true });
    // 1.9 MB + 64 × 100 KB is within the 8 MiB budget.
    await view.segmentsFrom(TOPIC, 0, 0, 65, true);
    expect(await holding(view, stores, 1, 0)).toEqual({ base: 0, fromStore: false });
    expect((await from(view, stores, 1, 64)).fromStore).toBe(false);
  });

  it('over the byte budget, the partition used least recently goes first; what goes no longer counts', async () => {
    const stores = memoryStores();
    put(stores, 0, sized(0, 5 * MB));
    put(stores, 1, sized(0, 4 * MB));
    put(stores, 2, sized(0, 3 * MB));
    const view = cachedLog(stores.log, 72);
    expect((await holding(view, stores, 0, 0)).fromStore).toBe(true);
    expect((await holding(view, stores, 1, 0)).fromStore).toBe(true);
    expect((await holding(view, stores, 2, 0)).fromStore).toBe(true);
    // 4 + 3 MB are known (5 MB went when the 4 came).
    expect(await holding(view, stores, 1, 0)).toEqual({ base: 0, fromStore: false });
    expect(await holding(view, stores, 2, 0)).toEqual({ base: 0, fromStore: false });
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
  });

  it('within the byte budget (up to exactly 8 MiB), every partition stays', async () => {
    const stores = memoryStores();
    put(stores, 0, sized(0, MB));
    put(stores, 1, sized(0, MB));
    put(stores, 2, sized(0, 4 * MB));
    put(stores, 3, sized(0, 2 * MB));
    const view = cachedLog(stores.log, 72);
    for (const p of [0, 1, 2, 3]) expect((await holding(view, stores, p, 0)).fromStore).toBe(true);
    for (const p of [0, 1, 2, 3]) expect(await holding(view, stores, p, 0)).toEqual({ base: 0, fromStore: false });
  });

  it('one partition over the budget keeps its newest segments; alone, it loses no partition but its oldest segments', async () => {
    const stores = memoryStores();
    put(stores, 0, sized(0, 5 * MB), sized(1, 4 * MB));
    put(stores, 1, sized(0, 3 * MB));
    const view = cachedLog(stores.log, 72);
    expect(await view.segmentsFrom(TOPIC, 0, 0, 2, true)).toHaveLength(2);
    // 4 MB left known; 3 more fit.
    expect((await holding(view, stores, 1, 0)).fromStore).toBe(true);
    expect(await holding(view, stores, 0, 1)).toEqual({ base: 1, fromStore: false });
    expect(await holding(view, stores, 1, 0)).toEqual({ base: 0, fromStore: false });
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
  });

  it('one partition at exactly the budget keeps all its segments', async () => {
    const stores = memoryStores();
    put(stores, 0, sized(0, 4 * MB), sized(1, MAX_BYTES - 4 * MB));
    const view = cachedLog(stores.log, 72);
    await view.segmentsFrom(TOPIC, 0, 0, 2, true);
    expect(await from(view, stores, 0, 2)).toEqual({ bases: [0, 1], fromStore: false });
  });

  it('a single segment larger than the budget is still kept (the newest is never pushed out)', async () => {
    const stores = memoryStores();
    put(stores, 0, sized(0, 9 * MB));
    const view = cachedLog(stores.log, 72);
    expect((await holding(view, stores, 0, 0)).fromStore).toBe(true);
    expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: false });
  });

  describe.each([
    { other: 3 * MB, kept: true },
    { other: 4.5 * MB, kept: false },
  ])('segments that aged out no longer count against the budget (then $other bytes elsewhere)', ({ other, kept }) => {
    it(kept ? 'fit beside what is still known' : 'push the partition out', async () => {
      const stores = memoryStores();
      put(stores, 0, sized(0, 3 * MB), sized(1, MB));
      put(stores, 1, sized(0, other));
      const view = cachedLog(stores.log, 72);
      expect((await holding(view, stores, 0, 0)).fromStore).toBe(true);
      clock.advance(30_000);
      expect((await holding(view, stores, 0, 1)).fromStore).toBe(true);
      clock.advance(30_000);
      // Segment 0 is 60 s old: read again (3 MB out, 3 MB in); segment 1 (1 MB) is still known: 4 MB in all.
      expect(await holding(view, stores, 0, 0)).toEqual({ base: 0, fromStore: true });
      expect((await holding(view, stores, 1, 0)).fromStore).toBe(true);
      expect(await holding(view, stores, 0, 1)).toEqual({ base: 1, fromStore: !kept });
    });
  });

  describe.each([
    { other: 4 * MB, kept: true },
    { other: 5.5 * MB, kept: false },
  ])('segments this process deleted no longer count against the budget (then $other bytes elsewhere)', ({ other, kept }) => {
    it(kept ? 'fit beside what is still known' : 'push the partition out', async () => {
      const stores = memoryStores();
      put(stores, 0, sized(0, 3 * MB), sized(1, 3 * MB));
      put(stores, 1, sized(0, other));
      const view = cachedLog(stores.log, 72);
      await view.segmentsFrom(TOPIC, 0, 0, 2, true);
      await view.deleteSegments(TOPIC, 0, [0]);
      // 3 MB left known.
      expect((await holding(view, stores, 1, 0)).fromStore).toBe(true);
      expect(await holding(view, stores, 0, 1)).toEqual({ base: 1, fromStore: !kept });
    });
  });
});

describe('known segments: read-ahead', () => {
  /** `n` segments that the cache weighs at `bytes` each. */
  const segments = (n: number, bytes: number) => Array.from({ length: n }, (_, i) => sized(i, bytes));

  it('big segments: read-ahead starts at one segment and doubles with every read answered in full from what was read ahead', async () => {
    const stores = memoryStores();
    put(stores, 0, ...segments(10, 20_000));
    const view = cachedLog(stores.log, 72);
    const asked = askedLimits(stores);
    for (let i = 0; i < 9; i++) expect((await from(view, stores, i, 1)).bases).toEqual([i]);
    // Reads 0, 1 (+1 ahead), 3 (+1), 5 (+2), 8 (+8: reads 6 and 7 came from here).
    expect(asked).toEqual([1, 2, 2, 3, 9]);
  });

  it('big segments: a read answered only in part from what was read ahead does not grow read-ahead', async () => {
    const stores = memoryStores();
    put(stores, 0, ...segments(8, 20_000));
    const view = cachedLog(stores.log, 72);
    const asked = askedLimits(stores);
    expect((await from(view, stores, 0, 1)).bases).toEqual([0]);
    expect((await from(view, stores, 1, 1)).bases).toEqual([1]);
    // Two wanted, one known (read ahead): the other comes from the store, with one more ahead, each time.
    expect(await from(view, stores, 2, 2)).toEqual({ bases: [2, 3], fromStore: true });
    expect(await from(view, stores, 4, 2)).toEqual({ bases: [4, 5], fromStore: true });
    expect(asked).toEqual([1, 2, 2, 2]);
  });

  it('big segments: a segment read ahead and passed over stops read-ahead for 10 s', async () => {
    const stores = memoryStores();
    put(stores, 0, ...segments(6, 20_000));
    const view = cachedLog(stores.log, 72);
    const asked = askedLimits(stores);
    expect((await from(view, stores, 0, 1)).bases).toEqual([0]);
    expect((await from(view, stores, 1, 1)).bases).toEqual([1]);
    expect(asked).toEqual([1, 2]);
    // Segment 2 was read ahead, and another process consumed it: this one goes on from 3.
    expect((await from(view, stores, 3, 1)).bases).toEqual([3]);
    clock.advance(9_999);
    expect((await from(view, stores, 4, 1)).bases).toEqual([4]);
    clock.advance(1);
    expect((await from(view, stores, 5, 1)).bases).toEqual([5]);
    expect(asked).toEqual([1, 2, 1, 1, 2]);
  });

  it('very big segments: read-ahead beyond what is asked stays within 512 KiB per read', async () => {
    const stores = memoryStores();
    put(stores, 0, ...segments(8, 200_000));
    const view = cachedLog(stores.log, 72);
    const asked = askedLimits(stores);
    for (let i = 0; i < 6; i++) expect((await from(view, stores, i, 1)).bases).toEqual([i]);
    // Without the bound the read at 5 would ask for 3 (one + two ahead); 2 × 200 KB is what fits.
    expect(asked).toEqual([1, 2, 2, 2]);
  });

  it('small segments: a read asks for as many as fit one 4 KB read unit, by the average size seen', async () => {
    const stores = memoryStores();
    put(stores, 0, ...segments(8, 1_000));
    const view = cachedLog(stores.log, 72);
    const asked = askedLimits(stores);
    for (let i = 0; i < 5; i++) expect((await from(view, stores, i, 1)).bases).toEqual([i]);
    // 4096 / 1000: four segments in one read unit, then three pulls answered from here.
    expect(asked).toEqual([1, 4]);
  });
});
