/**
 * Rules at their edges that the other fast tests pass through without pinning: redrive's batching by
 * bytes and its deadline, the dead-letter cursor's message, schedule's texts and the fields a delayed
 * message keeps.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listDeadLetters, redriveDeadLetters } from '../../../functions/domain/groups/deadLetters.js';
import { DELAY, minuteOf } from '../../../functions/domain/delay/limits.js';
import { queueDue } from '../../../functions/domain/delay/queueing.js';
import { landDelayed } from '../../../functions/domain/delay/land.js';
import { dispatchPush } from '../../../functions/domain/push/dispatch.js';
import { pushPartition, type PushPorts } from '../../../functions/domain/push/worker.js';
import type { PushVerdict } from '../../../functions/domain/push/reply.js';
import { partitionForKey } from '../../../functions/domain/partitioner.js';
import { browsePartition, getMessage } from '../../../functions/domain/log/browse.js';
import { sweepDelayed } from '../../../functions/domain/delay/sweep.js';
import type { PendingDelayed } from '../../../functions/domain/ports.js';
import { prepareDelayed, scheduleDelayed } from '../../../functions/domain/delay/schedule.js';
import { LIMITS } from '../../../functions/domain/limits.js';
import { iso } from '../../../functions/domain/time.js';
import { hashApiKey, verifyApiKey } from '../../../functions/domain/apiKeys.js';
import { groupNotFound, SluiceError, topicNotFound } from '../../../functions/domain/errors.js';
import { createTopic } from '../../../functions/domain/topics.js';
import { parseServerMessageId, serverMessageId } from '../../../functions/domain/ids.js';
import { toRecord } from '../../../functions/domain/messages.js';
import { parseTime } from '../../../functions/domain/time.js';
import { MemoryApiKeyStore, memoryStores } from '../../memory/stores.js';
import { replyBytes } from '../../../functions/domain/log/logReader.js';
import { parsePosition, putGroup, resetGroup, retryOnConflict } from '../../../functions/domain/groups/groups.js';
import { OffsetTaken, topicKeyOf, VersionConflict } from '../../../functions/domain/ports.js';
import { produce } from '../../../functions/domain/produce.js';
import { applyRedrive, freshProgress, rememberDead, type PartitionProgress } from '../../../functions/domain/groups/progress.js';
import { ack, pull, pullAndAck } from '../../../functions/domain/groups/consume.js';
import { rejection, T0, unique, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => {
  vi.restoreAllMocks();
});

describe('redrive batches', () => {
  /** `n` dead letters of partition 0, each body `chars` characters of `char`. */
  async function withDead(n: number, chars: number, char = 'é') {
    const w = await world({ group: { maxDeliveries: 1 } });
    for (let i = 0; i < n; i++) await w.produce([{ body: char.repeat(chars), partition: 0 }]);
    while ((await w.pull()).length > 0);
    clock.advance(30_000);
    while ((await listDeadLetters(w.stores, w.name, w.group, 1000)).letters.length < n) await w.pull();
    return w;
  }

  const writes = (w: Awaited<ReturnType<typeof withDead>>) => w.stores.calls.filter((c) => c === 'groupState.putProgress').length;

  it('a transaction moves at most 3 MB of letters, counted in UTF-8 bytes', async () => {
    // 20 letters of ~200 KB (100,000 two-byte characters): 15 fit in 3 MB, so two transactions, though a
    // page (counted in characters) holds all 20.
    const w = await withDead(20, 100_000);
    const before = writes(w);
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 20, deferred: 0 });
    expect(writes(w) - before).toBe(2);
    expect((await listDeadLetters(w.stores, w.name, w.group, 100)).letters).toEqual([]);
    expect((await w.pull({ max: 100 })).length).toBeGreaterThan(0);
  });

  it('small letters go back in one transaction', async () => {
    const w = await withDead(20, 10, 'a');
    const before = writes(w);
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 20, deferred: 0 });
    expect(writes(w) - before).toBe(1);
  });

  it('moves nothing at its deadline', async () => {
    const w = await withDead(2, 10, 'a');
    expect(await redriveDeadLetters(w.stores, w.name, w.group, Date.now())).toEqual({ redriven: 0, deferred: 0 });
    expect((await listDeadLetters(w.stores, w.name, w.group, 100)).letters).toHaveLength(2);
  });

  it('refuses a cursor it did not hand out, saying so', async () => {
    const w = await world();
    expect(await rejection(listDeadLetters(w.stores, w.name, w.group, 10, 'd#1'))).toMatchObject({
      code: 'ValidationError',
      message: 'after is not a cursor returned by this API.',
    });
  });
});

describe('delayed messages: checks and what is kept', () => {
  const topic = { name: 't', partitions: 2, retentionHours: 24, createdAt: T0, epoch: 'e1' };
  const one = (input: Parameters<typeof prepareDelayed>[1][number]['input'], index = 3) => prepareDelayed(topic, [{ index, input }], T0);
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      return error as Error & { code?: string };
    }
    throw new Error('expected a refusal');
  };

  it('refuses, word for word', () => {
    expect(refusal(() => one({ body: 1, delaySeconds: 1, deliverAt: T0 }))).toMatchObject({
      code: 'ValidationError',
      message: 'messages[3]: give delaySeconds or deliverAt, not both.',
    });
    expect(refusal(() => one({ body: 1, delaySeconds: 1, partition: 2 }))).toMatchObject({
      code: 'ValidationError',
      message: "messages[3].partition must be below the topic's 2 partitions.",
    });
    expect(refusal(() => one({ body: 1, deliverAt: 'tomorrow' }))).toMatchObject({
      message: 'messages[3].deliverAt must be an ISO-8601 time or epoch milliseconds.',
    });
    expect(refusal(() => one({ body: 1, deliverAt: T0 + DELAY.maxDelayMs + 1 }))).toMatchObject({
      message: `messages[3].deliverAt is more than 2 years ahead (${iso(T0 + DELAY.maxDelayMs)} at the latest).`,
    });
  });

  it('takes a message of exactly the size limit (its id included), not a byte more', () => {
    // {"b":"…","i":"x"} is 16 bytes around the body.
    const body = 'x'.repeat(LIMITS.maxMessageBytes - 16);
    expect(one({ body, id: 'x', delaySeconds: 5 })).toHaveLength(1);
    expect(refusal(() => one({ body: `${body}y`, id: 'x', delaySeconds: 5 }))).toMatchObject({
      code: 'PayloadTooLarge',
      message: `messages[3] is ${LIMITS.maxMessageBytes + 1} bytes encoded; the limit is ${LIMITS.maxMessageBytes}.`,
    });
  });

  it('keeps the key and partition only when given, due now without a delay', () => {
    expect(one({ body: 1, id: 'p', key: 'k', partition: 1, delaySeconds: 2 })).toStrictEqual([
      { index: 3, id: 'p', producerId: true, due: T0 + 2000, record: { b: 1, k: 'k', i: 'p' }, key: 'k', partition: 1 },
    ]);
    const [plain] = one({ body: 1 });
    expect(plain).toStrictEqual({ index: 3, id: plain!.id, producerId: false, due: T0, record: { b: 1, i: plain!.id } });
  });

  it('stores pending records with what they were given, queued when due within the queue delay (its edge included)', async () => {
    const stores = memoryStores();
    const maxQueueMs = stores.delayQueue.maxDelaySeconds * 1000;
    const prepared = prepareDelayed(
      topic,
      [
        { index: 0, input: { body: 1, id: 'a', key: 'k', deliverAt: T0 + maxQueueMs } },
        { index: 1, input: { body: 2, id: 'b', partition: 1, deliverAt: T0 + maxQueueMs + 1 } },
      ],
      T0,
    );
    const out = await scheduleDelayed(stores, topic, prepared);
    expect(out).toEqual([
      { index: 0, result: { id: 'a', status: 'scheduled', deliverAt: iso(T0 + maxQueueMs) } },
      { index: 1, result: { id: 'b', status: 'scheduled', deliverAt: iso(T0 + maxQueueMs + 1) } },
    ]);
    const a = await stores.delays.get('t@e1', 'a');
    const b = await stores.delays.get('t@e1', 'b');
    expect(a).toMatchObject({ key: 'k', queued: true });
    expect(a).not.toHaveProperty('partition');
    expect(b).toMatchObject({ partition: 1, queued: false });
    expect(b).not.toHaveProperty('key');
  });
});

describe('small rules, word for word', () => {
  it('api keys: the sha-256 hex of the key; longer than 100 characters is never looked up', async () => {
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const store = new MemoryApiKeyStore();
    const key100 = `slk_${'a'.repeat(96)}`;
    const key101 = `${key100}a`;
    for (const key of [key100, key101]) await store.put({ keyHash: hashApiKey(key), id: key.length.toString(), name: 'n', createdAt: 0 });
    expect(await verifyApiKey(store, key100)).toMatchObject({ id: '100' });
    expect(await verifyApiKey(store, key101)).toBeUndefined();
  });

  it('error texts', () => {
    expect(topicNotFound('t')).toMatchObject({ name: 'SluiceError', code: 'TopicNotFound', message: "Topic 't' does not exist." });
    expect(groupNotFound('t', 'g')).toMatchObject({ code: 'GroupNotFound', message: "Consumer group 'g' does not exist on topic 't'." });
    expect(new SluiceError('Conflict', 'x').name).toBe('SluiceError');
  });

  it('server ids: only what the format allows decodes', () => {
    expect(parseServerMessageId(serverMessageId(T0, 3, 7))).toEqual({ producedAt: T0, partition: 3, offset: 7 });
    expect(parseServerMessageId('hello!')).toBeUndefined();
    expect(parseServerMessageId('p1')).toBeUndefined();
  });

  it('a record leaves out what a message does not have', () => {
    expect(toRecord({ body: 1 })).toStrictEqual({ b: 1 });
    expect(toRecord({ body: 1, key: 'k', id: 'i' })).toStrictEqual({ b: 1, k: 'k', i: 'i' });
  });

  it('times: epoch 0 is a time; an ISO date must start the text, with two-digit days', () => {
    expect(parseTime(0, 'f')).toBe(0);
    expect(() => parseTime(' 2030-01-01', 'f')).toThrow('f must be an ISO-8601 time or epoch milliseconds.');
    expect(() => parseTime('2030-01-1', 'f')).toThrow('f must be an ISO-8601 time or epoch milliseconds.');
    expect(parseTime('2030-01-01', 'f')).toBe(Date.UTC(2030, 0, 1));
  });
});

describe('pull: who may pull, and how much one reply carries', () => {
  it('a push group cannot be pulled; a group delivered by pull can', async () => {
    const http = { type: 'http' as const, url: 'https://example.com/hook', batchSize: 2, maxConcurrency: 1, timeoutSeconds: 5 };
    const pushed = await world({ group: { delivery: http } });
    expect(await rejection(pushed.pull())).toMatchObject({
      code: 'Conflict',
      message: `Group '${pushed.group}' is delivered by http push; it cannot be pulled.`,
    });
    const pulled = await world({ group: { delivery: { type: 'pull' } } });
    await pulled.produce([{ body: 1 }]);
    expect(await pulled.pull()).toHaveLength(1);
  });

  it('a broadcast pull needs a consumer id', async () => {
    const w = await world({ group: { mode: 'broadcast' } });
    expect(await rejection(pull(w.stores, w.name, w.group, { max: 10, waitSeconds: 0 }))).toMatchObject({
      code: 'ValidationError',
      message: 'consumerId is required to pull from a broadcast group.',
    });
  });

  it('a reply stops at the reply byte budget; the rest comes with the next pull', async () => {
    const w = await world();
    for (let i = 0; i < 24; i++) await w.produce([{ body: 'x'.repeat(240 * 1024), partition: 0 }]);
    const first = await w.pull({ max: 100 });
    const total = first.reduce((sum, d) => sum + replyBytes(d), 0);
    expect(total).toBeLessThanOrEqual(LIMITS.maxReplyMessageBytes);
    // One more would not have fit.
    expect(total + replyBytes(first[0]!)).toBeGreaterThan(LIMITS.maxReplyMessageBytes);
    expect(first.length).toBeLessThan(24);
    const rest = await w.pull({ max: 100 });
    expect(first.length + rest.length).toBe(24);
  });

  it('a receipt of a partition the topic does not have is stale', async () => {
    const w = await world({ partitions: 2 });
    await w.produce([{ body: 1, partition: 1 }]);
    const [d] = await w.pull();
    const foreign = d!.receipt.replace(/^1\./, '2.');
    expect(foreign).not.toBe(d!.receipt);
    expect(await ack(w.stores, w.name, w.group, [foreign])).toMatchObject({ settled: 0, stale: [foreign] });
    expect(await ack(w.stores, w.name, w.group, [d!.receipt])).toMatchObject({ settled: 1, stale: [] });
  });

  it('a pull that acks a receipt of a partition the topic does not have answers it stale, and acks the others', async () => {
    const w = await world({ partitions: 2 });
    await w.produce([{ body: 1, partition: 1 }]);
    const [d] = await w.pull();
    const foreign = d!.receipt.replace(/^1\./, '2.');
    const out = await pullAndAck(w.stores, w.name, w.group, { max: 10, waitSeconds: 0, ackReceipts: [foreign, d!.receipt] });
    expect(out.acks).toMatchObject({ settled: 1, stale: [foreign] });
  });
});

describe('progress planners: dead marks and redrive', () => {
  const HOUR = 3600_000;

  it('remembers dead offsets for the longest lease, once each, at most maxDeadMarks', () => {
    const now = T0;
    const horizon = now - LIMITS.maxVisibilitySeconds * 1000;
    const marks = [
      { offset: 1, at: horizon },
      { offset: 2, at: horizon + 1 },
      { offset: 5, at: now - HOUR },
    ];
    expect(rememberDead(marks, [5, 9], now)).toEqual([
      { offset: 2, at: horizon + 1 },
      { offset: 5, at: now },
      { offset: 9, at: now },
    ]);
    const many = Array.from({ length: LIMITS.maxDeadMarks }, (_, i) => ({ offset: i, at: now - 1 }));
    const kept = rememberDead(many, [1000], now);
    expect(kept).toHaveLength(LIMITS.maxDeadMarks);
    expect(kept[0]).toEqual({ offset: 1, at: now - 1 });
    expect(kept.at(-1)).toEqual({ offset: 1000, at: now });
  });

  it('redrive: sorted and once each; offsets the group reads again come from the log; the rest as room allows', () => {
    const progress: PartitionProgress = {
      ...freshProgress(0),
      dispatched: 10,
      entries: [{ offset: 5, until: T0 + 1000, deliveries: 1, token: 'tok123' }],
      dead: [
        { offset: 3, at: T0 - 1 },
        { offset: 5, at: T0 - 1 },
        { offset: 8, at: T0 - 1 },
        { offset: 12, at: T0 - 1 },
        { offset: 20, at: T0 - 1 },
      ],
      version: 4,
    };
    const plan = applyRedrive(progress, [8, 12, 7, 5, 3, 3], T0, 3);
    expect(plan).toEqual({
      accepted: [3, 7],
      fromLog: [5, 12],
      deferred: [8],
      next: {
        dispatched: 10,
        segmentHint: -1,
        entries: [
          { offset: 3, until: T0, deliveries: 0, token: '', copy: true },
          { offset: 5, until: T0 + 1000, deliveries: 1, token: 'tok123' },
          { offset: 7, until: T0, deliveries: 0, token: '', copy: true },
        ],
        dead: [
          { offset: 8, at: T0 - 1 },
          { offset: 20, at: T0 - 1 },
        ],
        version: 5,
      },
    });
  });
});

describe('groups, word for word', () => {
  it('refusals name what is wrong', async () => {
    expect(() => parsePosition('yesterday')).toThrow('startFrom must be an ISO-8601 time or epoch milliseconds.');
    const w = await world({ partitions: 2 });
    const http = { type: 'http' as const, url: 'https://example.com/hook', batchSize: 2, maxConcurrency: 1, timeoutSeconds: 5 };
    expect(
      await rejection(putGroup(w.stores, w.name, 'b', { mode: 'broadcast', startFrom: 'earliest', maxDeliveries: 3, visibilitySeconds: 30, delivery: http })),
    ).toMatchObject({
      code: 'ValidationError',
      message: 'broadcast groups are pulled: every consumer instance names itself; push delivery needs a shared or ordered group.',
    });
    expect(await rejection(putGroup(w.stores, w.name, w.group, { mode: 'ordered', startFrom: 'earliest', maxDeliveries: 3, visibilitySeconds: 30 }))).toMatchObject({
      code: 'Conflict',
      message: `Group '${w.group}' exists with mode 'shared'; a group's mode cannot change.`,
    });
    expect(await rejection(resetGroup(w.stores, w.name, w.group, { partition: 2, offset: 0 }))).toMatchObject({
      code: 'ValidationError',
      message: "partition must be below the topic's 2 partitions.",
    });
    expect(
      await rejection(
        retryOnConflict(async () => {
          throw new VersionConflict();
        }, 2),
      ),
    ).toMatchObject({ code: 'Throttled', message: 'Group state is contended; retry the request.' });
  });

  it('a group delivered by pull stores no delivery setting, and no transform unless given', async () => {
    const w = await world({ group: { delivery: { type: 'pull' } } });
    const stored = await w.stores.catalog.getGroup(w.name, w.group);
    expect(stored).not.toHaveProperty('delivery');
    expect(stored).not.toHaveProperty('transform');
    await putGroup(w.stores, w.name, w.group, { mode: 'shared', startFrom: 'earliest', maxDeliveries: 3, visibilitySeconds: 60, delivery: { type: 'pull' } });
    const updated = await w.stores.catalog.getGroup(w.name, w.group);
    expect(updated).toMatchObject({ visibilitySeconds: 60 });
    expect(updated).not.toHaveProperty('delivery');
    expect(updated).not.toHaveProperty('transform');
  });
});

describe('append: backoff and attempts', () => {
  /** A topic whose appends all lose their race; counts them, and the partitions tried. */
  async function contended(partitions = 1) {
    const w = await world({ partitions, group: null });
    const tried: number[] = [];
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementation(async (_key, segment) => {
      tried.push(segment.partition);
      throw new OffsetTaken();
    });
    return { w, tried };
  }

  it('waits up to 10 ms · 2^attempt (full jitter) and gives up when the next wait reaches the deadline', async () => {
    const { w, tried } = await contended();
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    // Waits of 5, 10, 20 ms, then 40: that one reaches a deadline 40 ms away.
    const error = await rejection(produce(w.stores, w.name, [{ body: 1, partition: 0 }], Date.now() + 40));
    expect(error).toMatchObject({ code: 'Throttled', message: `Partition 0 of '${w.name}' is contended; retry the request.` });
    expect(tried).toHaveLength(4);
  });

  it('tries 100 times at most', async () => {
    const { w, tried } = await contended();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect(await rejection(produce(w.stores, w.name, [{ body: 1, partition: 0 }], Date.now() + 60_000))).toMatchObject({ code: 'Throttled' });
    expect(tried).toHaveLength(100);
  });

  it('unkeyed messages go round every partition without waiting, then wait like the others', async () => {
    const { w, tried } = await contended(3);
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    // The first wait (~10 ms) is past a deadline 1 ms away: only the round of the partitions is tried.
    expect(await rejection(produce(w.stores, w.name, [{ body: 1 }], Date.now() + 1))).toMatchObject({ code: 'Throttled' });
    expect(tried).toEqual([tried[0], (tried[0]! + 1) % 3, (tried[0]! + 2) % 3]);
  });
});

describe('delay queue and sweep edges', () => {
  const pending = (id: string, due: number, queued = false): PendingDelayed => ({
    topicKey: 't@e1',
    id,
    due,
    record: { b: 1, i: id },
    landing: 1,
    queued,
    version: 1,
    createdAt: T0,
  });

  it('one queue message per topic and due second, delayed to the earliest due time of that second, 100 ids each', async () => {
    const stores = memoryStores();
    const now = T0 + 500;
    // Same second (T0+5 s): the earlier due time sets the delay, though it comes second.
    expect(await queueDue(stores, [pending('late', T0 + 5900), pending('early', T0 + 5000)], now)).toBe(1);
    expect(stores.delayQueue.sent).toEqual([{ topicKey: 't@e1', ids: ['late', 'early'], delaySeconds: 4 }]);
    const hundred = Array.from({ length: 100 }, (_, i) => pending(`h${i}`, T0 + 20_000));
    expect(await queueDue(stores, hundred, now)).toBe(1);
    expect(stores.delayQueue.sent).toHaveLength(2);
    expect(stores.delayQueue.sent[1]!.ids).toHaveLength(100);
  });

  it('a failed send is logged as a warning (unless the caller wants it thrown)', async () => {
    const stores = memoryStores();
    stores.delayQueue.failing = new Error('queue down');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(await queueDue(stores, [pending('a', T0 + 5000)], T0)).toBe(1);
    expect(JSON.parse(warn.mock.calls[0]![0] as string)).toEqual({
      level: 'WARN',
      message: 'delay queue send failed; the sweep will queue these again once overdue',
      count: 1,
      error: 'Error: queue down',
    });
    expect(await rejection(queueDue(stores, [pending('a', T0 + 5000)], T0, { rethrow: true }))).toMatchObject({ message: 'queue down' });
  });

  it('without a cursor the sweep starts a minute back; it queues what is due within reach, the reach included', async () => {
    const stores = memoryStores();
    const now = T0;
    const reach = now + stores.delayQueue.maxDelaySeconds * 1000;
    expect(minuteOf(reach + 1)).toBe(minuteOf(reach));
    for (const p of [pending('previousMinute', (minuteOf(now) - 1) * 60_000 + 55_000), pending('atReach', reach), pending('pastReach', reach + 1)]) {
      await stores.delays.create(p);
    }
    const out = await sweepDelayed(stores, now + 60_000, now);
    expect(out).toMatchObject({ queued: 2, complete: true });
    expect(stores.delayQueue.sent.flatMap((m) => m.ids).sort()).toEqual(['atReach', 'previousMinute']);
    expect((await stores.delays.get('t@e1', 'pastReach'))!.queued).toBe(false);
  });

  it('queues again queued messages overdue by more than overdueAfterMs, within the overdue minute too', async () => {
    const stores = memoryStores();
    const now = T0 + 30_000;
    const overdueBefore = now - DELAY.overdueAfterMs;
    for (const p of [pending('overdue', overdueBefore - 1, true), pending('justInTime', overdueBefore, true)]) await stores.delays.create(p);
    stores.delays.sweepCursor = minuteOf(overdueBefore);
    const out = await sweepDelayed(stores, Date.now() + 60_000, now);
    expect(out).toMatchObject({ overdue: 1 });
    expect(stores.delayQueue.sent.flatMap((m) => m.ids)).toEqual(['overdue']);
  });

  it('a sweep at its deadline does nothing and keeps the cursor', async () => {
    const stores = memoryStores();
    await stores.delays.create(pending('a', T0 + 1000));
    const out = await sweepDelayed(stores, Date.now(), T0);
    expect(out).toMatchObject({ queued: 0, complete: false });
    expect(stores.delayQueue.sent).toEqual([]);
  });
});

describe('landing edges', () => {
  const FAR = T0 + 1e12;

  it('a message of another incarnation of the topic is dropped, not landed', async () => {
    const w = await world({ group: null });
    const old = `${w.name}@olderEpoch`;
    await w.stores.delays.create({ topicKey: old, id: 'd', due: T0, record: { b: 1, i: 'd' }, landing: 1, queued: true, version: 1, createdAt: T0 });
    expect(await landDelayed(w.stores, { topicKey: old, ids: ['d'] }, FAR)).toEqual({ landed: 0, skipped: 1 });
    expect(w.stores.delays.items.size).toBe(0);
    expect((await browsePartition(w.stores, w.name, 0, undefined, 10)).messages).toEqual([]);
  });

  it('a failure to read the topic other than TopicNotFound fails the landing and drops nothing', async () => {
    const w = await world({ group: null });
    const other = unique('fresh');
    await createTopic(w.stores, other, { partitions: 1, retentionHours: 24 });
    const topicKey = topicKeyOf((await w.stores.catalog.getTopic(other))!);
    await w.stores.delays.create({ topicKey, id: 'd', due: T0, record: { b: 1, i: 'd' }, landing: 1, queued: true, version: 1, createdAt: T0 });
    vi.spyOn(w.stores.catalog, 'getTopic').mockRejectedValue(new SluiceError('Throttled', 'slow down'));
    expect(await rejection(landDelayed(w.stores, { topicKey, ids: ['d'] }, FAR))).toMatchObject({ code: 'Throttled' });
    expect(w.stores.delays.items.size).toBe(1);
  });

  it('a keyed message lands at its key’s partition', async () => {
    const w = await world({ partitions: 4, group: null });
    await w.produce([{ body: 1, key: 'some key', id: 'k', delaySeconds: 5 }]);
    clock.advance(5000);
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['k'] }, FAR)).toEqual({ landed: 1, skipped: 0 });
    expect((await browsePartition(w.stores, w.name, partitionForKey('some key', 4), undefined, 10)).messages.map((m) => m.id)).toEqual(['k']);
  });

  it('a repeat’s next landing exactly one queue delay away is queued at once', async () => {
    const w = await world({ group: null });
    const every = w.stores.delayQueue.maxDelaySeconds;
    await w.produce([{ body: 1, id: 'r', partition: 0, repeat: { everySeconds: every, times: 3 } }]);
    const sent = w.stores.delayQueue.sent.length;
    expect(await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['r'] }, FAR)).toEqual({ landed: 1, skipped: 0 });
    expect(w.stores.delayQueue.sent.slice(sent)).toEqual([{ topicKey: w.topicKey, ids: ['r'], delaySeconds: every }]);
    expect((await w.stores.delays.get(w.topicKey, 'r'))!).toMatchObject({ landing: 2, queued: true, due: T0 + every * 1000 });
  });
});

describe('push dispatch edges', () => {
  const http = { type: 'http' as const, url: 'https://example.com/hook', batchSize: 2, maxConcurrency: 1, timeoutSeconds: 5 };

  it('a topic being deleted gets no push work', async () => {
    const w = await world({ group: { delivery: http } });
    await w.stores.catalog.markTopicDeleting(w.topic, Date.now());
    expect(await dispatchPush(w.stores, [{ topicKey: w.topicKey, partition: 0 }])).toBe(0);
    expect(w.stores.pushQueue.sent).toEqual([]);
  });

  it('only push groups of this incarnation get work', async () => {
    const w = await world({ group: { delivery: http } });
    const mine = (await w.stores.catalog.getGroup(w.name, w.group))!;
    await w.stores.catalog.createGroup({ ...mine, name: 'older', topicEpoch: 'an-older-epoch' });
    await w.stores.catalog.createGroup({ ...mine, name: 'pulled', delivery: { type: 'pull' } });
    expect(await dispatchPush(w.stores, [{ topicKey: w.topicKey, partition: 0 }])).toBe(1);
    expect(w.stores.pushQueue.sent.map((s) => s.work.group)).toEqual([w.group]);
  });
});

describe('push worker edges', () => {
  const http = { type: 'http' as const, url: 'https://example.com/hook', batchSize: 2, maxConcurrency: 1, timeoutSeconds: 5 };
  const FAR = T0 + 1e9;

  function recorder(verdicts: PushVerdict[]) {
    const sent: Array<{ batchId: string; messages: Array<Record<string, unknown>> }> = [];
    const ports: PushPorts = {
      async http(_target, batchId, body) {
        sent.push({ batchId, messages: (JSON.parse(body) as { messages: Array<Record<string, unknown>> }).messages });
        return verdicts.length > 1 ? verdicts.shift()! : verdicts[0]!;
      },
      async lambda() {
        throw new Error('not a lambda group');
      },
    };
    return { ports, sent };
  }

  it('a batch id is the same for a retry of the same messages, and differs between batches and groups', async () => {
    const w = await world({ group: { delivery: http } });
    await putGroup(w.stores, w.name, 'second', { mode: 'shared', startFrom: 'earliest', maxDeliveries: 5, visibilitySeconds: 30, delivery: http });
    await w.produce([{ body: 0 }, { body: 1 }, { body: 2 }, { body: 3 }].map((m) => ({ ...m, partition: 0 })));
    const first = recorder([{ kind: 'failed', reason: 'down' }, { kind: 'delivered' }]);
    expect(await pushPartition(w.stores, first.ports, w.name, w.group, 0, FAR)).toMatchObject({ delivered: 2, failed: 2 });
    const [failedBatch, otherBatch] = first.sent;
    expect(failedBatch!.messages.map((m) => m.offset)).toEqual([0, 1]);
    expect(otherBatch!.messages.map((m) => m.offset)).toEqual([2, 3]);
    expect(failedBatch!.batchId).not.toBe(otherBatch!.batchId);
    clock.advance(60_000);
    const retry = recorder([{ kind: 'delivered' }]);
    await pushPartition(w.stores, retry.ports, w.name, w.group, 0, FAR);
    expect(retry.sent.map((b) => b.batchId)).toEqual([failedBatch!.batchId]);
    const second = recorder([{ kind: 'delivered' }]);
    await pushPartition(w.stores, second.ports, w.name, 'second', 0, FAR);
    expect(second.sent[0]!.messages.map((m) => m.offset)).toEqual([0, 1]);
    expect(second.sent[0]!.batchId).not.toBe(failedBatch!.batchId);
  });

  it('a pushed message carries deliverAt only when it was delayed', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce([{ body: 'now', partition: 0 }, { body: 'later', id: 'd', partition: 0, delaySeconds: 1 }]);
    clock.advance(1000);
    await landDelayed(w.stores, { topicKey: w.topicKey, ids: ['d'] }, FAR);
    const r = recorder([{ kind: 'delivered' }]);
    await pushPartition(w.stores, r.ports, w.name, w.group, 0, FAR);
    const [plain, delayed] = r.sent[0]!.messages;
    expect(plain).not.toHaveProperty('deliverAt');
    expect(delayed).toMatchObject({ id: 'd', deliverAt: new Date(T0 + 1000).toISOString() });
  });

  it('a group without push delivery is not pushed', async () => {
    const w = await world();
    const mine = (await w.stores.catalog.getGroup(w.name, w.group))!;
    await w.stores.catalog.createGroup({ ...mine, name: 'pulled', delivery: { type: 'pull' } });
    await w.produce([{ body: 1 }]);
    const r = recorder([{ kind: 'delivered' }]);
    expect(await pushPartition(w.stores, r.ports, w.name, w.group, 0, FAR)).toEqual({ delivered: 0, failed: 0, more: false });
    expect(await pushPartition(w.stores, r.ports, w.name, 'pulled', 0, FAR)).toEqual({ delivered: 0, failed: 0, more: false });
    expect(r.sent).toEqual([]);
    expect(await w.pull()).toHaveLength(1);
  });
});

describe('browse edges', () => {
  it('refuses a partition outside the topic and an unknown id, word for word', async () => {
    const w = await world({ partitions: 2, group: null });
    expect(await rejection(browsePartition(w.stores, w.name, 2, undefined, 10))).toMatchObject({
      code: 'ValidationError',
      message: "partition must be below the topic's 2 partitions.",
    });
    expect(await rejection(getMessage(w.stores, w.name, 'nope'))).toMatchObject({ code: 'MessageNotFound', message: `No message 'nope' in topic '${w.name}'.` });
  });

  it('a message has only the fields it was given (no key when it had none)', async () => {
    const w = await world({ group: null });
    const [r] = await w.produce([{ body: 1, partition: 0 }]);
    expect(await getMessage(w.stores, w.name, r!.id)).toStrictEqual({
      id: r!.id,
      partition: 0,
      offset: 0,
      producedAt: new Date(T0).toISOString(),
      body: 1,
      tags: [],
      headers: {},
    });
  });

  it('a page stops at a reply’s worth of bytes; next continues it', async () => {
    const w = await world({ group: null });
    for (let i = 0; i < 24; i++) await w.produce([{ body: 'x'.repeat(240 * 1024), partition: 0 }]);
    const first = await browsePartition(w.stores, w.name, 0, undefined, 1000);
    expect(first.messages.length).toBeLessThan(24);
    expect(first.next).toBe(first.messages.length);
    const rest = await browsePartition(w.stores, w.name, 0, first.next, 1000);
    expect(first.messages.length + rest.messages.length).toBe(24);
  });
});
