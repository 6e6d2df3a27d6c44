import { afterEach, describe, expect, it, vi } from 'vitest';
import { landDelayed, REPEAT_HEADER } from '../../../functions/domain/delay/land.js';
import { cancelDelayed, getDelayed, listDelayed } from '../../../functions/domain/delay/manage.js';
import { sweepDelayed } from '../../../functions/domain/delay/sweep.js';
import { DELAY, minuteOf } from '../../../functions/domain/delay/limits.js';
import { browsePartition } from '../../../functions/domain/log/browse.js';
import { memoryStores } from '../../memory/stores.js';
import { rejection, T0, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => vi.restoreAllMocks());

const FAR = Date.now() + 1e12;

async function delayedWorld(options: { partitions?: number; delayQueueMaxSeconds?: number } = {}) {
  const stores = memoryStores({ delayQueueMaxSeconds: options.delayQueueMaxSeconds ?? 900 });
  return world({ partitions: options.partitions ?? 1, group: null, stores });
}

const logOf = async (w: Awaited<ReturnType<typeof world>>, partition = 0) =>
  (await browsePartition(w.stores, w.name, partition, undefined, 1000)).messages;

describe('scheduling delayed messages', () => {
  it('stores a pending message and hands it to the queue when it is within reach, rounded down to the second', async () => {
    const w = await delayedWorld();
    const [r] = await w.produce([{ body: 'later', delaySeconds: 30.5, id: 'd1', partition: 0 }]);
    expect(r).toEqual({ id: 'd1', status: 'scheduled', deliverAt: new Date(T0 + 30_500).toISOString() });
    expect(w.stores.delayQueue.sent).toEqual([{ topicKey: w.topicKey, ids: ['d1'], delaySeconds: 30 }]);
    const pending = await getDelayed(w.stores, w.name, 'd1');
    expect(pending).toMatchObject({ id: 'd1', due: T0 + 30_500, landing: 1, queued: true, version: 1, createdAt: T0, partition: 0 });
    expect(await logOf(w)).toEqual([]);
  });

  it('a message beyond the queue’s reach waits for the sweep; a producer id makes a retry a duplicate', async () => {
    const w = await delayedWorld();
    const due = new Date(T0 + 3600_000).toISOString();
    const [a] = await w.produce([{ body: 1, deliverAt: due, id: 'far' }]);
    expect(a).toEqual({ id: 'far', status: 'scheduled', deliverAt: due });
    expect(w.stores.delayQueue.sent).toEqual([]);
    expect((await getDelayed(w.stores, w.name, 'far')).queued).toBe(false);
    const [again] = await w.produce([{ body: 1, deliverAt: T0 + 7200_000, id: 'far' }]);
    expect(again).toEqual({ id: 'far', status: 'scheduled', deliverAt: due, duplicate: true });
  });

  it('a repeat of an id within a request points at its first occurrence; generated ids are unique', async () => {
    const w = await delayedWorld();
    const results = await w.produce([
      { body: 1, delaySeconds: 5, id: 'x' },
      { body: 2, delaySeconds: 9, id: 'x' },
      { body: 3, delaySeconds: 5 },
      { body: 4, delaySeconds: 5 },
    ]);
    expect(results[0]).toEqual({ id: 'x', status: 'scheduled', deliverAt: new Date(T0 + 5000).toISOString() });
    expect(results[1]).toEqual({ ...results[0], duplicate: true });
    expect(results[2]!.id).not.toBe(results[3]!.id);
    expect(results[2]!.id).toMatch(/^dl-/);
    // One queue message for the topic's due second; the two id-less messages are members of one group
    // (functions/domain/delay/groups.ts: "<group>-<index>"), which the queue message names.
    const group = results[2]!.id.slice(0, -4);
    expect([results[2]!.id, results[3]!.id]).toEqual([`${group}-000`, `${group}-001`]);
    expect(w.stores.delayQueue.sent).toEqual([{ topicKey: w.topicKey, ids: ['x', group], delaySeconds: 5 }]);
  });

  it('a delayed producer id that was appended already answers with its place', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 1, id: 'now', partition: 0 }]);
    const [r] = await w.produce([{ body: 1, id: 'now', delaySeconds: 10 }]);
    expect(r).toEqual({ id: 'now', partition: 0, offset: 0, duplicate: true });
    expect(w.stores.delays.items.size).toBe(0);
  });

  it('a request with immediate and delayed messages answers each in its place', async () => {
    const w = await delayedWorld();
    const results = await w.produce([{ body: 'd', delaySeconds: 1 }, { body: 'n', partition: 0 }]);
    expect(results[0]).toMatchObject({ status: 'scheduled' });
    expect(results[1]).toMatchObject({ partition: 0, offset: 0 });
  });

  it('a failing queue send is logged, not thrown: the sweep queues the message later', async () => {
    const w = await delayedWorld();
    w.stores.delayQueue.failing = new Error('sqs down');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const [r] = await w.produce([{ body: 1, delaySeconds: 5, id: 'q' }]);
    expect(r).toMatchObject({ status: 'scheduled' });
    expect(JSON.parse(warn.mock.calls[0]![0] as string)).toMatchObject({ count: 1, error: 'Error: sqs down' });
  });
});

describe('landing', () => {
  it('lands a due message with its id and due time, once: a duplicate queue message lands nothing', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 'x', delaySeconds: 10, id: 'd', key: 'k', tags: ['t'] }]);
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['d'] }, FAR)).toEqual({ landed: 0, skipped: 1 });
    clock.advance(10_000);
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['d'] }, FAR)).toEqual({ landed: 1, skipped: 0 });
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['d'] }, FAR)).toEqual({ landed: 0, skipped: 1 });
    const log = await logOf(w);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ id: 'd', body: 'x', key: 'k', tags: ['t'], deliverAt: new Date(T0 + 10_000).toISOString() });
    expect(w.stores.delays.items.size).toBe(0);
  });

  it('a landing waits until the due time when its queue message came up to a second early', async () => {
    vi.useRealTimers();
    const w = await delayedWorld();
    await w.produce([{ body: 'x', delaySeconds: 0.3, id: 'early', partition: 0 }]);
    const started = Date.now();
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['early'] }, Date.now() + 10_000)).toEqual({ landed: 1, skipped: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const [m] = await logOf(w);
    expect(Date.parse(m!.producedAt)).toBeGreaterThanOrEqual(Date.parse(m!.deliverAt!));
  });

  it('a cancelled message never lands; cancel of an unknown or landed id is MessageNotFound', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 'x', delaySeconds: 10, id: 'c' }, { body: 'y', delaySeconds: 10, id: 'keep' }]);
    await cancelDelayed(w.stores, w.name, 'c');
    expect(await rejection(cancelDelayed(w.stores, w.name, 'c'))).toMatchObject({ code: 'MessageNotFound' });
    expect(await rejection(getDelayed(w.stores, w.name, 'c'))).toMatchObject({ code: 'MessageNotFound' });
    clock.advance(10_000);
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['c', 'keep'] }, FAR)).toEqual({ landed: 1, skipped: 1 });
    expect((await logOf(w)).map((m) => m.id)).toEqual(['keep']);
  });

  it('a cancel that wins the race against a landing keeps the message out; the rest land', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 'x', delaySeconds: 1, id: 'a', partition: 0 }, { body: 'y', delaySeconds: 1, id: 'b', partition: 0 }]);
    clock.advance(1000);
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementation(async (...args) => {
      await w.stores.delays.cancel(w.topicKey, 'a');
      return real(...args);
    });
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['a', 'b'] }, FAR)).toEqual({ landed: 1, skipped: 1 });
    expect((await logOf(w)).map((m) => [m.id, m.offset])).toEqual([['b', 0]]);
  });

  it('a pending message whose id was appended directly meanwhile is dropped, not landed twice', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 'x', delaySeconds: 1, id: 'twice', partition: 0 }]);
    await w.stores.log.appendSegment(w.topicKey, { partition: 0, base: 0, producedAt: T0, records: [{ b: 'direct', i: 'twice' }] }, [{ id: 'twice', partition: 0, offset: 0 }], 2e9);
    clock.advance(1000);
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['twice'] }, FAR)).toEqual({ landed: 0, skipped: 1 });
    expect(await logOf(w)).toHaveLength(1);
    expect(w.stores.delays.items.size).toBe(0);
  });

  it('the messages of a deleted (or re-created) topic are dropped', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 'x', delaySeconds: 1, id: 'gone' }]);
    await w.stores.catalog.markTopicDeleting(w.topic, T0);
    clock.advance(2000);
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['gone'] }, FAR)).toEqual({ landed: 0, skipped: 1 });
    expect(w.stores.delays.items.size).toBe(0);
  });

  it('a failure reading the topic fails the landing (the queue delivers again) instead of dropping', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 'x', delaySeconds: 1, id: 'kept' }]);
    clock.advance(2000);
    const boom = new Error('throttled');
    vi.spyOn(w.stores.catalog, 'getTopic').mockRejectedValue(boom);
    expect(await rejection(landDelayed(w.stores, { topicKey: w.topicKey, ids: ['kept'] }, FAR))).toBe(boom);
    expect(w.stores.delays.items.size).toBe(1);
  });

  it('a repeating message lands each time with its own id and the repeat header, then is gone', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 'tick', delaySeconds: 10, repeat: { everySeconds: 60, times: 3 }, id: 'r', headers: { h: '1' }, partition: 0 }]);
    for (let n = 1; n <= 3; n++) {
      clock.set(T0 + 10_000 + (n - 1) * 60_000);
      expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['r'] }, FAR)).toEqual({ landed: 1, skipped: 0 });
    }
    const log = await logOf(w);
    expect(log.map((m) => [m.id, m.headers[REPEAT_HEADER], m.headers.h])).toEqual([
      ['r', '1/3', '1'],
      ['r.2', '2/3', '1'],
      ['r.3', '3/3', '1'],
    ]);
    expect(log.map((m) => m.deliverAt)).toEqual([0, 1, 2].map((i) => new Date(T0 + 10_000 + i * 60_000).toISOString()));
    expect(w.stores.delays.items.size).toBe(0);
    // Each next landing within reach went to the queue.
    expect(w.stores.delayQueue.sent.map((m) => m.delaySeconds)).toEqual([10, 60, 60]);
  });

  it('the next landing of a repeat beyond the queue’s reach is left to the sweep', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 30 });
    await w.produce([{ body: 'tick', delaySeconds: 1, repeat: { everySeconds: 3600, times: 2 }, id: 'r' }]);
    clock.advance(1000);
    await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['r'] }, FAR);
    expect(w.stores.delayQueue.sent).toHaveLength(1);
    expect(await getDelayed(w.stores, w.name, 'r')).toMatchObject({ landing: 2, queued: false, due: T0 + 1000 + 3600_000, version: 2 });
  });

  it('keyed and explicit-partition delayed messages land where an immediate one would', async () => {
    const w = await delayedWorld({ partitions: 4 });
    await w.produce([{ body: 1, delaySeconds: 1, id: 'p', partition: 3 }]);
    clock.advance(1000);
    await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['p'] }, FAR);
    expect((await logOf(w, 3)).map((m) => m.id)).toEqual(['p']);
  });
});

describe('listing', () => {
  it('lists pending messages in due order and pages with a cursor', async () => {
    const w = await delayedWorld();
    await w.produce([
      { body: 1, delaySeconds: 30, id: 'c' },
      { body: 1, delaySeconds: 10, id: 'a' },
      { body: 1, delaySeconds: 20, id: 'b' },
    ]);
    const first = await listDelayed(w.stores, w.name, 2);
    expect(first.items.map((p) => p.id)).toEqual(['a', 'b']);
    const rest = await listDelayed(w.stores, w.name, 2, first.next);
    expect(rest.items.map((p) => p.id)).toEqual(['c']);
    expect(await rejection(listDelayed(w.stores, w.name, 2, 'bad'))).toMatchObject({ code: 'ValidationError' });
  });

  it('a page stops at about 5 MB of headers', async () => {
    const w = await delayedWorld();
    const headers = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`h${i}`, 'v'.repeat(4000)]));
    const many = Array.from({ length: 50 }, (_, i) => ({ body: 1, delaySeconds: 10 + i, id: `m${i.toString().padStart(2, '0')}`, headers }));
    await w.produce(many);
    const page = await listDelayed(w.stores, w.name, 100);
    expect(page.items.length).toBeGreaterThan(30);
    expect(page.items.length).toBeLessThan(50);
    expect(page.next).toBe(`${(T0 + (10 + page.items.length - 1) * 1000).toString().padStart(15, '0')}#${page.items.at(-1)!.id}`);
  });
});

describe('the sweep', () => {
  it('queues waiting messages that came within reach and marks them queued', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 60 });
    await w.produce([{ body: 1, delaySeconds: 600, id: 's' }]);
    expect(w.stores.delayQueue.sent).toEqual([]);
    clock.advance(500_000);
    const summary = await sweepDelayed(w.stores, FAR);
    expect(summary).toMatchObject({ queued: 0, overdue: 0, complete: true });
    clock.advance(50_000);
    const second = await sweepDelayed(w.stores, FAR);
    expect(second).toMatchObject({ queued: 1, overdue: 0, complete: true });
    expect(w.stores.delayQueue.sent).toEqual([{ topicKey: w.topicKey, ids: ['s'], delaySeconds: 50 }]);
    expect((await getDelayed(w.stores, w.name, 's')).queued).toBe(true);
    expect(await sweepDelayed(w.stores, FAR)).toMatchObject({ queued: 0 });
  });

  it('queues again a queued message that is overdue, and keeps its cursor at that minute', async () => {
    const w = await delayedWorld();
    await w.produce([{ body: 1, delaySeconds: 5, id: 'late' }]);
    expect(w.stores.delayQueue.sent).toHaveLength(1);
    clock.advance(5000 + DELAY.overdueAfterMs - 1);
    expect((await sweepDelayed(w.stores, FAR)).overdue).toBe(0);
    clock.advance(61_000);
    const summary = await sweepDelayed(w.stores, FAR);
    expect(summary.overdue).toBe(1);
    expect(summary.cursor).toBe(minuteOf(T0 + 5000));
    expect(w.stores.delayQueue.sent.at(-1)).toEqual({ topicKey: w.topicKey, ids: ['late'], delaySeconds: 0 });
    // Landed: the next sweep moves its cursor on.
    await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['late'] }, FAR);
    const after = await sweepDelayed(w.stores, FAR);
    expect(after).toMatchObject({ overdue: 0, cursor: minuteOf(Date.now() - DELAY.overdueAfterMs) });
  });

  it('a sweep past its deadline stops, keeping its cursor where it stopped', async () => {
    const stores = memoryStores();
    stores.delays.sweepCursor = minuteOf(T0) - 5;
    const summary = await sweepDelayed(stores, Date.now() - 1);
    expect(summary).toEqual({ queued: 0, overdue: 0, cursor: minuteOf(T0) - 5, complete: false });
    expect(stores.delays.sweepCursor).toBe(minuteOf(T0) - 5);
  });

  it('a failed send leaves waiting messages waiting (the sweep throws)', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 60 });
    await w.produce([{ body: 1, delaySeconds: 600, id: 'w' }]);
    clock.advance(560_000);
    w.stores.delayQueue.failing = new Error('down');
    await expect(sweepDelayed(w.stores, FAR)).rejects.toThrow('down');
    expect((await getDelayed(w.stores, w.name, 'w')).queued).toBe(false);
  });

  it('pages through a busy minute', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 60 });
    await w.produce(Array.from({ length: 500 }, (_, i) => ({ body: i, delaySeconds: 600 })));
    await w.produce(Array.from({ length: 100 }, (_, i) => ({ body: i, delaySeconds: 600 })));
    clock.advance(560_000);
    expect((await sweepDelayed(w.stores, FAR)).queued).toBe(600);
  });
});
