/**
 * Grouped pending records (docs/delay.md, "Groups") over the in-memory ports: what is grouped, the ids,
 * landing a group (one transaction per segment, the lookup record), a landing split over two segments,
 * cancels before, during and after a landing, repeats, listing and getting members, deleted topics,
 * duplicate queue messages and records of the form written before groups. The emulator-backed twin is
 * test/integration/delayGroups.test.ts.
 *
 * The in-memory dedup store (test/memory/stores.ts) finds a landed member through its group's lookup record,
 * as the DynamoDB adapter (functions/adapters/dedupStore.ts) does, so lookups by id (getMessage, producer-id
 * de-duplication) go through the positions the landing wrote.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { landDelayed, REPEAT_HEADER, type LandingSummary } from '../../../functions/domain/delay/land.js';
import { cancelDelayed, getDelayed, listDelayed } from '../../../functions/domain/delay/manage.js';
import { prepareDelayed, scheduleDelayed, newDelayId } from '../../../functions/domain/delay/schedule.js';
import { sweepDelayed } from '../../../functions/domain/delay/sweep.js';
import { queueDue } from '../../../functions/domain/delay/queueing.js';
import { DELAY } from '../../../functions/domain/delay/limits.js';
import { raceAppendsLikeSeparateProcesses } from '../../../functions/domain/log/append.js';
import { browsePartition, getMessage } from '../../../functions/domain/log/browse.js';
import { memberBytes } from '../../../functions/domain/log/landings.js';
import { toRecord } from '../../../functions/domain/messages.js';
import { partitionForKey } from '../../../functions/domain/partitioner.js';
import { isGroup, type PendingDelayed, type PendingGroup } from '../../../functions/domain/ports.js';
import { iso } from '../../../functions/domain/time.js';
import { memoryStores, type MemoryStores } from '../../memory/stores.js';
import { rejection, T0, useClock, world, type World } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => {
  vi.restoreAllMocks();
  raceAppendsLikeSeparateProcesses(false);
});

const FAR = Date.now() + 1e12;

function groupStores(delayQueueMaxSeconds = 900): MemoryStores {
  return memoryStores({ delayQueueMaxSeconds });
}

const delayedWorld = (options: { partitions?: number; delayQueueMaxSeconds?: number } = {}) =>
  world({ partitions: options.partitions ?? 1, group: null, stores: groupStores(options.delayQueueMaxSeconds) });

const land = (w: World, ids: readonly string[], deadline = FAR) => landDelayed(w.stores, { topicKey: w.topicKey, ids }, deadline);

const logOf = async (w: World, partition = 0) => (await browsePartition(w.stores, w.name, partition, undefined, 1000)).messages;

/** A member's group: its id less "-<3 digits>". */
const groupOf = (id: string) => id.slice(0, -4);

const groupItem = (w: World, id: string) => {
  const item = w.stores.delays.items.get(`${w.topicKey}#${id}`);
  return item && isGroup(item.pending) ? item.pending : undefined;
};

const appends = (w: World) => w.stores.calls.filter((c) => c === 'log.appendSegment').length;

/** A key that routes to `partition` of `partitions`. */
function keyFor(partition: number, partitions: number, not: readonly string[] = []): string {
  for (let i = 0; ; i++) {
    const key = `key-${i}`;
    if (partitionForKey(key, partitions) === partition && !not.includes(key)) return key;
  }
}

const ids = (results: readonly { id: string }[]) => results.map((r) => r.id);

describe('what is grouped', () => {
  it('one request’s id-less messages due at the same ms, repeating alike, bound for one target share a group; members are numbered in order', async () => {
    const w = await delayedWorld({ partitions: 2 });
    const k0 = keyFor(0, 2);
    const k1 = keyFor(1, 2);
    const r = ids(
      await w.produce([
        { body: 0, delaySeconds: 5 },
        { body: 1, delaySeconds: 5 },
        { body: 2, deliverAt: T0 + 5001 },
        { body: 3, delaySeconds: 5, repeat: { everySeconds: 60, times: 3 } },
        { body: 4, delaySeconds: 5, repeat: { everySeconds: 60, times: 3 } },
        { body: 5, delaySeconds: 5, repeat: { everySeconds: 60, times: 4 } },
        { body: 6, delaySeconds: 5, repeat: { everySeconds: 61, times: 3 } },
        { body: 7, delaySeconds: 5, partition: 0 },
        { body: 8, delaySeconds: 5, key: k0 },
        { body: 9, delaySeconds: 5, key: k1 },
        { body: 10, delaySeconds: 5, partition: 1 },
        { body: 11, delaySeconds: 5, id: 'own' },
        { body: 12, delaySeconds: 5 },
      ]),
    );
    expect(r[11]).toBe('own');
    const groups = r.map((id, i) => (i === 11 ? 'own' : groupOf(id)));
    // Same group: 0, 1, 12 (unkeyed); 3, 4 (same repeat); 7, 8 (partition 0, given or by key); 9, 10 (partition 1).
    const same = [
      [0, 1, 12],
      [3, 4],
      [7, 8],
      [9, 10],
    ];
    for (const set of same) for (const i of set) expect(groups[i]).toBe(groups[set[0]!]);
    const distinct = new Set([0, 2, 3, 5, 6, 7, 9].map((i) => groups[i]));
    expect(distinct.size).toBe(7);
    expect([r[0]!, r[1]!, r[12]!].map((id) => id.slice(-3))).toEqual(['000', '001', '002']);
    expect([r[7]!, r[8]!].map((id) => id.slice(-3))).toEqual(['000', '001']);
    // Seven group items and one message of its own.
    expect(w.stores.delays.items.size).toBe(8);
    // A group's id is a delayed id of its due time.
    expect(groups[2]).toMatch(new RegExp(`^dl-${(T0 + 5001).toString(36)}-[0-9a-f]{16}$`));
    expect(groups[0]).toMatch(new RegExp(`^dl-${(T0 + 5000).toString(36)}-[0-9a-f]{16}$`));
  });

  it('stores a group as one item with its members (explicit partitions kept), answers each member, and queues the group once', async () => {
    const w = await delayedWorld({ partitions: 2 });
    const results = await w.produce([
      { body: 'a', delaySeconds: 5, partition: 1, headers: { h: '1' } },
      { body: 'b', delaySeconds: 5, partition: 1, tags: ['t'] },
    ]);
    const g = groupOf(results[0]!.id);
    const deliverAt = new Date(T0 + 5000).toISOString();
    expect(results).toEqual([
      { id: `${g}-000`, status: 'scheduled', deliverAt },
      { id: `${g}-001`, status: 'scheduled', deliverAt },
    ]);
    expect(groupItem(w, g)).toEqual({
      topicKey: w.topicKey,
      id: g,
      due: T0 + 5000,
      members: [
        { record: { b: 'a', h: { h: '1' } }, partition: 1 },
        { record: { b: 'b', t: ['t'] }, partition: 1 },
      ],
      cancelled: [],
      landed: [],
      positions: '',
      landing: 1,
      queued: true,
      version: 1,
      createdAt: T0,
    });
    expect(w.stores.delayQueue.sent).toEqual([{ topicKey: w.topicKey, ids: [g], delaySeconds: 5 }]);
  });

  it('a keyed repeating group beyond the queue’s reach keeps the key in the record and waits for the sweep', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 60 });
    const results = await w.produce([
      { body: 1, delaySeconds: 61, key: 'k', repeat: { everySeconds: 10, times: 2 } },
      { body: 2, delaySeconds: 60 },
    ]);
    const far = groupItem(w, groupOf(results[0]!.id))!;
    expect(far).toMatchObject({ members: [{ record: { b: 1, k: 'k' } }], repeat: { everySeconds: 10, times: 2 }, queued: false });
    expect(far.members[0]).not.toHaveProperty('partition');
    // Exactly at the queue's reach: queued.
    expect(groupItem(w, groupOf(results[1]!.id))!.queued).toBe(true);
    expect(w.stores.delayQueue.sent).toEqual([{ topicKey: w.topicKey, ids: [groupOf(results[1]!.id)], delaySeconds: 60 }]);
  });

  it('splits a request’s messages due together into groups of at most DELAY.maxGroupBytes of records', async () => {
    const w = await delayedWorld();
    const base = memberBytes(toRecord({ body: '' }));
    const half = 'x'.repeat(DELAY.maxGroupBytes / 2 - base);
    expect(memberBytes(toRecord({ body: half }))).toBe(DELAY.maxGroupBytes / 2);
    // Two halves fill a group exactly; the next message opens a new one, which the one after joins.
    const exact = ids(await w.produce([{ body: half, delaySeconds: 5 }, { body: half, delaySeconds: 5 }, { body: 'a', delaySeconds: 5 }, { body: 'b', delaySeconds: 5 }]));
    expect(exact.map(groupOf)[1]).toBe(groupOf(exact[0]!));
    expect(groupOf(exact[2]!)).not.toBe(groupOf(exact[0]!));
    expect(exact.map((id) => id.slice(-3))).toEqual(['000', '001', '000', '001']);
    expect(groupOf(exact[3]!)).toBe(groupOf(exact[2]!));
    // One byte more does not fit.
    const over = ids(await w.produce([{ body: `${half}y`, delaySeconds: 5 }, { body: half, delaySeconds: 5 }]));
    expect(groupOf(over[1]!)).not.toBe(groupOf(over[0]!));
  });

  it('prepareDelayed answers member ids of groups for id-less messages and keeps producer ids', () => {
    const topic = { name: 't', partitions: 4, retentionHours: 72, createdAt: T0, epoch: 'e1' };
    const prepared = prepareDelayed(
      topic,
      [
        { index: 0, input: { body: 1, delaySeconds: 1, partition: 3 } },
        { index: 1, input: { body: 2, delaySeconds: 1, id: 'p' } },
        { index: 2, input: { body: 3, delaySeconds: 1, partition: 3 } },
      ],
      T0,
    );
    const g = groupOf(prepared[0]!.id);
    expect(prepared.map((p) => [p.index, p.id, p.producerId, p.due, p.partition])).toEqual([
      [0, `${g}-000`, false, T0 + 1000, 3],
      [1, 'p', true, T0 + 1000, undefined],
      [2, `${g}-001`, false, T0 + 1000, 3],
    ]);
    expect(prepared[0]!.record).toEqual({ b: 1, i: `${g}-000` });
  });
});

describe('landing a group', () => {
  it('lands every member in one transaction, records their positions, and is found by member id afterwards', async () => {
    const w = await delayedWorld();
    const results = await w.produce([
      { body: 'a', delaySeconds: 10, headers: { h: '1' } },
      { body: 'b', delaySeconds: 10 },
      { body: 'c', delaySeconds: 10, tags: ['t'] },
    ]);
    const members = ids(results);
    const g = groupOf(members[0]!);
    clock.advance(8999);
    // Not due yet (more than DELAY.earlyLandingMs ahead): nothing happens.
    expect(await land(w, [g])).toEqual({ landed: 0, skipped: 3 });
    expect(groupItem(w, g)).toBeDefined();
    clock.advance(1001);
    const before = appends(w);
    expect(await land(w, [g])).toEqual({ landed: 3, skipped: 0 });
    expect(appends(w) - before).toBe(1);
    const log = await logOf(w);
    expect(log.map((m) => [m.id, m.offset, m.body])).toEqual([
      [members[0], 0, 'a'],
      [members[1], 1, 'b'],
      [members[2], 2, 'c'],
    ]);
    expect(log[0]!.headers).toEqual({ h: '1' });
    expect(log[2]!.tags).toEqual(['t']);
    expect(log.every((m) => m.deliverAt === new Date(T0 + 10_000).toISOString())).toBe(true);
    expect(log[0]!.headers[REPEAT_HEADER]).toBeUndefined();
    // The group is gone; one lookup record for the landing, no producer-id record per member.
    expect(groupItem(w, g)).toBeUndefined();
    expect(w.stores.delays.groupRecords.get(`${w.topicKey}#${g}#1`)).toBe('0.0.0,1.0.1,2.0.2');
    expect(w.stores.dedup.ids.size).toBe(0);
    // Found by id; neither pending nor cancellable any more.
    expect(await getMessage(w.stores, w.name, members[1]!)).toMatchObject({ id: members[1], offset: 1, body: 'b' });
    expect(await rejection(getDelayed(w.stores, w.name, members[1]!))).toMatchObject({ code: 'MessageNotFound' });
    expect(await rejection(cancelDelayed(w.stores, w.name, members[1]!))).toMatchObject({ code: 'MessageNotFound' });
    expect((await listDelayed(w.stores, w.name, 10)).items).toEqual([]);
    // A producer id equal to a landed member's id is a duplicate of it, appended or delayed.
    expect(await w.produce([{ body: 'again', id: members[2]! }])).toEqual([{ id: members[2], partition: 0, offset: 2, duplicate: true }]);
    expect(await w.produce([{ body: 'again', id: members[0]!, delaySeconds: 5 }])).toEqual([{ id: members[0], partition: 0, offset: 0, duplicate: true }]);
    expect(await logOf(w)).toHaveLength(3);
  });

  it('counts every member named: a cancelled member and an unknown id are skipped', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }, { body: 2, delaySeconds: 1 }]));
    const g = groupOf(members[0]!);
    await cancelDelayed(w.stores, w.name, members[1]!);
    clock.advance(1000);
    expect(await land(w, [g, 'unknown', g])).toEqual({ landed: 2, skipped: 2 });
    expect((await logOf(w)).map((m) => m.id)).toEqual([members[0], members[2]]);
    expect(w.stores.delays.groupRecords.get(`${w.topicKey}#${g}#1`)).toBe('0.0.0,2.0.1');
  });

  it('a group whose members are all cancelled lands nothing and is gone', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }]));
    for (const id of members) await cancelDelayed(w.stores, w.name, id);
    clock.advance(1000);
    expect(await land(w, [groupOf(members[0]!)])).toEqual({ landed: 0, skipped: 2 });
    expect(w.stores.delays.items.size).toBe(0);
    expect(appends(w)).toBe(0);
    expect(await logOf(w)).toEqual([]);
  });

  it('a duplicate queue message, after or at the same time, lands nothing twice', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }]));
    const late = ids(await w.produce([{ body: 2, delaySeconds: 1 }, { body: 3, delaySeconds: 1 }]));
    clock.advance(1000);
    expect(await land(w, [groupOf(members[0]!)])).toEqual({ landed: 2, skipped: 0 });
    expect(await land(w, [groupOf(members[0]!)])).toEqual({ landed: 0, skipped: 1 });
    const both = await Promise.all([land(w, [groupOf(late[0]!)]), land(w, [groupOf(late[0]!)])]);
    expect(both.map((s) => s.landed).sort()).toEqual([0, 2]);
    expect((await logOf(w)).map((m) => m.id)).toEqual([...members, ...late]);
  });

  it('a duplicate landing that wins the race moves a repeat on: the loser does not land the next landing early', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1, repeat: { everySeconds: 60, times: 2 } }, { body: 1, delaySeconds: 1, repeat: { everySeconds: 60, times: 2 } }]));
    const g = groupOf(members[0]!);
    clock.advance(1000);
    // Two handlers (separate processes) got the same queue message; the other one lands first.
    raceAppendsLikeSeparateProcesses(true);
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    let other: LandingSummary | undefined;
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementationOnce(async (...args) => {
      other = await land(w, [g]);
      return real(...args);
    });
    expect(await land(w, [g])).toEqual({ landed: 0, skipped: 2 });
    expect(other).toEqual({ landed: 2, skipped: 0 });
    expect((await logOf(w)).map((m) => m.id)).toEqual(members);
    expect(groupItem(w, g)).toMatchObject({ landing: 2, due: T0 + 61_000, version: 2, landed: [], positions: '' });
  });

  it('the messages of a deleted topic’s group never land, not in a topic of the same name created later', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }, { body: 2, delaySeconds: 1 }]));
    await w.stores.catalog.markTopicDeleting(w.topic, T0);
    clock.advance(2000);
    expect(await land(w, [groupOf(members[0]!)])).toEqual({ landed: 0, skipped: 3 });
    expect(w.stores.delays.items.size).toBe(0);

    const v = await delayedWorld();
    const again = ids(await v.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }]));
    await v.stores.catalog.deleteTopic(v.name);
    await v.stores.catalog.createTopic({ ...v.topic, epoch: 'later', createdAt: Date.now() });
    clock.advance(2000);
    expect(await land(v, [groupOf(again[0]!)])).toEqual({ landed: 0, skipped: 2 });
    expect(v.stores.delays.items.size).toBe(0);
    expect(await logOf(v)).toEqual([]);
    expect(appends(v)).toBe(0);
  });

  it('lands at a partition a growth added though the landing had the topic cached from before the growth', async () => {
    const w = await delayedWorld({ partitions: 2 });
    // Warm the landing's topic cache at 2 partitions.
    await w.produce([{ body: 'warm', delaySeconds: 0, id: 'warm' }]);
    await land(w, ['warm']);
    const { topic } = await w.stores.catalog.growTopic(w.topic, 4, T0);
    const prepared = prepareDelayed(topic!, [{ index: 0, input: { body: 'p3', partition: 3 } }, { index: 1, input: { body: 'p3b', partition: 3 } }], Date.now());
    await scheduleDelayed(w.stores, topic!, prepared);
    expect(await land(w, [groupOf(prepared[0]!.id)])).toEqual({ landed: 2, skipped: 0 });
    expect((await logOf(w, 3)).map((m) => m.body)).toEqual(['p3', 'p3b']);
  });

  it('a group whose keys route to several partitions after the topic grew lands each member once at its key’s partition, one partition after the other', async () => {
    const w = await delayedWorld({ partitions: 1 });
    const keys = [keyFor(0, 4), keyFor(1, 4), keyFor(2, 4), keyFor(1, 4, [keyFor(1, 4)])];
    const members = ids(await w.produce(keys.map((key, i) => ({ body: i, key, delaySeconds: 2 }))));
    const g = groupOf(members[0]!);
    expect(new Set(members.map(groupOf)).size).toBe(1);
    await w.stores.catalog.growTopic(w.topic, 4, T0 + 500);
    clock.advance(2000);
    const before = appends(w);
    expect(await land(w, [g])).toEqual({ landed: 4, skipped: 0 });
    // Three partitions: three transactions, each at the version the previous one wrote (no failed write).
    expect(appends(w) - before).toBe(3);
    expect((await logOf(w, 0)).map((m) => m.id)).toEqual([members[0]]);
    expect((await logOf(w, 1)).map((m) => m.id)).toEqual([members[1], members[3]]);
    expect((await logOf(w, 2)).map((m) => m.id)).toEqual([members[2]]);
    expect(groupItem(w, g)).toBeUndefined();
    const positions = w.stores.delays.groupRecords.get(`${w.topicKey}#${g}#1`)!;
    expect(positions.split(',').sort()).toEqual(['0.0.0', '1.1.0', '2.2.0', '3.1.1']);
    expect(await getMessage(w.stores, w.name, members[3]!)).toMatchObject({ partition: 1, offset: 1 });
  });
});

describe('a landing split over two segments', () => {
  /** 16 messages of ~20 KB: two groups of 8 (160 KB each); a segment (300 KB) holds 15, so the second group lands in two transactions. */
  async function splitWorld(repeat?: { everySeconds: number; times: number }, delayQueueMaxSeconds = 900) {
    const w = await delayedWorld({ delayQueueMaxSeconds });
    const body = 'x'.repeat(20_000);
    const members = ids(await w.produce(Array.from({ length: 16 }, (_, i) => ({ body: `${i}${body}`, delaySeconds: 1, ...(repeat ? { repeat } : {}) }))));
    const [a, b] = [groupOf(members[0]!), groupOf(members[8]!)];
    expect(members.map(groupOf)).toEqual([...Array(8).fill(a), ...Array(8).fill(b)]);
    clock.advance(1000);
    return { w, members, a, b };
  }

  /** Lands, failing the second segment's write (a crash after the first transaction). */
  async function landFirstSegmentOnly(w: World, groups: string[]) {
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    let calls = 0;
    const spy = vi.spyOn(w.stores.log, 'appendSegment').mockImplementation(async (...args) => {
      if (++calls === 2) throw new Error('crash');
      return real(...args);
    });
    await expect(land(w, groups)).rejects.toThrow('crash');
    spy.mockRestore();
  }

  it('lands both groups in two transactions, the second group at the version the first wrote', async () => {
    const { w, members, a, b } = await splitWorld();
    expect(await land(w, [a, b])).toEqual({ landed: 16, skipped: 0 });
    expect(appends(w)).toBe(2);
    const log = await logOf(w);
    expect(log.map((m) => m.id)).toEqual(members);
    expect(w.stores.delays.items.size).toBe(0);
    expect(w.stores.delays.groupRecords.get(`${w.topicKey}#${b}#1`)).toBe('0.0.8,1.0.9,2.0.a,3.0.b,4.0.c,5.0.d,6.0.e,7.0.f');
    expect(await getMessage(w.stores, w.name, members[15]!)).toMatchObject({ offset: 15 });
  });

  it('after the first transaction only, the group knows which members landed and where; landing again lands the rest', async () => {
    const { w, members, a, b } = await splitWorld();
    await landFirstSegmentOnly(w, [a, b]);
    expect(groupItem(w, a)).toBeUndefined();
    expect(groupItem(w, b)).toMatchObject({ landed: [0, 1, 2, 3, 4, 5, 6], positions: '0.0.8,1.0.9,2.0.a,3.0.b,4.0.c,5.0.d,6.0.e', version: 2 });
    // The landed members are found, not pending, not cancellable; the last one is still pending.
    expect(await getMessage(w.stores, w.name, members[10]!)).toMatchObject({ id: members[10], offset: 10 });
    expect(await rejection(getDelayed(w.stores, w.name, members[10]!))).toMatchObject({ code: 'MessageNotFound' });
    expect(await rejection(cancelDelayed(w.stores, w.name, members[10]!))).toMatchObject({ code: 'MessageNotFound' });
    expect((await listDelayed(w.stores, w.name, 10)).items.map((p) => p.id)).toEqual([members[15]]);
    expect(await getDelayed(w.stores, w.name, members[15]!)).toMatchObject({ id: members[15], landing: 1, due: T0 + 1000, version: 2 });

    expect(await land(w, [a, b])).toEqual({ landed: 1, skipped: 8 });
    expect((await logOf(w)).map((m) => m.id)).toEqual(members);
    expect(groupItem(w, b)).toBeUndefined();
    expect(w.stores.delays.groupRecords.get(`${w.topicKey}#${b}#1`)).toBe('0.0.8,1.0.9,2.0.a,3.0.b,4.0.c,5.0.d,6.0.e,7.0.f');
  });

  it('a member not landed yet can still be cancelled; then nothing is left to land and the group goes', async () => {
    const { w, members, a, b } = await splitWorld();
    await landFirstSegmentOnly(w, [a, b]);
    await cancelDelayed(w.stores, w.name, members[15]!);
    expect(await land(w, [b])).toEqual({ landed: 0, skipped: 8 });
    expect(w.stores.delays.items.size).toBe(0);
    expect((await logOf(w)).map((m) => m.id)).toEqual(members.slice(0, 15));
    expect(await rejection(getMessage(w.stores, w.name, members[15]!))).toMatchObject({ code: 'MessageNotFound' });
  });

  it('a repeat’s members landed in the first transaction are pending for the next landing; what is left moves on to it', async () => {
    const { w, members, a, b } = await splitWorld({ everySeconds: 60, times: 2 });
    await landFirstSegmentOnly(w, [a, b]);
    // Landed in landing 1 of 2: listed for landing 2, a minute later, after the member still due now.
    const listed = (await listDelayed(w.stores, w.name, 20)).items;
    const byId = (x: readonly unknown[], y: readonly unknown[]) => ((x[0] as string) < (y[0] as string) ? -1 : 1);
    expect(listed.map((p) => [p.id, p.landing, p.due]).sort(byId)).toEqual(
      members.map((id, i) => (i === 15 ? [id, 1, T0 + 1000] : [id, 2, T0 + 61_000])).sort(byId),
    );
    // A landed member of a repeat can be cancelled (its later landings stop), and so can the one not landed.
    await cancelDelayed(w.stores, w.name, members[11]!);
    await cancelDelayed(w.stores, w.name, members[15]!);
    expect(await land(w, [b])).toEqual({ landed: 0, skipped: 8 });
    expect(groupItem(w, b)).toMatchObject({ landing: 2, due: T0 + 61_000, landed: [], positions: '', cancelled: [3, 7], version: 5 });
    // The next landing was within the queue's reach: queued.
    expect(w.stores.delayQueue.sent.at(-1)).toEqual({ topicKey: w.topicKey, ids: [b], delaySeconds: 60 });
    clock.set(T0 + 61_000);
    expect(await land(w, [b])).toEqual({ landed: 6, skipped: 2 });
    const second = (await logOf(w)).filter((m) => m.id.endsWith('.2'));
    expect(second.map((m) => m.id)).toEqual([8, 9, 10, 12, 13, 14].map((i) => `${members[i]}.2`));
    expect(second.every((m) => m.headers[REPEAT_HEADER] === '2/2')).toBe(true);
    expect(groupItem(w, b)).toBeUndefined();
  });

  it('paging through a repeat whose landing is split over segments lists every member once (the cursor keeps the group\'s sort key)', async () => {
    const { w, members, a, b } = await splitWorld({ everySeconds: 60, times: 2 });
    await landFirstSegmentOnly(w, [a, b]);
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 20; page++) {
      const { items, next } = await listDelayed(w.stores, w.name, 3, after);
      seen.push(...items.map((p) => p.id));
      if (!next) break;
      after = next;
    }
    expect([...seen].sort()).toEqual([...members].sort());
  });

  it('without a repeat, a landing that must move on but has nothing left drops the group; with members landed, their positions stay findable', async () => {
    const { w, members, a, b } = await splitWorld({ everySeconds: 60, times: 1 });
    await landFirstSegmentOnly(w, [a, b]);
    // Landed in the last landing: not pending any more.
    expect(await rejection(getDelayed(w.stores, w.name, members[10]!))).toMatchObject({ code: 'MessageNotFound' });
    expect((await listDelayed(w.stores, w.name, 20)).items.map((p) => p.id)).toEqual([members[15]]);
    await cancelDelayed(w.stores, w.name, members[15]!);
    expect(await land(w, [b])).toEqual({ landed: 0, skipped: 8 });
    expect(w.stores.delays.items.size).toBe(0);
    expect(await getMessage(w.stores, w.name, members[14]!)).toMatchObject({ offset: 14 });
  });

  it('a repeat whose next landing is beyond the queue’s reach moves on without a queue message: the sweep queues it', async () => {
    const { w, members, a, b } = await splitWorld({ everySeconds: 60, times: 2 }, 30);
    await landFirstSegmentOnly(w, [a, b]);
    await cancelDelayed(w.stores, w.name, members[15]!);
    const sent = w.stores.delayQueue.sent.length;
    expect(await land(w, [b])).toEqual({ landed: 0, skipped: 8 });
    expect(groupItem(w, b)).toMatchObject({ landing: 2, due: T0 + 61_000, queued: false });
    expect(w.stores.delayQueue.sent).toHaveLength(sent);
  });
});

describe('cancel of a member', () => {
  it('before landing: it never lands, is neither got nor listed, and a second cancel is refused', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }, { body: 2, delaySeconds: 1 }]));
    const g = groupOf(members[0]!);
    await cancelDelayed(w.stores, w.name, members[1]!);
    expect(groupItem(w, g)).toMatchObject({ cancelled: [1], version: 2 });
    expect(await rejection(cancelDelayed(w.stores, w.name, members[1]!))).toMatchObject({
      code: 'MessageNotFound',
      message: `No pending delayed message '${members[1]}' in topic '${w.name}' (unknown, landed, or cancelled).`,
    });
    expect(await rejection(getDelayed(w.stores, w.name, members[1]!))).toMatchObject({ code: 'MessageNotFound' });
    expect((await listDelayed(w.stores, w.name, 10)).items.map((p) => p.id)).toEqual([members[0], members[2]]);
    // A member index past the group's end, and a group that does not exist.
    expect(await rejection(cancelDelayed(w.stores, w.name, `${g}-003`))).toMatchObject({ code: 'MessageNotFound' });
    expect(await rejection(getDelayed(w.stores, w.name, `${g}-003`))).toMatchObject({ code: 'MessageNotFound' });
    const otherGroup = `${g.slice(0, -1)}${g.endsWith('0') ? '1' : '0'}`;
    expect(await rejection(cancelDelayed(w.stores, w.name, `${otherGroup}-000`))).toMatchObject({ code: 'MessageNotFound' });
    clock.advance(1000);
    await land(w, [g]);
    expect((await logOf(w)).map((m) => m.id)).toEqual([members[0], members[2]]);
  });

  it('racing the landing, the cancel wins: the landing reads the group again and lands the rest', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }, { body: 2, delaySeconds: 1 }]));
    const g = groupOf(members[0]!);
    clock.advance(1000);
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementationOnce(async (...args) => {
      await cancelDelayed(w.stores, w.name, members[1]!);
      return real(...args);
    });
    expect(await land(w, [g])).toEqual({ landed: 2, skipped: 1 });
    // The first write failed its condition; the second landed the rest.
    expect(appends(w)).toBe(2);
    expect((await logOf(w)).map((m) => [m.id, m.offset])).toEqual([
      [members[0], 0],
      [members[2], 1],
    ]);
    expect(w.stores.delays.items.size).toBe(0);
  });

  it('racing the landing, the landing wins: the cancel is refused and the member lands once', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }]));
    clock.advance(1000);
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    let cancel: Error | undefined;
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementationOnce(async (...args) => {
      await real(...args);
      cancel = await rejection(cancelDelayed(w.stores, w.name, members[1]!));
    });
    expect(await land(w, [groupOf(members[0]!)])).toEqual({ landed: 2, skipped: 0 });
    expect(cancel).toMatchObject({ code: 'MessageNotFound' });
    expect((await logOf(w)).map((m) => m.id)).toEqual(members);
  });

  it('a landing that keeps losing to cancels gives up after 20 rounds (Throttled); the queue delivers it again', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce(Array.from({ length: 25 }, (_, i) => ({ body: i, delaySeconds: 1 }))));
    const g = groupOf(members[0]!);
    clock.advance(1000);
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    let calls = 0;
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementation(async (...args) => {
      await cancelDelayed(w.stores, w.name, members[calls++]!);
      return real(...args);
    });
    expect(await rejection(land(w, [g]))).toMatchObject({
      code: 'Throttled',
      message: `Delayed groups of '${w.name}' kept changing while landing; landing them again later.`,
    });
    expect(calls).toBe(20);
    expect(await logOf(w)).toEqual([]);
    vi.restoreAllMocks();
    expect(await land(w, [g])).toEqual({ landed: 5, skipped: 20 });
    expect((await logOf(w)).map((m) => m.id)).toEqual(members.slice(20));
  });

  it('a landing past its deadline does not read the group again', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }]));
    clock.advance(1000);
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    let calls = 0;
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementation(async (...args) => {
      if (calls++ === 0) await cancelDelayed(w.stores, w.name, members[0]!);
      return real(...args);
    });
    expect(await rejection(land(w, [groupOf(members[0]!)], Date.now()))).toMatchObject({ code: 'Throttled' });
    expect(calls).toBe(1);
    vi.restoreAllMocks();
    expect(await land(w, [groupOf(members[0]!)])).toEqual({ landed: 1, skipped: 1 });
  });
});

describe('repeating groups', () => {
  it('each landing lands every member left as <member>.<n> with the repeat header; a cancelled member stops; then the group is gone', async () => {
    const w = await delayedWorld();
    const repeat = { everySeconds: 60, times: 3 };
    const members = ids(await w.produce([0, 1, 2].map((i) => ({ body: i, delaySeconds: 10, repeat, headers: { h: `${i}` } }))));
    const g = groupOf(members[0]!);
    clock.set(T0 + 10_000);
    expect(await land(w, [g])).toEqual({ landed: 3, skipped: 0 });
    expect(groupItem(w, g)).toMatchObject({ landing: 2, due: T0 + 70_000, version: 2, landed: [], positions: '' });
    // Pending for landing 2.
    expect(await getDelayed(w.stores, w.name, members[1]!)).toMatchObject({ landing: 2, due: T0 + 70_000, repeat });
    await cancelDelayed(w.stores, w.name, members[1]!);
    clock.set(T0 + 70_000);
    expect(await land(w, [g])).toEqual({ landed: 2, skipped: 1 });
    clock.set(T0 + 130_000);
    expect(await land(w, [g])).toEqual({ landed: 2, skipped: 1 });
    expect(groupItem(w, g)).toBeUndefined();
    const log = await logOf(w);
    expect(log.map((m) => [m.id, m.headers[REPEAT_HEADER], m.headers.h, m.deliverAt])).toEqual([
      [members[0], '1/3', '0', iso(T0 + 10_000)],
      [members[1], '1/3', '1', iso(T0 + 10_000)],
      [members[2], '1/3', '2', iso(T0 + 10_000)],
      [`${members[0]}.2`, '2/3', '0', iso(T0 + 70_000)],
      [`${members[2]}.2`, '2/3', '2', iso(T0 + 70_000)],
      [`${members[0]}.3`, '3/3', '0', iso(T0 + 130_000)],
      [`${members[2]}.3`, '3/3', '2', iso(T0 + 130_000)],
    ]);
    // Each landing has its own lookup record.
    expect(await getMessage(w.stores, w.name, `${members[2]}.3`)).toMatchObject({ offset: 6 });
    expect(await getMessage(w.stores, w.name, `${members[0]}.2`)).toMatchObject({ offset: 3 });
    expect(await rejection(getMessage(w.stores, w.name, `${members[1]}.2`))).toMatchObject({ code: 'MessageNotFound' });
    // The next landings were within reach: queued, a minute after the landing.
    expect(w.stores.delayQueue.sent.map((m) => [m.ids, m.delaySeconds])).toEqual([
      [[g], 10],
      [[g], 60],
      [[g], 60],
    ]);
  });

  it('when every member of a repeat is cancelled, its next landing is dropped; beyond the queue’s reach it waits for the sweep', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 30 });
    const repeat = { everySeconds: 3600, times: 5 };
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1, repeat }, { body: 1, delaySeconds: 1, repeat }]));
    const g = groupOf(members[0]!);
    clock.advance(1000);
    expect(await land(w, [g])).toEqual({ landed: 2, skipped: 0 });
    expect(groupItem(w, g)).toMatchObject({ landing: 2, queued: false, due: T0 + 1000 + 3600_000 });
    expect(w.stores.delayQueue.sent).toHaveLength(1);
    for (const id of members) await cancelDelayed(w.stores, w.name, id);
    clock.set(T0 + 1000 + 3600_000);
    expect(await land(w, [g])).toEqual({ landed: 0, skipped: 2 });
    expect(w.stores.delays.items.size).toBe(0);
  });
});

describe('listing and getting members', () => {
  it('gets a member as a pending message with its group’s due time, key, partition and version', async () => {
    const w = await delayedWorld({ partitions: 3 });
    const [keyed] = ids(await w.produce([{ body: 'k', key: 'kk', delaySeconds: 7, repeat: { everySeconds: 5, times: 2 } }]));
    const [placed] = ids(await w.produce([{ body: 'p', partition: 2, delaySeconds: 8, tags: ['t'] }]));
    expect(await getDelayed(w.stores, w.name, keyed!)).toStrictEqual({
      topicKey: w.topicKey,
      id: keyed,
      due: T0 + 7000,
      record: { b: 'k', k: 'kk', i: keyed },
      key: 'kk',
      repeat: { everySeconds: 5, times: 2 },
      landing: 1,
      queued: true,
      version: 1,
      createdAt: T0,
    });
    expect(await getDelayed(w.stores, w.name, placed!)).toStrictEqual({
      topicKey: w.topicKey,
      id: placed,
      due: T0 + 8000,
      record: { b: 'p', t: ['t'], i: placed },
      partition: 2,
      landing: 1,
      queued: true,
      version: 1,
      createdAt: T0,
    });
  });

  it('lists members in due order, a page may stop inside a group and the next continues after it', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce(Array.from({ length: 5 }, (_, i) => ({ body: i, delaySeconds: 10 }))));
    await w.produce([{ body: 'early', delaySeconds: 5, id: 'early' }, { body: 'late', delaySeconds: 20, id: 'late' }]);
    await cancelDelayed(w.stores, w.name, members[2]!);
    const first = await listDelayed(w.stores, w.name, 2);
    expect(first.items.map((p) => p.id)).toEqual(['early', members[0]]);
    expect(first.next).toBe(`${(T0 + 10_000).toString().padStart(15, '0')}#${members[0]}`);
    const second = await listDelayed(w.stores, w.name, 2, first.next);
    expect(second.items.map((p) => p.id)).toEqual([members[1], members[3]]);
    const third = await listDelayed(w.stores, w.name, 2, second.next);
    expect(third.items.map((p) => p.id)).toEqual([members[4], 'late']);
    const fourth = await listDelayed(w.stores, w.name, 2, third.next);
    expect(fourth).toStrictEqual({ items: [] });
    // All at once.
    const all = await listDelayed(w.stores, w.name, 10);
    expect(all.items.map((p) => p.id)).toEqual(['early', members[0], members[1], members[3], members[4], 'late']);
    expect(all).not.toHaveProperty('next');
  });

  it('a cursor that is not one is refused', async () => {
    const w = await delayedWorld();
    for (const bad of ['x', `${'0'.repeat(14)}#a`, `${'0'.repeat(15)}#`, `${'0'.repeat(15)}#a b`, `${'0'.repeat(15)}#${'a'.repeat(201)}`]) {
      expect(await rejection(listDelayed(w.stores, w.name, 2, bad))).toMatchObject({ code: 'ValidationError', message: 'after is not a cursor returned by this API.' });
    }
    expect(await listDelayed(w.stores, w.name, 2, `${'0'.repeat(15)}#${'a'.repeat(200)}`)).toEqual({ items: [] });
  });

  it('groups whose members are all cancelled list nothing; a listing reads at most 10 index pages to fill a page', async () => {
    const w = await delayedWorld();
    for (let i = 0; i < 10; i++) {
      const [id] = ids(await w.produce([{ body: i, delaySeconds: 10 + i }]));
      await cancelDelayed(w.stores, w.name, id!);
    }
    await w.produce([{ body: 'live', delaySeconds: 30, id: 'live' }]);
    const first = await listDelayed(w.stores, w.name, 1);
    expect(first.items).toEqual([]);
    expect(first.next).toMatch(new RegExp(`^${(T0 + 19_000).toString().padStart(15, '0')}#dl-`));
    const second = await listDelayed(w.stores, w.name, 1, first.next);
    expect(second.items.map((p) => p.id)).toEqual(['live']);
  });

  it('a producer id of a member’s form, stored on its own, is got, listed, cancelled and landed as a message', async () => {
    const w = await delayedWorld();
    const id = `dl-${T0.toString(36)}-0123456789abcdef-000`;
    expect(await w.produce([{ body: 'own', delaySeconds: 5, id, partition: 0 }])).toEqual([{ id, status: 'scheduled', deliverAt: iso(T0 + 5000) }]);
    expect(await getDelayed(w.stores, w.name, id)).toMatchObject({ id, due: T0 + 5000 });
    expect((await listDelayed(w.stores, w.name, 5)).items.map((p) => p.id)).toEqual([id]);
    clock.advance(5000);
    expect(await land(w, [id])).toEqual({ landed: 1, skipped: 0 });
    expect(await getMessage(w.stores, w.name, id)).toMatchObject({ id, body: 'own', offset: 0 });
    const other = `dl-${T0.toString(36)}-0123456789abcdef-001`;
    await w.produce([{ body: 'own', delaySeconds: 5, id: other }]);
    await cancelDelayed(w.stores, w.name, other);
    expect(await rejection(getDelayed(w.stores, w.name, other))).toMatchObject({ code: 'MessageNotFound' });
  });
});

describe('records of the form written before groups', () => {
  it('an id-less message stored on its own still lands, lists, is got, found by id and cancels', async () => {
    const w = await delayedWorld();
    const old = (body: string, due: number): PendingDelayed => {
      const id = newDelayId(due);
      return { topicKey: w.topicKey, id, due, record: { b: body, i: id }, landing: 1, queued: true, version: 1, createdAt: T0 };
    };
    const a = old('a', T0 + 1000);
    const b = old('b', T0 + 1000);
    await w.stores.delays.create(a);
    await w.stores.delays.create(b);
    const [member] = ids(await w.produce([{ body: 'g', delaySeconds: 1 }]));
    expect(a.id).toMatch(new RegExp(`^dl-${(T0 + 1000).toString(36)}-[0-9a-f]{16}$`));
    expect(await getDelayed(w.stores, w.name, a.id)).toEqual(a);
    expect((await listDelayed(w.stores, w.name, 10)).items.map((p) => p.id).sort()).toEqual([a.id, b.id, member].sort());
    await cancelDelayed(w.stores, w.name, b.id);
    clock.advance(1000);
    expect(await land(w, [a.id, b.id, groupOf(member!)])).toEqual({ landed: 2, skipped: 1 });
    expect((await logOf(w)).map((m) => m.id)).toEqual([a.id, member]);
    // Its de-duplication record is written as before.
    expect(await w.stores.dedup.getMany(w.topicKey, [a.id])).toEqual(new Map([[a.id, { id: a.id, partition: 0, offset: 0 }]]));
    expect(await getMessage(w.stores, w.name, a.id)).toMatchObject({ body: 'a' });
    // Only the cancelled record is left (TTL removes it), and it is not pending.
    expect([...w.stores.delays.items.keys()]).toEqual([`${w.topicKey}#${b.id}`]);
    expect(await rejection(getDelayed(w.stores, w.name, b.id))).toMatchObject({ code: 'MessageNotFound' });
  });
});

describe('the sweep and the queue with groups', () => {
  it('queues a group that came within reach and counts its members not cancelled; overdue, it is queued again', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 60 });
    const members = ids(await w.produce(Array.from({ length: 5 }, (_, i) => ({ body: i, delaySeconds: 600 }))));
    const g = groupOf(members[0]!);
    await cancelDelayed(w.stores, w.name, members[1]!);
    await cancelDelayed(w.stores, w.name, members[3]!);
    expect(w.stores.delayQueue.sent).toEqual([]);
    clock.advance(550_000);
    expect(await sweepDelayed(w.stores, FAR)).toMatchObject({ queued: 3, overdue: 0 });
    expect(w.stores.delayQueue.sent).toEqual([{ topicKey: w.topicKey, ids: [g], delaySeconds: 50 }]);
    expect(groupItem(w, g)!.queued).toBe(true);
    clock.set(T0 + 600_000 + DELAY.overdueAfterMs + 1);
    expect(await sweepDelayed(w.stores, FAR)).toMatchObject({ queued: 0, overdue: 3 });
    expect(w.stores.delayQueue.sent.at(-1)).toEqual({ topicKey: w.topicKey, ids: [g], delaySeconds: 0 });
  });
});

describe('queue messages weigh groups by their members', () => {
  const group = (id: string, members: number, cancelled = 0): PendingGroup => ({
    topicKey: 't@e1',
    id,
    due: T0 + 5000,
    members: Array.from({ length: members }, () => ({ record: { b: 1 } })),
    cancelled: Array.from({ length: cancelled }, (_, i) => i),
    landed: [],
    positions: '',
    landing: 1,
    queued: true,
    version: 1,
    createdAt: T0,
  });

  it('up to DELAY.messagesPerQueueMessage members in one queue message; one more starts the next', async () => {
    const stores = memoryStores();
    await queueDue(stores, [group('a', 1500), group('b', 500)], T0);
    expect(stores.delayQueue.sent.map((m) => m.ids)).toEqual([['a', 'b']]);
    await queueDue(stores, [group('a', 1500), group('b', 501)], T0);
    expect(stores.delayQueue.sent.slice(1).map((m) => m.ids)).toEqual([['a'], ['b']]);
    // Cancelled members do not count; a group with none left still counts one.
    await queueDue(stores, [group('a', 1500), group('b', 600, 100)], T0);
    expect(stores.delayQueue.sent.slice(3).map((m) => m.ids)).toEqual([['a', 'b']]);
    await queueDue(stores, [group('a', 2000), group('b', 3, 3)], T0);
    expect(stores.delayQueue.sent.slice(4).map((m) => m.ids)).toEqual([['a'], ['b']]);
    // A single group larger than the bound is one queue message of its own.
    await queueDue(stores, [group('a', 2500)], T0);
    expect(stores.delayQueue.sent.slice(6)).toEqual([{ topicKey: 't@e1', ids: ['a'], delaySeconds: 5 }]);
  });
});

describe('landing edges', () => {
  it('a landing that completes at its deadline answers (the deadline only stops a re-read)', async () => {
    const w = await delayedWorld();
    const members = ids(await w.produce([{ body: 0, delaySeconds: 1 }, { body: 1, delaySeconds: 1 }]));
    const gone = ids(await w.produce([{ body: 2, delaySeconds: 1 }]));
    await cancelDelayed(w.stores, w.name, gone[0]!);
    clock.advance(1000);
    expect(await land(w, [groupOf(members[0]!)], Date.now())).toEqual({ landed: 2, skipped: 0 });
    expect(await land(w, [groupOf(gone[0]!)], Date.now())).toEqual({ landed: 0, skipped: 1 });
    expect(w.stores.delays.items.size).toBe(0);
  });

  it('the next landing of a repeating group exactly at the queue’s reach is queued', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 60 });
    const [m] = ids(await w.produce([{ body: 0, delaySeconds: 1, repeat: { everySeconds: 60, times: 2 } }]));
    clock.advance(1000);
    await land(w, [groupOf(m!)]);
    expect(groupItem(w, groupOf(m!))).toMatchObject({ landing: 2, queued: true });
    expect(w.stores.delayQueue.sent.at(-1)).toEqual({ topicKey: w.topicKey, ids: [groupOf(m!)], delaySeconds: 60 });
  });

  it('a message with a producer id for a partition a growth added lands there though the landing had the topic cached from before', async () => {
    const w = await delayedWorld({ partitions: 2 });
    await land(w, ['nothing']);
    const { topic } = await w.stores.catalog.growTopic(w.topic, 4, T0);
    await scheduleDelayed(w.stores, topic!, prepareDelayed(topic!, [{ index: 0, input: { body: 'p3', partition: 3, id: 'p3' } }], Date.now()));
    expect(await land(w, ['p3'])).toEqual({ landed: 1, skipped: 0 });
    expect((await logOf(w, 3)).map((m) => m.id)).toEqual(['p3']);
  });

  it('a message with a producer id for partition 0 of four lands at partition 0', async () => {
    const w = await delayedWorld({ partitions: 4 });
    await w.produce([{ body: 0, delaySeconds: 1, id: 'zero', partition: 0 }]);
    clock.advance(1000);
    await land(w, ['zero']);
    expect((await logOf(w, 0)).map((m) => m.id)).toEqual(['zero']);
  });

  /** The first segment write of the landing finds its offset taken by another writer. */
  function rivalFirst(w: World): { partition?: number } {
    const seen: { partition?: number } = {};
    const real = w.stores.log.appendSegment.bind(w.stores.log);
    vi.spyOn(w.stores.log, 'appendSegment').mockImplementationOnce(async (topicKey, segment, ...rest) => {
      seen.partition = segment.partition;
      await real(topicKey, { partition: segment.partition, base: segment.base, producedAt: segment.producedAt, records: [{ b: 'rival' }] }, [], 0);
      return real(topicKey, segment, ...rest);
    });
    return seen;
  }

  const landedAt = async (w: World, id: string) => {
    for (let p = 0; p < w.topic.partitions; p++) if ((await logOf(w, p)).some((m) => m.id === id)) return p;
    return undefined;
  };

  it('losing the tail to another writer, unkeyed messages move to another partition; keyed and placed ones stay', async () => {
    const w = await delayedWorld({ partitions: 2 });
    const [unkeyed] = ids(await w.produce([{ body: 'u', delaySeconds: 1 }, { body: 'u2', delaySeconds: 1 }]));
    const [placed] = ids(await w.produce([{ body: 'p', delaySeconds: 1, partition: 0 }]));
    const key = keyFor(1, 2);
    const [keyed] = ids(await w.produce([{ body: 'k', delaySeconds: 1, key }]));
    await w.produce([{ body: 'su', delaySeconds: 1, id: 'single-unkeyed' }, { body: 'sp', delaySeconds: 1, id: 'single-placed', partition: 1 }]);
    await w.produce([{ body: 'sk', delaySeconds: 1, id: 'single-keyed', key }]);
    clock.advance(1000);
    const cases: Array<[string, string, boolean]> = [
      [groupOf(unkeyed!), unkeyed!, true],
      [groupOf(placed!), placed!, false],
      [groupOf(keyed!), keyed!, false],
      ['single-unkeyed', 'single-unkeyed', true],
      ['single-placed', 'single-placed', false],
      ['single-keyed', 'single-keyed', false],
    ];
    for (const [pending, id, moves] of cases) {
      const rival = rivalFirst(w);
      expect(await land(w, [pending]), id).toMatchObject({ landed: pending === groupOf(unkeyed!) ? 2 : 1 });
      vi.restoreAllMocks();
      expect(rival.partition, id).toBeDefined();
      expect(await landedAt(w, id), id).toBe(moves ? 1 - rival.partition! : rival.partition);
    }
  });
});

describe('listing edges', () => {
  it('a page that stops inside a group continues from the group, however many items come before it', async () => {
    const w = await delayedWorld();
    await w.produce(Array.from({ length: 25 }, (_, i) => ({ body: i, delaySeconds: 1, id: `s${i.toString().padStart(2, '0')}` })));
    const members = ids(await w.produce(Array.from({ length: 4 }, (_, i) => ({ body: i, delaySeconds: 2 }))));
    const cursor = `${(T0 + 2000).toString().padStart(15, '0')}#${members[0]}`;
    expect((await listDelayed(w.stores, w.name, 2, cursor)).items.map((p) => p.id)).toEqual([members[1], members[2]]);
  });
});

describe('the sweep pages', () => {
  it('through a minute with more pending items than one page holds', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 60 });
    for (let r = 0; r < 2; r++) {
      await w.produce(Array.from({ length: r === 0 ? 500 : 1 }, (_, i) => ({ body: i, delaySeconds: 600, id: `p${r}-${i}` })));
    }
    await w.produce([{ body: 'g', delaySeconds: 600 }, { body: 'g', delaySeconds: 600 }]);
    clock.advance(550_000);
    expect(await sweepDelayed(w.stores, FAR)).toMatchObject({ queued: 503, complete: true });
    expect(w.stores.delayQueue.sent.flatMap((m) => m.ids)).toHaveLength(502);
  });

  it('stops between pages of a minute once its deadline passed, and says it is not complete', async () => {
    const w = await delayedWorld({ delayQueueMaxSeconds: 120 });
    await w.produce(Array.from({ length: 500 }, (_, i) => ({ body: i, delaySeconds: 600, id: `p0-${i}` })));
    await w.produce([{ body: 'last', delaySeconds: 600, id: 'p1-0' }]);
    await w.produce([{ body: 'g', delaySeconds: 600 }, { body: 'g', delaySeconds: 600 }]);
    clock.advance(550_000);
    const real = w.stores.delayQueue.send.bind(w.stores.delayQueue);
    // The first page's send takes longer than the sweep has left.
    vi.spyOn(w.stores.delayQueue, 'send').mockImplementationOnce(async (messages) => {
      clock.advance(2000);
      return real(messages);
    });
    // The first page: the group (2 messages, its id "dl-…" sorts first) and 499 of the 501 singles.
    expect(await sweepDelayed(w.stores, Date.now() + 1000)).toMatchObject({ queued: 501, complete: false });
  });
});
