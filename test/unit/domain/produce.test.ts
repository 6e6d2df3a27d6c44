import { afterEach, describe, expect, it, vi } from 'vitest';
import { chunkForSegments, type Pending } from '../../../functions/domain/log/append.js';
import { browsePartition, getMessage } from '../../../functions/domain/log/browse.js';
import { LIMITS } from '../../../functions/domain/limits.js';
import { produce, raceAppendsLikeSeparateProcesses, forgetTailHints } from '../../../functions/domain/produce.js';
import { partitionForKey } from '../../../functions/domain/partitioner.js';
import { OffsetTaken, topicKeyOf } from '../../../functions/domain/ports.js';
import { createTopic, deleteTopic, describeTopic, listTopics, requireTopic } from '../../../functions/domain/topics.js';
import { serverMessageId } from '../../../functions/domain/ids.js';
import { memoryStores, retentionAt } from '../../memory/stores.js';
import { bodies, rejection, T0, unique, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => {
  raceAppendsLikeSeparateProcesses(false);
  vi.restoreAllMocks();
});

/** Every partition's offsets, in log order: gap-free from the partition's start. */
async function logOf(stores: ReturnType<typeof memoryStores>, name: string, partition = 0) {
  const page = await browsePartition(stores, name, partition, undefined, 1000);
  return page.messages;
}

describe('produce', () => {
  it('appends a batch at the tail as one segment, with offsets in order and server ids that find it', async () => {
    const w = await world({ group: null });
    const results = await w.produce(bodies(3));
    expect(results.map((r) => 'offset' in r && [r.partition, r.offset])).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
    ]);
    const again = await w.produce(bodies(2));
    expect(again.map((r) => 'offset' in r && r.offset)).toEqual([3, 4]);
    expect(w.stores.log.partitions.get(`${w.topicKey}#0`)!.map((s) => [s.base, s.count, s.producedAt])).toEqual([
      [0, 3, T0],
      [3, 2, T0],
    ]);
    expect(results[1]!.id).toBe(serverMessageId(T0, 0, 1));
    const found = await getMessage(w.stores, w.name, results[1]!.id);
    expect(found).toMatchObject({ offset: 1, body: 1, partition: 0, producedAt: new Date(T0).toISOString(), tags: [], headers: {} });
  });

  it('keeps what a message carries: key, tags, headers, a base64 body', async () => {
    const w = await world({ partitions: 4, group: null });
    const [r] = await w.produce([{ body: { a: 1 }, key: 'k1', tags: ['t'], headers: { h: 'v' } }]);
    const [b] = await w.produce([{ bodyBase64: 'AAE=', partition: 3 }]);
    expect(r).toMatchObject({ partition: partitionForKey('k1', 4), offset: 0 });
    const m = await getMessage(w.stores, w.name, r!.id);
    expect(m).toEqual({
      id: r!.id,
      partition: r!.partition,
      offset: 0,
      producedAt: new Date(T0).toISOString(),
      body: { a: 1 },
      key: 'k1',
      tags: ['t'],
      headers: { h: 'v' },
    });
    expect(await getMessage(w.stores, w.name, b!.id)).toMatchObject({ partition: 3, bodyBase64: 'AAE=' });
    expect((await getMessage(w.stores, w.name, b!.id)).body).toBeUndefined();
  });

  it('unkeyed messages of a request share one partition; successive requests move on', async () => {
    const w = await world({ partitions: 3, group: null });
    const first = await w.produce([{ body: 1 }, { body: 2 }]);
    const second = await w.produce([{ body: 3 }]);
    expect(first[0]!.partition).toBe(first[1]!.partition);
    expect('offset' in first[1]! && first[1].offset).toBe(1);
    expect(second[0]!.partition).toBe((first[0]!.partition! + 1) % 3);
  });

  it('refuses a partition outside the topic and an oversized message, storing nothing', async () => {
    const w = await world({ partitions: 2, group: null });
    const outside = await rejection(w.produce([{ body: 1, partition: 0 }, { body: 2, partition: 2 }]));
    expect(outside).toMatchObject({ code: 'ValidationError' });
    expect(outside.message).toContain('messages[1].partition');
    const big = await rejection(w.produce([{ body: 'x'.repeat(LIMITS.maxMessageBytes) }]));
    expect(big).toMatchObject({ code: 'PayloadTooLarge' });
    expect(big.message).toContain('messages[0]');
    expect(await logOf(w.stores, w.name)).toEqual([]);
    // Exactly at the limit is fine.
    const body = 'x'.repeat(LIMITS.maxMessageBytes - JSON.stringify({ b: '' }).length);
    expect(await w.produce([{ body, partition: 0 }])).toHaveLength(1);
  });

  it('a producer id appends once: a repeat in the request and a later retry answer duplicate with the original place', async () => {
    const w = await world({ group: null });
    const first = await w.produce([
      { body: 'a', id: 'm1', partition: 0 },
      { body: 'b', id: 'm2', partition: 0 },
      { body: 'a again', id: 'm1', partition: 0 },
    ]);
    expect(first).toEqual([
      { id: 'm1', partition: 0, offset: 0 },
      { id: 'm2', partition: 0, offset: 1 },
      { id: 'm1', partition: 0, offset: 0, duplicate: true },
    ]);
    const retry = await w.produce([
      { body: 'b', id: 'm2', partition: 0 },
      { body: 'c', id: 'm3', partition: 0 },
    ]);
    expect(retry).toEqual([
      { id: 'm2', partition: 0, offset: 1, duplicate: true },
      { id: 'm3', partition: 0, offset: 2 },
    ]);
    expect((await logOf(w.stores, w.name)).map((m) => m.body)).toEqual(['a', 'b', 'c']);
    expect((await getMessage(w.stores, w.name, 'm3')).body).toBe('c');
  });

  it('a producer id is remembered for the de-duplication window (or the retention, if longer), then forgotten', async () => {
    const w = await world({ group: null, retentionHours: 1 });
    await w.produce([{ body: 1, id: 'x', partition: 0 }]);
    clock.advance(LIMITS.dedupWindowSeconds * 1000);
    expect(await w.produce([{ body: 1, id: 'x', partition: 0 }])).toEqual([{ id: 'x', partition: 0, offset: 0, duplicate: true }]);
    clock.advance(1000);
    expect(await w.produce([{ body: 1, id: 'x', partition: 0 }])).toEqual([{ id: 'x', partition: 0, offset: 1 }]);
    const long = await world({ group: null, retentionHours: 48 });
    await long.produce([{ body: 1, id: 'y', partition: 0 }]);
    clock.advance(47 * 3600 * 1000);
    expect(await long.produce([{ body: 1, id: 'y', partition: 0 }])).toEqual([{ id: 'y', partition: 0, offset: 0, duplicate: true }]);
  });

  it('racing producers from separate processes get gap-free distinct offsets', async () => {
    raceAppendsLikeSeparateProcesses(true);
    const w = await world({ group: null });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => w.produce([{ body: i, partition: 0 }])));
    const offsets = results.map((r) => r[0]!.offset ?? -1).sort((a, b) => a - b);
    expect(offsets).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect((await logOf(w.stores, w.name)).map((m) => m.offset)).toEqual(offsets);
  });

  it('the same producer id racing from separate processes lands once; the others answer duplicate', async () => {
    raceAppendsLikeSeparateProcesses(true);
    const w = await world({ group: null });
    const results = await Promise.all(Array.from({ length: 5 }, () => w.produce([{ body: 'once', id: 'same', partition: 0 }])));
    const flat = results.map((r) => r[0]!);
    expect(new Set(flat.map((r) => 'offset' in r && r.offset))).toEqual(new Set([0]));
    expect(flat.filter((r) => r.duplicate)).toHaveLength(4);
    expect(await logOf(w.stores, w.name)).toHaveLength(1);
  });

  it('a racing id lands once while the rest of its request is appended', async () => {
    raceAppendsLikeSeparateProcesses(true);
    const w = await world({ group: null });
    const [a, b] = await Promise.all([
      w.produce([{ body: 'a', id: 'shared', partition: 0 }, { body: 'only a', id: 'a1', partition: 0 }]),
      w.produce([{ body: 'b', id: 'shared', partition: 0 }, { body: 'only b', id: 'b1', partition: 0 }]),
    ]);
    const all = [...a!, ...b!];
    expect(all.filter((r) => r.duplicate).map((r) => r.id)).toEqual(['shared']);
    const log = await logOf(w.stores, w.name);
    expect(log.map((m) => m.id).sort()).toEqual(['a1', 'b1', 'shared']);
    expect(log.map((m) => m.offset)).toEqual([0, 1, 2]);
  });

  it('within one process, appends to a partition queue instead of racing', async () => {
    const w = await world({ group: null });
    const append = vi.spyOn(w.stores.log, 'appendSegment');
    await Promise.all(Array.from({ length: 5 }, (_, i) => w.produce([{ body: i, partition: 0 }])));
    expect(append).toHaveBeenCalledTimes(5);
    expect((await logOf(w.stores, w.name)).map((m) => m.offset)).toEqual([0, 1, 2, 3, 4]);
  });

  it('a stale tail hint costs a failed write and uses the winner’s end, not a new tail read', async () => {
    const w = await world({ group: null });
    await w.produce(bodies(1));
    // Another process appends two segments behind this process's back.
    await w.stores.log.appendSegment(w.topicKey, { partition: 0, base: 1, producedAt: T0, records: [{ b: 'x' }, { b: 'y' }] }, [], 0);
    const tail = vi.spyOn(w.stores.log, 'tail');
    const [r] = await w.produce(bodies(1));
    expect('offset' in r! && r.offset).toBe(3);
    expect(tail).not.toHaveBeenCalled();
    forgetTailHints();
    const [s] = await w.produce(bodies(1));
    expect('offset' in s! && s.offset).toBe(4);
    expect(tail).toHaveBeenCalledTimes(1);
  });

  it('a lost race without the winner re-reads the tail', async () => {
    const w = await world({ group: null });
    await w.produce(bodies(1));
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementationOnce(async () => {
      throw new OffsetTaken();
    }).mockImplementation(real);
    const tail = vi.spyOn(w.stores.log, 'tail');
    const [r] = await w.produce(bodies(1));
    expect('offset' in r! && r.offset).toBe(1);
    expect(tail).toHaveBeenCalledTimes(1);
  });

  it('unkeyed messages that lose a race move to another partition; keyed ones stay', async () => {
    const w = await world({ partitions: 2, group: null });
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    const tried: number[] = [];
    let calls = 0;
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementation(async (key, segment, ...rest) => {
      tried.push(segment.partition);
      if (++calls === 1) throw new OffsetTaken(0);
      return real(key, segment, ...rest);
    });
    const [r] = await w.produce([{ body: 'free' }]);
    expect(tried).toHaveLength(2);
    expect(tried[1]).toBe((tried[0]! + 1) % 2);
    expect(r!.partition).toBe(tried[1]);
    tried.length = 0;
    const [k] = await w.produce([{ body: 'keyed', key: 'k' }]);
    expect(tried).toEqual([partitionForKey('k', 2)]);
    expect(k!.partition).toBe(partitionForKey('k', 2));
  });

  it('a partition contended past the deadline answers Throttled', async () => {
    const w = await world({ group: null });
    vi.spyOn(w.stores.log, 'appendSegment').mockRejectedValue(new OffsetTaken());
    const error = await rejection(produce(w.stores, w.name, bodies(1), Date.now() + 30));
    expect(error).toMatchObject({ code: 'Throttled' });
    expect(error.message).toContain('Partition 0');
  });

  it('an append that fails stops the request with that error; other partitions stop before their next attempt', async () => {
    const w = await world({ partitions: 2, group: null });
    const boom = new Error('boom');
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementation(async (key, segment, ...rest) => {
      if (segment.partition === 1) throw boom;
      return real(key, segment, ...rest);
    });
    expect(await rejection(w.produce([...bodies(1, { partition: 0 }), ...bodies(1, { partition: 1 })]))).toBe(boom);
  });

  it('splits a partition’s messages into segments at 300 KB and at 99 producer ids', async () => {
    const w = await world({ group: null });
    const big = 'y'.repeat(100 * 1024);
    await w.produce(Array.from({ length: 4 }, () => ({ body: big, partition: 0 })));
    expect(w.stores.log.partitions.get(`${w.topicKey}#0`)!.map((s) => s.count)).toEqual([2, 2]);
    const v = await world({ group: null });
    await v.produce(Array.from({ length: 150 }, (_, i) => ({ body: i, id: `id${i}`, partition: 0 })));
    expect(v.stores.log.partitions.get(`${v.topicKey}#0`)!.map((s) => s.count)).toEqual([99, 51]);
    expect((await logOf(v.stores, v.name)).map((m) => m.offset)).toEqual(Array.from({ length: 150 }, (_, i) => i));
  });

  it('chunkForSegments counts a landing as a transaction action', () => {
    const record = (i?: string) => ({ b: 1, ...(i ? { i } : {}) });
    const p = (n: number, withId: boolean, landing: boolean): Pending => ({
      index: n,
      partition: 0,
      movable: false,
      record: record(withId ? `i${n}` : undefined),
      bytes: 10,
      ...(landing ? { landing: { topicKey: 't', id: `i${n}`, version: 1 } } : {}),
    });
    const withBoth = Array.from({ length: 60 }, (_, n) => p(n, true, true));
    expect(chunkForSegments(withBoth).map((c) => c.length)).toEqual([49, 11]);
    expect(chunkForSegments(Array.from({ length: 120 }, (_, n) => p(n, false, false))).map((c) => c.length)).toEqual([120]);
    expect(chunkForSegments([])).toEqual([]);
    const sized = (bytes: number): Pending => ({ ...p(0, false, false), bytes });
    // Each message adds a separator byte.
    expect(chunkForSegments([sized(LIMITS.maxSegmentBytes - 1), sized(0)]).map((c) => c.length)).toEqual([2]);
    expect(chunkForSegments([sized(LIMITS.maxSegmentBytes - 1), sized(1)]).map((c) => c.length)).toEqual([1, 1]);
  });

  it('produce to a missing topic is TopicNotFound', async () => {
    expect(await rejection(produce(memoryStores(), unique('nope'), bodies(1)))).toMatchObject({ code: 'TopicNotFound' });
  });
});

describe('topics', () => {
  it('create is idempotent with the same settings and a Conflict with others', async () => {
    const stores = memoryStores();
    const name = unique('t');
    const first = await createTopic(stores, name, { partitions: 2, retentionHours: 24 });
    expect(first.created).toBe(true);
    expect(first.topic).toMatchObject({ name, partitions: 2, retentionHours: 24, createdAt: T0 });
    expect(first.topic.epoch).toMatch(/^[0-9a-z]+[0-9a-f]{6}$/);
    const again = await createTopic(stores, name, { partitions: 2, retentionHours: 24 });
    expect(again).toEqual({ created: false, topic: first.topic });
    // Fewer partitions: shrinking is refused (more would grow the topic: partitionGrowth.test.ts).
    expect(await rejection(createTopic(stores, name, { partitions: 1, retentionHours: 24 }))).toMatchObject({ code: 'Conflict' });
    expect(await rejection(createTopic(stores, name, { partitions: 2, retentionHours: 25 }))).toMatchObject({ code: 'Conflict' });
    expect((await listTopics(stores)).map((t) => t.name)).toEqual([name]);
  });

  it('describe gives each partition its start and end offsets', async () => {
    const w = await world({ partitions: 2, retentionHours: 1, group: null });
    await w.produce(bodies(3));
    clock.advance(26 * 3600 * 1000);
    await w.produce(bodies(2));
    await retentionAt(w.stores, w.name);
    const { partitionsInfo } = await describeTopic(w.stores, w.name);
    expect(partitionsInfo).toEqual([
      { partition: 0, startOffset: 3, endOffset: 5 },
      { partition: 1, startOffset: 0, endOffset: 0 },
    ]);
  });

  it('delete removes groups and their state, waits out the warm caches, and buries the incarnation', async () => {
    const w = await world();
    await w.produce(bodies(1));
    await w.pull();
    // The wait runs on fake timers: the delete answers only once 1.25 s have passed.
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout'] });
    let done = false;
    const deleting = deleteTopic(w.stores, w.name).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(1249);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await deleting;
    expect(done).toBe(true);
    expect(await rejection(requireTopic(w.stores, w.name))).toMatchObject({ code: 'TopicNotFound' });
    expect(await w.stores.catalog.listGroups(w.name)).toEqual([]);
    expect(w.stores.groupState.groups.has(w.groupKey)).toBe(false);
    expect((await w.stores.catalog.listBuriedTopics()).map(topicKeyOf)).toEqual([w.topicKey]);
    expect(await rejection(deleteTopic(w.stores, w.name))).toMatchObject({ code: 'TopicNotFound' });
  });

  it('a topic being deleted is gone for reads and cannot be created again until the delete finished', async () => {
    const w = await world({ group: null });
    await w.stores.catalog.markTopicDeleting(w.topic, Date.now() - 10_000);
    expect(await rejection(requireTopic(w.stores, w.name))).toMatchObject({ code: 'TopicNotFound' });
    expect(await rejection(createTopic(w.stores, w.name, { partitions: 1, retentionHours: 72 }))).toMatchObject({ code: 'Conflict' });
    expect(await listTopics(w.stores)).toEqual([]);
    // A repeated DELETE finishes the job at once: the mark is older than the caches.
    const started = performance.now();
    await deleteTopic(w.stores, w.name);
    expect(performance.now() - started).toBeLessThan(500);
    expect(await w.stores.catalog.getTopic(w.name)).toBeUndefined();
  });
});

describe('browse and lookup', () => {
  it('browse pages through a partition from its start, and refuses a partition outside the topic', async () => {
    const w = await world({ partitions: 2, group: null });
    await w.produce(bodies(5));
    const page = await browsePartition(w.stores, w.name, 0, undefined, 2);
    expect(page.messages.map((m) => m.offset)).toEqual([0, 1]);
    expect(page.next).toBe(2);
    const rest = await browsePartition(w.stores, w.name, 0, page.next, 10);
    expect(rest.messages.map((m) => m.offset)).toEqual([2, 3, 4]);
    expect(rest.next).toBe(5);
    expect(await rejection(browsePartition(w.stores, w.name, 2, undefined, 1))).toMatchObject({ code: 'ValidationError' });
  });

  it('a lookup by an unknown id, or a server id of another partition or offset, is MessageNotFound', async () => {
    const w = await world({ partitions: 2, group: null });
    const [r] = await w.produce(bodies(1));
    expect(await rejection(getMessage(w.stores, w.name, 'nope'))).toMatchObject({ code: 'MessageNotFound' });
    expect(await rejection(getMessage(w.stores, w.name, serverMessageId(T0, 0, 5)))).toMatchObject({ code: 'MessageNotFound' });
    expect(await rejection(getMessage(w.stores, w.name, serverMessageId(T0, 7, 0)))).toMatchObject({ code: 'MessageNotFound' });
    // Right place, wrong time: not this message.
    expect(await rejection(getMessage(w.stores, w.name, serverMessageId(T0 + 1, 0, 0)))).toMatchObject({ code: 'MessageNotFound' });
    expect((await getMessage(w.stores, w.name, r!.id)).offset).toBe(0);
  });
});
