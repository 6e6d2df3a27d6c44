import { describe, expect, it } from 'vitest';
import { createApiKey, hashApiKey, revokeApiKey, verifyApiKey } from '../../../functions/domain/apiKeys.js';
import { inBatches } from '../../../functions/domain/concurrency.js';
import { queueDue } from '../../../functions/domain/delay/queueing.js';
import { readFrom, replyBytes } from '../../../functions/domain/log/logReader.js';
import { toRecord } from '../../../functions/domain/messages.js';
import { stickyPartition } from '../../../functions/domain/partitioner.js';
import { iso, parseTime } from '../../../functions/domain/time.js';
import { warmCache } from '../../../functions/domain/warmCache.js';
import type { PendingDelayed } from '../../../functions/domain/ports.js';
import { MemoryApiKeyStore, memoryStores } from '../../memory/stores.js';
import { bodies, rejection, T0, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

describe('api keys', () => {
  it('a key is shown once, stored as its hash, verified until revoked', async () => {
    const store = new MemoryApiKeyStore();
    const { key, record } = await createApiKey(store, 'ci', T0);
    expect(key).toMatch(/^slk_[A-Za-z0-9_-]{43}$/);
    expect(record).toEqual({ keyHash: hashApiKey(key), id: hashApiKey(key).slice(0, 12), name: 'ci', createdAt: T0 });
    expect(await verifyApiKey(store, key)).toEqual(record);
    expect(await verifyApiKey(store, undefined)).toBeUndefined();
    expect(await verifyApiKey(store, key.slice(4))).toBeUndefined();
    expect(await verifyApiKey(store, `${key}${'x'.repeat(60)}`)).toBeUndefined();
    expect(await verifyApiKey(store, 'slk_unknown')).toBeUndefined();
    expect(await revokeApiKey(store, 'nope', T0)).toBeUndefined();
    expect(await revokeApiKey(store, record.id, T0 + 1)).toEqual({ ...record, revokedAt: T0 + 1 });
    expect(await verifyApiKey(store, key)).toBeUndefined();
  });
});

describe('small helpers', () => {
  it('warmCache keeps a value for its time, then loads again; failures are not kept', async () => {
    const cache = warmCache<number>(1000);
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache('k', load)).toBe(1);
    clock.advance(999);
    expect(await cache('k', load)).toBe(1);
    clock.advance(1);
    expect(await cache('k', load)).toBe(2);
    expect(await cache('other', load)).toBe(3);
    const error = await rejection(cache('bad', async () => Promise.reject(new Error('no'))));
    expect(error.message).toBe('no');
    expect(await cache('bad', load)).toBe(4);
  });

  it('inBatches runs every item with at most `width` in flight', async () => {
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await inBatches([1, 2, 3, 4, 5], 2, async (n) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      done.push(n);
      running--;
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(most).toBe(2);
    await inBatches([], 4, async () => {
      throw new Error('never');
    });
  });

  it('parseTime takes ISO-8601 or epoch ms, and nothing else', () => {
    expect(parseTime(5, 'f')).toBe(5);
    expect(parseTime('123', 'f')).toBe(123);
    expect(parseTime('2030-01-01T12:00:00Z', 'f')).toBe(T0);
    for (const bad of [-1, 1.5, Number.NaN]) expect(() => parseTime(bad, 'f')).toThrow('f must be epoch milliseconds.');
    for (const bad of ['soon', 'Jan 1 2030', '2030-13-45']) expect(() => parseTime(bad, 'f')).toThrow('f must be an ISO-8601 time or epoch milliseconds.');
    expect(iso(T0)).toBe('2030-01-01T12:00:00.000Z');
  });

  it('sticky partitions take turns', () => {
    const a = stickyPartition(5);
    const b = stickyPartition(5);
    expect(b).toBe((a + 1) % 5);
    expect(stickyPartition(1)).toBe(0);
  });

  it('a record keeps only what a message has', () => {
    expect(toRecord({})).toEqual({ b: null });
    expect(toRecord({ body: 0, tags: [], headers: {} })).toEqual({ b: 0 });
    expect(toRecord({ bodyBase64: 'AA==', body: 'ignored', key: 'k', tags: ['t'], headers: { h: 'v' }, id: 'i' })).toEqual({
      x: 'AA==',
      k: 'k',
      t: ['t'],
      h: { h: 'v' },
      i: 'i',
    });
  });
});

describe('delay queue messages', () => {
  const pending = (id: string, due: number, topicKey = 't@e'): PendingDelayed => ({
    topicKey,
    id,
    due,
    record: { b: 1 },
    landing: 1,
    queued: true,
    version: 1,
    createdAt: T0,
  });

  it('one message per topic and due second, at most 100 ids each, delayed to the first due time rounded down', async () => {
    const stores = memoryStores({ delayQueueMaxSeconds: 900 });
    const items = [
      ...Array.from({ length: 150 }, (_, i) => pending(`a${i}`, T0 + 5_900)),
      pending('b', T0 + 5_100),
      pending('c', T0 + 6_000),
      pending('other', T0 + 5_000, 'u@e'),
      pending('far', T0 + 2_000_000),
      pending('past', T0 - 5_000),
    ];
    expect(await queueDue(stores, items, T0)).toBe(6);
    expect(stores.delayQueue.sent.map((m) => [m.topicKey, m.ids.length, m.delaySeconds])).toEqual([
      ['t@e', 100, 5],
      ['t@e', 51, 5],
      ['t@e', 1, 6],
      ['u@e', 1, 5],
      ['t@e', 1, 900],
      ['t@e', 1, 0],
    ]);
    expect(stores.delayQueue.sent[1]!.ids.at(-1)).toBe('b');
    expect(await queueDue(stores, [], T0)).toBe(0);
  });
});

describe('reading the log', () => {
  it('reads across segments from any offset, with or without a hint, and stops at a limit or a byte budget', async () => {
    const w = await world({ group: null });
    for (let i = 0; i < 5; i++) await w.produce(bodies(3));
    const read = (from: number, hint: number, limit: number, maxBytes = Infinity) =>
      readFrom(w.stores.log, w.topicKey, 0, from, hint, limit, { maxBytes });
    const all = await read(0, -1, 100);
    expect(all.messages.map((m) => m.offset)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect([all.next, all.nextSegmentHint]).toEqual([15, 15]);
    const mid = await read(4, -1, 4);
    expect(mid.messages.map((m) => m.offset)).toEqual([4, 5, 6, 7]);
    expect([mid.next, mid.nextSegmentHint]).toEqual([8, 6]);
    const hinted = await read(8, 6, 2);
    expect(hinted.messages.map((m) => m.offset)).toEqual([8, 9]);
    expect([hinted.next, hinted.nextSegmentHint]).toEqual([10, 9]);
    // A hint past `from` is ignored.
    expect((await read(1, 9, 1)).messages.map((m) => m.offset)).toEqual([1]);
    expect(await read(3, 3, 0)).toEqual({ messages: [], next: 3, nextSegmentHint: 3 });
    const size = replyBytes(all.messages[0]!);
    const budget = await read(0, 0, 100, size * 2);
    expect(budget.messages).toHaveLength(2);
    expect([budget.next, budget.nextSegmentHint, budget.bytes]).toEqual([2, 0, size * 2]);
    const end = await read(15, 15, 10);
    expect([end.messages, end.next, end.nextSegmentHint]).toEqual([[], 15, 15]);
  });

  it('an eventually consistent read that misses the newest segments only delays them', async () => {
    const w = await world({ group: null });
    await w.produce(bodies(2));
    w.stores.replica.freeze();
    await w.produce(bodies(2));
    const stale = await readFrom(w.stores.log, w.topicKey, 0, 0, 0, 10);
    expect(stale.messages.map((m) => m.offset)).toEqual([0, 1]);
    w.stores.replica.thaw();
    expect((await readFrom(w.stores.log, w.topicKey, 0, stale.next, stale.nextSegmentHint, 10)).messages.map((m) => m.offset)).toEqual([2, 3]);
  });

  it('a hole in an eventually consistent answer is only skipped when a consistent read shows it too', async () => {
    const w = await world({ group: null });
    for (let i = 0; i < 3; i++) await w.produce(bodies(1));
    w.stores.replica.freeze();
    // The replica misses segment 1 (a stand-in for any eventually consistent answer with a hole).
    w.stores.log.replica!.set(`${w.topicKey}#0`, w.stores.log.replica!.get(`${w.topicKey}#0`)!.filter((s) => s.base !== 1));
    const got = await readFrom(w.stores.log, w.topicKey, 0, 0, 0, 10);
    expect(got.messages.map((m) => m.offset)).toEqual([0, 1, 2]);
    w.stores.replica.thaw();
  });
});
