/**
 * The warm-process caches of consume (functions/domain/groups/progressCache.ts, segmentCache.ts) over the
 * in-memory ports, with a clock the test moves: what each cache may answer, what it must leave to the store.
 * "Another process" is another store object over the same data (its own caches).
 */
import { trimTopic } from '../../../functions/domain/log/retention.js';
import { describe, expect, it, vi } from 'vitest';
import { nack, pullAndAck } from '../../../functions/domain/groups/consume.js';
import { forgetKnownProgress } from '../../../functions/domain/groups/progressCache.js';
import type { Stores } from '../../../functions/domain/ports.js';
import { bodies, offsetsOf, rejection, useClock, world, type World } from '../../memory/fixtures.js';

const clock = useClock();

/** Another Lambda instance over the same tables: store objects of its own. */
const otherProcess = (w: World): Stores => ({ ...w.stores, groupState: Object.create(w.stores.groupState), log: Object.create(w.stores.log) });

const progressReads = (w: World) => w.stores.calls.filter((c) => c.startsWith('groupState.getProgress')).length;
const logReads = (w: World) => w.stores.calls.filter((c) => c.startsWith('log.segment')).length;

describe('known progress', () => {
  it('plans on the item it wrote last, without a read; a conflict hands it the current item, again without a read', async () => {
    const w = await world();
    await w.produce(bodies(3));
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([0]);
    const before = progressReads(w);
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([1]);
    expect(progressReads(w)).toBe(before);
    // Another process leases offset 2; this one still knows version 2 and plans on it.
    const theirs = await pullAndAck(otherProcess(w), w.name, w.group, { max: 1, waitSeconds: 0 });
    expect(offsetsOf(theirs.deliveries)).toEqual([2]);
    await w.produce(bodies(1));
    const reads = progressReads(w);
    const writes = w.stores.calls.filter((c) => c === 'groupState.putProgress').length;
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([3]);
    expect(progressReads(w)).toBe(reads);
    expect(w.stores.calls.filter((c) => c === 'groupState.putProgress').length).toBe(writes + 2);
  });

  it('a cold process (forgetKnownProgress) reads first', async () => {
    const w = await world();
    await w.produce(bodies(2));
    await w.pull({ max: 1 });
    forgetKnownProgress();
    const before = progressReads(w);
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([1]);
    expect(progressReads(w)).toBe(before + 1);
  });

  it('a write that failed with an unknown outcome (applied, then an error) is forgotten: the next pull reads, and nothing is leased twice', async () => {
    const w = await world();
    await w.produce(bodies(4));
    await w.pull({ max: 1 });
    const real = w.stores.groupState.putProgress.bind(w.stores.groupState);
    const spy = vi.spyOn(w.stores.groupState, 'putProgress').mockImplementationOnce(async (...args) => {
      await real(...args);
      throw new Error('connection reset');
    });
    expect((await rejection(w.pull({ max: 1 }))).message).toBe('connection reset');
    spy.mockRestore();
    const reads = progressReads(w);
    const writes = w.stores.calls.filter((c) => c === 'groupState.putProgress').length;
    // Offset 1 went out with the write that "failed": the next pull reads what is stored and leases 2.
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([2]);
    expect(progressReads(w)).toBe(reads + 1);
    expect(w.stores.calls.filter((c) => c === 'groupState.putProgress').length).toBe(writes + 1);
  });

  it('nothing to do on the known item is confirmed by a read of the same version; another version is planned on instead', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [mine] = await w.pull({ max: 1 });
    // Same version: nothing to do, one read to say so.
    let reads = progressReads(w);
    expect(await w.pull()).toEqual([]);
    expect(progressReads(w)).toBe(reads + 1);
    // Another process nacks it: the known item (leased) is out of date, the read shows it due.
    expect(await nack(otherProcess(w), w.name, w.group, [mine!.receipt], 0)).toEqual({ settled: 1, stale: [] });
    reads = progressReads(w);
    const again = await w.pull();
    expect(again.map((d) => [d.offset, d.deliveryCount])).toEqual([[0, 2]]);
    // One read: the one that did not confirm the known item is what the pull then plans on.
    expect(progressReads(w)).toBe(reads + 1);
  });

  it('a stale replica behind the known item: the confirming read shows an older version, so the pull plans on a read, not on either guess', async () => {
    const w = await world();
    await w.produce(bodies(2));
    w.stores.replica.freeze();
    // The replica never sees this lease; the known item does.
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([0]);
    // Offset 1 is new: the plan on the known item writes, and its conditional write needs no confirmation.
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([1]);
    // Nothing left: the known item says so, the stale replica answers an older version, the strong retry
    // finds nothing to do either (and nothing is leased twice).
    expect(await w.pull()).toEqual([]);
    w.stores.replica.thaw();
    clock.advance(31_000);
    expect(offsetsOf(await w.pull())).toEqual([0, 1]);
  });
});

describe('acks racing a busy puller', () => {
  it('an ack that loses its write tries again on the item the lost race returned, without reading again', async () => {
    const w = await world();
    await w.produce(bodies(4));
    const [d] = await w.pull({ max: 1 });
    const items = w.stores.groupState.groups.get(w.groupKey)!.progress;
    const real = w.stores.groupState.putProgress.bind(w.stores.groupState);
    let interfere = 2;
    // Another process writes the item between this ack's read (or last lost race) and its write, twice.
    const put = vi.spyOn(w.stores.groupState, 'putProgress').mockImplementation(async (...args) => {
      if (interfere-- > 0) {
        const current = items.get(0)!;
        items.set(0, { ...current, version: current.version + 1 });
      }
      return real(...args);
    });
    const reads = progressReads(w);
    expect(await w.ack([d!.receipt])).toEqual({ settled: 1, stale: [] });
    expect(put).toHaveBeenCalledTimes(3);
    expect(progressReads(w)).toBe(reads + 1);
    put.mockRestore();
    clock.advance(31_000);
    expect(offsetsOf(await w.pull())).toEqual([1, 2, 3]);
  });
});

describe('known segments', () => {
  /** `n` messages in `n` segments of one message each. */
  const oneByOne = async (w: World, from: number, n: number) => {
    for (let i = from; i < from + n; i++) await w.produce([{ body: i, partition: 0 }]);
  };

  it('small segments are read ahead within one read unit: later pulls of this process read no segment', async () => {
    const w = await world();
    await oneByOne(w, 0, 8);
    await w.pull({ max: 1 });
    await w.pull({ max: 1 });
    const before = logReads(w);
    for (let i = 2; i < 8; i++) expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([i]);
    expect(logReads(w)).toBe(before);
    // Another process knows none of them: it reads.
    clock.advance(31_000);
    const theirs = await pullAndAck(otherProcess(w), w.name, w.group, { max: 1, waitSeconds: 0 });
    expect(offsetsOf(theirs.deliveries)).toEqual([0]);
    expect(logReads(w)).toBeGreaterThan(before);
  });

  it('big segments: read-ahead grows while this process uses it, and stops when another process consumed what it read ahead', async () => {
    const w = await world();
    const big = 'x'.repeat(400);
    /** `n` segments of 50 messages of ~400 bytes (~20 KB each: none fits the free 4 KB read unit). */
    const segments = async (n: number) => {
      for (let i = 0; i < n; i++) await w.produce(Array.from({ length: 50 }, () => ({ body: big, partition: 0 })));
    };
    const asked: number[] = [];
    const real = w.stores.log.segmentsFrom.bind(w.stores.log);
    vi.spyOn(w.stores.log, 'segmentsFrom').mockImplementation(async (key, partition, from, limit, consistent) => {
      asked.push(limit);
      return real(key, partition, from, limit, consistent);
    });
    let receipts: string[] = [];
    const loop = async (stores: Stores, pulls: number) => {
      for (let i = 0; i < pulls; i++) {
        const out = await pullAndAck(stores, w.name, w.group, { max: 50, waitSeconds: 0, ackReceipts: receipts });
        expect(out.deliveries).toHaveLength(50);
        receipts = out.deliveries.map((d) => d.receipt);
      }
    };
    await segments(12);
    await loop(w.stores, 12);
    // Asked 2 (1 + a probe), then 3, then 9: three reads of the store for twelve pulls, each segment read once.
    expect(asked).toEqual([2, 3, 9]);
    // Nine more: this process, reading ahead all it may now, reads them with its next pull.
    await segments(9);
    asked.length = 0;
    await loop(w.stores, 1);
    expect(asked).toEqual([16]);
    // Another process takes the other eight: read ahead here, never used here (paid for nothing).
    const other = otherProcess(w);
    const theirs: string[] = [];
    for (let i = 0; i < 8; i++) theirs.push(...(await pullAndAck(other, w.name, w.group, { max: 50, waitSeconds: 0 })).deliveries.map((d) => d.receipt));
    await segments(3);
    asked.length = 0; // (the other process's reads went through the same spy: its store object inherits it)
    await loop(w.stores, 2);
    // Passed over: no read-ahead for a while.
    expect(asked).toEqual([1, 1]);
    clock.advance(10_000);
    asked.length = 0;
    await loop(w.stores, 1);
    // Then one segment ahead again, to see whether it is used now.
    expect(asked).toEqual([2]);
    expect((await nack(other, w.name, w.group, theirs, 0)).settled).toBe(400);
  });

  it('a redelivery takes its segment from what the process read', async () => {
    const w = await world();
    await w.produce(bodies(3));
    const first = await w.pull();
    await w.nack(first.map((d) => d.receipt), 0);
    const before = logReads(w);
    // max 3: the three redeliveries fill it, so no read of new messages either.
    const again = await w.pull({ max: 3 });
    expect(again.map((d) => [d.offset, d.body, d.deliveryCount])).toEqual([
      [0, 0, 2],
      [1, 1, 2],
      [2, 2, 2],
    ]);
    expect(logReads(w)).toBe(before);
  });

  it('a known segment near the end of its retention is read from the store again (a retention pass elsewhere may have removed it)', async () => {
    const w = await world({ retentionHours: 1 });
    await oneByOne(w, 0, 3);
    // 56 minutes on: the segments are read (and known) 4 minutes before their retention ends.
    clock.advance(56 * 60_000);
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([0]);
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([1]);
    // A retention pass of another process whose clock runs a few minutes ahead removes the two older
    // segments (never the newest). Had this process kept serving what it read, offsets 0 and 1 would come back.
    const key = `${w.topicKey}#0`;
    w.stores.log.partitions.set(key, w.stores.log.partitions.get(key)!.filter((s) => s.base === 2));
    // The leases run out: the segments of 0 and 1 are gone, so they are dropped, not delivered again.
    clock.advance(31_000);
    expect((await w.pull()).map((d) => [d.offset, d.body])).toEqual([[2, 2]]);
  });

  it('nothing retention can delete is served from what this process read: the pass deletes past retention, the cache serves up to 5 minutes before it', async () => {
    const w = await world({ retentionHours: 1 });
    // Segments from before TTL (no expiry): the pass itself deletes them once past retention.
    for (let base = 0; base < 3; base++) await w.stores.log.appendSegment(w.topicKey, { partition: 0, base, producedAt: Date.now(), records: [{ b: base }] }, [], 0);
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([0]);
    expect(offsetsOf(await w.pull({ max: 1 }))).toEqual([1]);
    // An hour on, the pass (this process, the raw store: nothing tells the cache) deletes 0 and 1.
    clock.advance(3600_000 + 1);
    expect(await trimTopic(w.stores, w.name)).toBe(2);
    // The leases ran out long ago: 0 and 1 are gone from the store, and the cache no longer serves them either.
    expect((await w.pull()).map((d) => [d.offset, d.body])).toEqual([[2, 2]]);
  });
});
