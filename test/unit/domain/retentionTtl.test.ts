import { afterEach, describe, expect, it, vi } from 'vitest';
import { SEGMENT_EXPIRY_GRACE_SECONDS, segmentExpiry, TAIL_PROTECTION_SECONDS } from '../../../functions/domain/log/expiry.js';
import { retentionAction, trimAllTopics, trimTopic } from '../../../functions/domain/log/retention.js';
import { topicKeyOf, type Topic } from '../../../functions/domain/ports.js';
import { forgetTailHints, produce } from '../../../functions/domain/produce.js';
import { commitTransaction, requireTransaction } from '../../../functions/domain/transactions/decide.js';
import { prepareTransaction } from '../../../functions/domain/transactions/prepare.js';
import { memoryTransactionPorts } from '../../memory/transactions.js';
import { memoryStores, retentionAt, type MemoryStores } from '../../memory/stores.js';
import { bodies, T0, unique, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => vi.restoreAllMocks());

const HOUR = 3600_000;
const seconds = (ms: number) => Math.floor(ms / 1000);

/** The stored expiry of every segment of partition 0, oldest first: [base, exp]. */
const expiries = (stores: MemoryStores, topic: Topic, partition = 0) =>
  (stores.log.partitions.get(`${topicKeyOf(topic)}#${partition}`) ?? []).map((s) => [s.base, stores.log.expiryOf(topicKeyOf(topic), partition, s.base)]);

/** A topic with segments written straight through the log store, each with the expiry given (undefined: none). */
async function topicWith(stores: MemoryStores, segments: Array<{ producedAt: number; expiresAt?: number }>, retentionHours = 1) {
  const topic: Topic = { name: unique('t'), partitions: 1, retentionHours, createdAt: T0, epoch: unique('e') };
  await stores.catalog.createTopic(topic);
  for (const [base, s] of segments.entries()) {
    await stores.log.appendSegment(topicKeyOf(topic), { partition: 0, base, producedAt: s.producedAt, records: [{ b: base }], ...(s.expiresAt !== undefined ? { expiresAt: s.expiresAt } : {}) }, [], 0);
  }
  return topic;
}

describe('segments carry their TTL', () => {
  it('a produce, a producer session and a transaction commit all write expiry = produce time + retention + a day', async () => {
    const w = await world({ retentionHours: 5, group: null });
    await w.produce(bodies(2));
    clock.advance(1000);
    await produce(w.stores, w.name, [{ body: 'in a session' }], Date.now() + 10_000, { session: 'p-1', sequence: 0 });
    const ports = memoryTransactionPorts(w.stores);
    clock.advance(1000);
    const prepared = await prepareTransaction(w.stores, ports, { messages: [{ topic: w.name, body: 'tx' }] });
    clock.advance(1000);
    await commitTransaction(w.stores, ports.transactions, prepared.id, 'producer', Date.now() + 60_000);
    expect((await requireTransaction(ports.transactions, prepared.id)).state).toBe('committed');

    const list = w.stores.log.partitions.get(`${topicKeyOf(w.topic)}#0`)!;
    expect(list).toHaveLength(3);
    for (const s of list) {
      expect(w.stores.log.expiryOf(topicKeyOf(w.topic), 0, s.base)).toBe(Math.ceil(s.producedAt / 1000) + 5 * 3600 + SEGMENT_EXPIRY_GRACE_SECONDS);
    }
    expect(new Set(list.map((s) => s.producedAt)).size).toBe(3);
  });
});

describe('retention with TTL', () => {
  it('in the steady state a pass reads two items per partition and writes nothing; TTL takes the old segments', async () => {
    const w = await world({ retentionHours: 1, group: null });
    for (let i = 0; i < 5; i++) {
      await w.produce(bodies(1));
      clock.advance(HOUR);
    }
    clock.advance(26 * HOUR);
    await w.produce(bodies(1));
    w.stores.calls.length = 0;
    const pass = await trimAllTopics(w.stores, Date.now());
    expect(pass).toMatchObject({ deleted: 0, protected: 0, extended: 0, complete: true });
    expect(w.stores.calls.filter((c) => c.startsWith('log.'))).toEqual(['log.segmentKeysFrom', 'log.tail']);
    // TTL (instant here) takes the five old segments; the newest stays and offsets go on.
    expect(w.stores.log.sweepExpired(seconds(Date.now()))).toBe(5);
    expect((await w.produce(bodies(1)))[0]).toMatchObject({ offset: 6 });
  });

  it('a young partition costs one read: nothing in it can be near its expiry', async () => {
    const w = await world({ retentionHours: 72, group: null });
    await w.produce(bodies(3));
    await w.produce(bodies(3));
    clock.advance(12 * HOUR);
    w.stores.calls.length = 0;
    expect(await trimTopic(w.stores, w.name)).toBe(0);
    expect(w.stores.calls.filter((c) => c.startsWith('log.'))).toEqual(['log.segmentKeysFrom']);
  });

  it('an idle partition keeps its newest segment: the pass removes its expiry before TTL could take it', async () => {
    const w = await world({ retentionHours: 1, group: null });
    await w.produce(bodies(2));
    await w.produce(bodies(2));
    const expiry = segmentExpiry(Date.now(), 1);
    const key = topicKeyOf(w.topic);
    // Up to 12 hours before the expiry, the pass leaves the newest segment alone.
    clock.advance((expiry - TAIL_PROTECTION_SECONDS) * 1000 - Date.now());
    expect((await trimAllTopics(w.stores, Date.now())).protected).toBe(0);
    expect(w.stores.log.expiryOf(key, 0, 2)).toBe(expiry);
    // A second later it is within 12 hours of expiring: the pass keeps it.
    clock.advance(1000);
    expect((await trimAllTopics(w.stores, Date.now())).protected).toBe(1);
    expect(expiries(w.stores, w.topic)).toEqual([
      [0, expiry],
      [2, undefined],
    ]);
    // Long after, TTL took the older segment only; the next message continues the offsets.
    clock.advance(1000 * 24 * HOUR);
    expect(w.stores.log.sweepExpired(seconds(Date.now()))).toBe(1);
    expect((await w.produce(bodies(1)))[0]).toMatchObject({ offset: 4 });
    // The protected segment, overtaken, has no expiry: the pass deletes it once it is the oldest past retention.
    expect(await trimTopic(w.stores, w.name)).toBe(1);
    expect(expiries(w.stores, w.topic).map(([base]) => base)).toEqual([4]);
  });

  it('without the pass, TTL would take the newest segment and offsets would restart (why the pass protects it)', async () => {
    const w = await world({ retentionHours: 1, group: null });
    await w.produce(bodies(2));
    clock.advance(3 * 24 * HOUR);
    expect(w.stores.log.sweepExpired(seconds(Date.now()))).toBe(1);
    // A process that does not remember the partition's end (a new Lambda instance) asks the log.
    forgetTailHints();
    expect((await w.produce(bodies(1)))[0]).toMatchObject({ offset: 0 });
  });

  it('a protected segment overtaken stays until TTL took the older ones before it (the pass never pages through TTL\u2019s work)', async () => {
    const stores = memoryStores();
    const old = T0;
    const topic = await topicWith(stores, [
      { producedAt: old, expiresAt: segmentExpiry(old, 1) },
      { producedAt: old + 1000, expiresAt: segmentExpiry(old + 1000, 1) },
      { producedAt: old + 2000 },
      { producedAt: old + 10 * HOUR, expiresAt: segmentExpiry(old + 10 * HOUR, 1) },
    ]);
    const now = old + 3 * HOUR;
    stores.calls.length = 0;
    expect(await trimTopic(stores, topic.name, now)).toBe(0);
    expect(stores.calls.filter((c) => c === 'log.segmentKeysFrom')).toHaveLength(1);
    // TTL takes the first two; the next pass deletes the segment without expiry.
    stores.log.sweepExpired(segmentExpiry(old + 1000, 1) + 1);
    expect(await trimTopic(stores, topic.name, now)).toBe(1);
    expect(expiries(stores, topic).map(([base]) => base)).toEqual([3]);
  });

  it('segments from before TTL (no expiry) are deleted past retention, as before; then the pass stops at TTL\u2019s', async () => {
    const stores = memoryStores();
    const topic = await topicWith(stores, [
      { producedAt: T0 },
      { producedAt: T0 + 1 },
      { producedAt: T0 + 2, expiresAt: segmentExpiry(T0 + 2, 1) },
      { producedAt: T0 + 3 },
      { producedAt: T0 + 10 * HOUR, expiresAt: segmentExpiry(T0 + 10 * HOUR, 1) },
    ]);
    expect(await trimTopic(stores, topic.name, T0 + 2 * HOUR)).toBe(2);
    expect(expiries(stores, topic).map(([base]) => base)).toEqual([2, 3, 4]);
  });

  it('a segment expiring later than its retention gives (a shorter retention or grace since) is deleted past retention', async () => {
    const stores = memoryStores();
    const later = (at: number) => segmentExpiry(at, 48);
    const topic = await topicWith(stores, [
      { producedAt: T0, expiresAt: later(T0) },
      { producedAt: T0 + HOUR, expiresAt: later(T0 + HOUR) },
      { producedAt: T0 + 3 * HOUR, expiresAt: later(T0 + 3 * HOUR) },
      { producedAt: T0 + 4 * HOUR, expiresAt: segmentExpiry(T0 + 4 * HOUR, 1) },
    ]);
    expect(await trimTopic(stores, topic.name, T0 + 2 * HOUR + 1)).toBe(2);
    expect(expiries(stores, topic).map(([base]) => base)).toEqual([2, 3]);
  });

  it('a segment expiring sooner than its retention gives has its expiry moved on while within retention; past it, TTL takes it', async () => {
    const stores = memoryStores();
    const sooner = (at: number) => segmentExpiry(at, 1);
    const topic = await topicWith(
      stores,
      [
        { producedAt: T0, expiresAt: sooner(T0) },
        { producedAt: T0 + 30 * HOUR, expiresAt: sooner(T0 + 30 * HOUR) },
        { producedAt: T0 + 31 * HOUR, expiresAt: sooner(T0 + 31 * HOUR) },
        { producedAt: T0 + 32 * HOUR, expiresAt: segmentExpiry(T0 + 32 * HOUR, 24) },
        { producedAt: T0 + 33 * HOUR, expiresAt: segmentExpiry(T0 + 33 * HOUR, 24) },
      ],
      24,
    );
    const pass = await trimAllTopics(stores, T0 + 40 * HOUR);
    expect(pass).toMatchObject({ deleted: 0, extended: 2 });
    expect(expiries(stores, topic)).toEqual([
      [0, sooner(T0)],
      [1, segmentExpiry(T0 + 30 * HOUR, 24)],
      [2, segmentExpiry(T0 + 31 * HOUR, 24)],
      [3, segmentExpiry(T0 + 32 * HOUR, 24)],
      [4, segmentExpiry(T0 + 33 * HOUR, 24)],
    ]);
    // Nothing more to move on: the next pass writes nothing.
    expect(await trimAllTopics(stores, T0 + 40 * HOUR)).toMatchObject({ deleted: 0, extended: 0 });
  });

  it('a segment TTL took between the listing and the write is not created again by the expiry update', async () => {
    const stores = memoryStores();
    const topic = await topicWith(stores, [{ producedAt: T0 }]);
    stores.log.partitions.set(`${topicKeyOf(topic)}#0`, []);
    expect(await stores.log.setSegmentExpiry(topicKeyOf(topic), 0, 0, undefined)).toBe(false);
    expect(await stores.log.setSegmentExpiry(topicKeyOf(topic), 0, 0, 5)).toBe(false);
    expect(stores.log.partitions.get(`${topicKeyOf(topic)}#0`)).toEqual([]);
  });

  it('retentionAction, case by case', () => {
    const at = T0;
    const cutoff = T0 + 1;
    const expected = segmentExpiry(at, 1);
    expect(retentionAction({ base: 0, count: 1, producedAt: at }, 1, cutoff)).toBe('delete');
    expect(retentionAction({ base: 0, count: 1, producedAt: at }, 1, at)).toBe('stop');
    expect(retentionAction({ base: 0, count: 1, producedAt: at, expiresAt: expected + 1 }, 1, cutoff)).toBe('delete');
    expect(retentionAction({ base: 0, count: 1, producedAt: at, expiresAt: expected + 1 }, 1, at)).toBe('stop');
    expect(retentionAction({ base: 0, count: 1, producedAt: at, expiresAt: expected - 1 }, 1, cutoff)).toBe('skip');
    expect(retentionAction({ base: 0, count: 1, producedAt: at, expiresAt: expected - 1 }, 1, at)).toBe('extend');
    expect(retentionAction({ base: 0, count: 1, producedAt: at, expiresAt: expected }, 1, cutoff)).toBe('stop');
    expect(retentionAction({ base: 0, count: 1, producedAt: at, expiresAt: expected }, 1, at)).toBe('stop');
  });

  it('what consumers see through it all: nothing within retention is lost, offsets never restart', async () => {
    const w = await world({ retentionHours: 1 });
    await w.produce(bodies(3));
    clock.advance(40 * HOUR);
    expect(await retentionAt(w.stores, w.name)).toBe(0);
    await w.produce(bodies(2));
    clock.advance(30 * HOUR);
    // The first segment, protected while it was the newest, is deleted by the pass now that it is not;
    // the second, the newest and idle for 30 hours, is protected in turn.
    expect(await retentionAt(w.stores, w.name)).toBe(1);
    const got = await w.pull({ max: 10 });
    expect(got.map((d) => d.offset)).toEqual([3, 4]);
  });
});
