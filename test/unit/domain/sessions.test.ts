/**
 * Producer sessions over the in-memory ports (fast; the mutation run uses these). The emulator-backed
 * tests, with lost replies and crashes, are in test/integration/sessions.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { produce, forgetTailHints } from '../../../functions/domain/produce.js';
import { serverMessageId } from '../../../functions/domain/ids.js';
import { partitionForKey } from '../../../functions/domain/partitioner.js';
import { SessionAppendCancelled } from '../../../functions/domain/ports.js';
import { positionsOf, runsOf } from '../../../functions/domain/sessions/runs.js';
import { browsePartition } from '../../../functions/domain/log/browse.js';
import { rejection, T0, useClock, world, type World } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => {
  forgetTailHints();
  vi.restoreAllMocks();
});

const inSession = (w: World, session: string, sequence: number, messages: Array<Record<string, unknown>>, deadline = Date.now() + 8000) =>
  produce(w.stores, w.name, messages, deadline, { session, sequence });

describe('runs of a request', () => {
  it('packs consecutive offsets of a partition into one run, in message order, and unpacks them back', () => {
    const positions = [
      [0, 5],
      [0, 6],
      [1, 0],
      [0, 7],
      [0, 8],
      [0, 10],
    ] as const;
    const runs = runsOf(positions);
    expect(runs).toEqual([
      [0, 5, 2],
      [1, 0, 1],
      [0, 7, 2],
      [0, 10, 1],
    ]);
    const back = positionsOf({ first: 40, count: 6, producedAt: T0, runs });
    expect([...back.entries()]).toEqual(positions.map((p, i) => [40 + i, p]));
  });
});

describe('producer sessions', () => {
  it('appends a request in one write with its record, and moves the head past it', async () => {
    const w = await world({ partitions: 3, group: null });
    const results = await inSession(w, 's', 0, [{ body: 'a' }, { body: 'b', key: 'k' }, { body: 'c' }]);
    const keyed = partitionForKey('k', 3);
    // The keyed message on its key's partition; the unkeyed ones share a partition, in order (one after the
    // other, or around the keyed one when the key maps to that partition too).
    const [a, b, c] = results as Array<{ id: string; partition: number; offset: number }>;
    expect(b).toEqual({ id: serverMessageId(T0, keyed, b!.offset), partition: keyed, offset: a!.partition === keyed ? 1 : 0 });
    expect(c!.partition).toBe(a!.partition);
    expect([a!.offset, c!.offset]).toEqual(a!.partition === keyed ? [0, 2] : [0, 1]);
    expect(w.stores.sessions.heads.get(`${w.topicKey}#s`)).toEqual({ next: 3 });
    const [record] = w.stores.sessions.records_.get(`${w.topicKey}#s`)!;
    expect(record).toMatchObject({ first: 0, count: 3, producedAt: T0 });
    expect([...positionsOf(record!).values()]).toEqual(results.map((r) => ['partition' in r && r.partition, 'offset' in r && r.offset]));
    expect(w.stores.calls.filter((c) => c === 'sessions.append')).toHaveLength(1);
    // No head read on the way: the head's move is conditional on where the request starts; nothing landed
    // before, so no records are read either.
    expect(w.stores.calls).not.toContain('sessions.head');
    expect(w.stores.calls).not.toContain('sessions.records');
  });

  it('answers a retried request from its record, with the ids of the original produce time', async () => {
    const w = await world({ group: null });
    const first = await inSession(w, 's', 0, [{ body: 1, partition: 0 }, { body: 2, partition: 0 }]);
    clock.advance(5000);
    const again = await inSession(w, 's', 0, [{ body: 1, partition: 0 }, { body: 2, partition: 0 }]);
    expect(again).toEqual(first.map((r) => ({ ...r, duplicate: true })));
    expect(again[0]!.id).toBe(serverMessageId(T0, 0, 0));
    expect((await browsePartition(w.stores, w.name, 0, undefined, 100)).messages).toHaveLength(2);
  });

  it('appends only the new part of a request that overlaps the session, under the next sequence', async () => {
    const w = await world({ group: null });
    await inSession(w, 's', 0, [{ body: 0, partition: 0 }, { body: 1, partition: 0 }, { body: 2, partition: 0 }]);
    const overlap = await inSession(w, 's', 2, [{ body: 2, partition: 0 }, { body: 3, partition: 0 }, { body: 4, partition: 0 }]);
    expect(overlap).toEqual([
      { id: serverMessageId(T0, 0, 2), partition: 0, offset: 2, duplicate: true },
      { id: serverMessageId(T0, 0, 3), partition: 0, offset: 3 },
      { id: serverMessageId(T0, 0, 4), partition: 0, offset: 4 },
    ]);
    expect(w.stores.sessions.records_.get(`${w.topicKey}#s`)!.map((r) => [r.first, r.count])).toEqual([
      [0, 3],
      [3, 2],
    ]);
    expect(w.stores.sessions.heads.get(`${w.topicKey}#s`)).toEqual({ next: 5 });
    // A record covers at most one request (500 messages): the lookup starts that far back, no further.
    const records = vi.spyOn(w.stores.sessions, 'records');
    await inSession(w, 's', 600, [{ body: 'x', partition: 0 }], Date.now()).catch(() => undefined);
    await inSession(w, 's', 4, [{ body: 4, partition: 0 }]);
    expect(records).toHaveBeenLastCalledWith(w.topicKey, 's', 0, 4);
  });

  it('finds a sequence in a record that starts up to 499 sequences earlier', async () => {
    const w = await world({ group: null });
    const big = Array.from({ length: 500 }, (_, i) => ({ body: i, partition: 0 }));
    await inSession(w, 's', 0, big);
    const last = await inSession(w, 's', 499, [{ body: 499, partition: 0 }]);
    expect(last).toEqual([{ id: serverMessageId(T0, 0, 499), partition: 0, offset: 499, duplicate: true }]);
    await inSession(w, 's', 500, Array.from({ length: 100 }, (_, i) => ({ body: 500 + i, partition: 0 })));
    const records = vi.spyOn(w.stores.sessions, 'records');
    const [again] = await inSession(w, 's', 550, [{ body: 550, partition: 0 }]);
    expect(again).toMatchObject({ offset: 550, duplicate: true });
    expect(records).toHaveBeenCalledWith(w.topicKey, 's', 51, 550);
  });

  it('a request ahead of the session is OutOfOrderSequence naming the next one, and stores nothing', async () => {
    const w = await world({ group: null });
    await inSession(w, 's', 0, [{ body: 0, partition: 0 }]);
    const error = await rejection(inSession(w, 's', 3, [{ body: 3, partition: 0 }], Date.now()));
    expect(error.code).toBe('OutOfOrderSequence');
    expect(error.message).toBe("Producer session 's' expects sequence 1 next, not 3: send the messages from 1 first (or start a new session).");
    expect(w.stores.sessions.heads.get(`${w.topicKey}#s`)).toEqual({ next: 1 });
    expect((await browsePartition(w.stores, w.name, 0, undefined, 100)).messages).toHaveLength(1);
    // A new session starts at 0.
    expect((await rejection(inSession(w, 'fresh', 1, [{ body: 1, partition: 0 }], Date.now()))).message).toContain('expects sequence 0 next');
  });

  it('a forgotten record is OutOfOrderSequence, never a guess', async () => {
    const w = await world({ group: null });
    await inSession(w, 's', 0, [{ body: 0, partition: 0 }, { body: 1, partition: 0 }]);
    await inSession(w, 's', 2, [{ body: 2, partition: 0 }, { body: 3, partition: 0 }]);
    // The second request's record is gone (as TTL could have taken it), the first one's is there.
    w.stores.sessions.records_.set(`${w.topicKey}#s`, w.stores.sessions.records_.get(`${w.topicKey}#s`)!.slice(0, 1));
    const error = await rejection(inSession(w, 's', 1, [{ body: 1, partition: 0 }, { body: 2, partition: 0 }, { body: 3, partition: 0 }]));
    expect(error.code).toBe('OutOfOrderSequence');
    expect(error.message).toBe("Producer session 's' no longer remembers sequence 2 (sessions remember their requests 24 h at least); its next sequence is 4.");
  });

  it('a stale tail hint costs one failed write, then the request lands after the other writer', async () => {
    const w = await world({ group: null });
    await inSession(w, 's', 0, [{ body: 0, partition: 0 }]);
    // Another process appends at the hinted offset.
    await w.stores.log.appendSegment(w.topicKey, { partition: 0, base: 1, producedAt: T0, records: [{ b: 'other' }, { b: 'other2' }] }, [], 0);
    const [result] = await inSession(w, 's', 1, [{ body: 1, partition: 0 }]);
    expect(result).toMatchObject({ partition: 0, offset: 3 });
    expect(w.stores.calls.filter((c) => c === 'sessions.append')).toHaveLength(3);
    // A lost race for the offset says nothing about the session: no read of its head, no wait.
    expect(w.stores.calls).not.toContain('sessions.head');
    expect((await browsePartition(w.stores, w.name, 0, undefined, 100)).messages.map((m) => m.body)).toEqual([0, 'other', 'other2', 1]);
  });

  it('a pipelined request waits for the earlier one, then lands after it', async () => {
    vi.useRealTimers();
    const w = await world({ group: null });
    const later = inSession(w, 's', 1, [{ body: 'second', partition: 0 }], Date.now() + 3000);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await inSession(w, 's', 0, [{ body: 'first', partition: 0 }]);
    expect(await later).toMatchObject([{ partition: 0, offset: 1 }]);
    expect(w.stores.calls).toContain('sessions.head');
  });

  it('sends the unkeyed messages of concurrent requests to partitions nobody in this process is appending to', async () => {
    const w = await world({ partitions: 2, group: null });
    const [a, b] = await Promise.all([inSession(w, 'a', 0, [{ body: 'a' }]), inSession(w, 'b', 0, [{ body: 'b' }])]);
    const partitionOf = (results: Awaited<ReturnType<typeof inSession>>) => ('partition' in results[0]! ? results[0].partition : undefined);
    expect(new Set([partitionOf(a), partitionOf(b)])).toEqual(new Set([0, 1]));
  });

  it('answers 429 when the session stays contended until the deadline, having stored nothing', async () => {
    const w = await world({ group: null });
    vi.spyOn(w.stores.sessions, 'append').mockRejectedValue(new SessionAppendCancelled(false, undefined, new Map()));
    const error = await rejection(inSession(w, 's', 0, [{ body: 0, partition: 0 }], Date.now()));
    expect(error.code).toBe('Throttled');
    expect(error.message).toBe(`Producer session 's' of '${w.name}' is contended; retry the request.`);
    expect(w.stores.sessions.heads.size).toBe(0);
  });

  it("remembers a session's head and records 24 h, or the topic's retention when longer", async () => {
    const w = await world({ group: null, retentionHours: 72 });
    const append = vi.spyOn(w.stores.sessions, 'append');
    await inSession(w, 's', 0, [{ body: 0, partition: 0 }]);
    expect(append.mock.calls[0]![0].expiresAt).toBe(Math.floor(T0 / 1000) + 72 * 3600);
    const short = await world({ group: null, retentionHours: 1 });
    const appendShort = vi.spyOn(short.stores.sessions, 'append');
    await inSession(short, 's', 0, [{ body: 0, partition: 0 }]);
    expect(appendShort.mock.calls[0]![0].expiresAt).toBe(Math.floor(T0 / 1000) + 24 * 3600);
  });
});
