/**
 * Partition growth (issue 11): `PUT /v1/topics/{t}` with a larger partition count grows the topic; a
 * smaller one is 409. The catalog write is conditional and recognisable as its own after a lost reply;
 * everything that iterates partitions sees the new ones; keyed messages switch to the new count when the
 * PUT answers; a handler's cached copy of the topic from before the growth breaks nothing.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { leaseForPush } from '../../functions/domain/groups/consume.js';
import { requireGroup } from '../../functions/domain/groups/groups.js';
import { partitionForKey } from '../../functions/domain/partitioner.js';
import { ack, produce, pullAll, uniqueName, useApi, type Api } from '../support/api.js';

const stores = () => dynamoStores(loadConfig());

/** Keys that hash mod 4 to partition 2 or 3, i.e. to another partition than mod 2 (which gives p - 2). */
function movingKeys(count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if (partitionForKey(`key-${i}`, 4) >= 2) keys.push(`key-${i}`);
  return keys;
}

/** Resolves when the next DynamoDB UpdateItem call is sent (before an armed `slow` fault holds it back). */
function nextUpdate(): Promise<void> {
  return new Promise((resolve) =>
    observeDynamoCalls((command) => {
      if (command.replace(/Command$/, '').replace(/Item$/, '') !== 'Update') return;
      observeDynamoCalls(undefined);
      resolve();
    }),
  );
}

async function newTopic(api: Api, partitions: number) {
  const name = uniqueName('grow');
  const created = await api('PUT', `/v1/topics/${name}`, { partitions, retentionHours: 24 });
  expect(created.status).toBe(201);
  return name;
}

async function partitionsOf(api: Api, name: string): Promise<number> {
  const described = await api('GET', `/v1/topics/${name}`);
  expect(described.status).toBe(200);
  expect(described.body.partitionsInfo).toHaveLength(described.body.partitions);
  return described.body.partitions;
}

describe('growing a topic', () => {
  const api = useApi();
  afterEach(() => {
    clearFault();
    observeDynamoCalls(undefined);
    vi.useRealTimers();
  });

  it('a larger count grows the topic (200); keyed messages produced after the reply route by the new count', async () => {
    const name = await newTopic(api, 2);
    const grown = await api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 });
    expect(grown.status).toBe(200);
    expect(grown.body).toMatchObject({ name, partitions: 4, retentionHours: 24 });
    // Right after the reply, keyed messages go where the new count puts them (the PUT answers once the
    // keyed routing has switched).
    const keys = movingKeys(12);
    const results = await produce(api, name, keys.map((key) => ({ body: key, key })));
    expect(results.map((r) => r.partition)).toEqual(keys.map((key) => partitionForKey(key, 4)));
    expect(await partitionsOf(api, name)).toBe(4);
    // The same PUT again is a plain 200 with the same topic.
    const again = await api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(grown.body);
    // Explicit partitions up to the new count are accepted, beyond it refused.
    expect((await produce(api, name, [{ body: 'p3', partition: 3 }]))[0]!.partition).toBe(3);
    const beyond = await api('POST', `/v1/topics/${name}/messages`, { messages: [{ body: 'p4', partition: 4 }] });
    expect(beyond.status).toBe(400);
  });

  it('a smaller count is 409 (shrinking is not supported) and changes nothing; so is another retention', async () => {
    const name = await newTopic(api, 4);
    await produce(api, name, [{ body: 'kept', partition: 3 }]);
    const shrink = await api('PUT', `/v1/topics/${name}`, { partitions: 2, retentionHours: 24 });
    expect(shrink.status).toBe(409);
    expect(shrink.body.error.code).toBe('Conflict');
    expect(shrink.body.error.message).toMatch(/shrinking a topic is not supported/);
    const retention = await api('PUT', `/v1/topics/${name}`, { partitions: 8, retentionHours: 48 });
    expect(retention.status).toBe(409);
    const described = await api('GET', `/v1/topics/${name}`);
    expect(described.body).toMatchObject({ partitions: 4, retentionHours: 24 });
    expect(described.body.partitionsInfo[3]).toEqual({ partition: 3, startOffset: 0, endOffset: 1 });
  });

  it('the maximum stays 64 partitions: growing past it is 400 and changes nothing', async () => {
    const name = await newTopic(api, 2);
    expect((await api('PUT', `/v1/topics/${name}`, { partitions: 64, retentionHours: 24 })).status).toBe(200);
    const over = await api('PUT', `/v1/topics/${name}`, { partitions: 65, retentionHours: 24 });
    expect(over.status).toBe(400);
    expect(await partitionsOf(api, name)).toBe(64);
  });

  it('shared, ordered and broadcast groups created before the growth consume all 4 partitions; lag, nack and reset cover the new ones', async () => {
    const name = await newTopic(api, 2);
    const groups = {
      shared: `/v1/topics/${name}/groups/shared`,
      ordered: `/v1/topics/${name}/groups/ordered`,
      broadcast: `/v1/topics/${name}/groups/broadcast`,
    };
    await produce(api, name, [{ body: 'before', partition: 0 }]);
    // startFrom latest: the start offsets name 2 partitions; the new ones start at 0.
    for (const [mode, path] of Object.entries(groups)) expect((await api('PUT', path, { mode, startFrom: 'latest' })).status).toBe(201);
    expect((await api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 })).status).toBe(200);

    const keys = movingKeys(4);
    const sent = await produce(api, name, [
      ...keys.map((key) => ({ body: `keyed ${key}`, key })),
      { body: 'unkeyed 1' },
      { body: 'unkeyed 2' },
      ...[0, 1, 2, 3].map((partition) => ({ body: `explicit ${partition}`, partition })),
    ]);
    const total = sent.length;
    expect(new Set(sent.map((r) => r.partition))).toEqual(new Set([0, 1, 2, 3]));

    const lagBefore = await api('GET', groups.shared);
    expect(lagBefore.body.partitions.map((p: { partition: number }) => p.partition)).toEqual([0, 1, 2, 3]);
    expect(lagBefore.body.lag).toBe(total);
    for (const p of [2, 3]) {
      const row = lagBefore.body.partitions[p];
      expect(row).toMatchObject({ ackedThrough: 0, inFlight: 0, lag: sent.filter((r) => r.partition === p).length });
    }

    // Shared: one pull takes everything, from all 4 partitions; acks settle all of them.
    const shared = await pullAll(api, groups.shared);
    const places = (list: ReadonlyArray<Record<string, unknown>>) => list.map((m) => `${String(m.partition)}.${String(m.offset)}`).sort();
    expect(places(shared)).toEqual(places(sent));
    const onNew = shared.filter((m) => m.partition >= 2);
    // Nack one message of a new partition: it comes back; ack the rest.
    const nacked = onNew[0]!;
    const nack = await api('POST', `${groups.shared}/nack`, { receipts: [nacked.receipt], retryAfterSeconds: 0 });
    expect(nack.body).toEqual({ nacked: 1, stale: [] });
    expect((await ack(api, groups.shared, shared.filter((m) => m !== nacked).map((m) => m.receipt))).acked).toBe(total - 1);
    const again = await pullAll(api, groups.shared);
    expect(again.map((m) => [m.partition, m.offset, m.deliveryCount])).toEqual([[nacked.partition, nacked.offset, 2]]);
    expect((await ack(api, groups.shared, [again[0]!.receipt])).acked).toBe(1);
    expect((await api('GET', groups.shared)).body.lag).toBe(0);

    // Ordered: every partition, each in order.
    const ordered: Array<Record<string, any>> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (let round = 0; round < 10 && ordered.length < total; round++) {
      const got = await pullAll(api, groups.ordered);
      ordered.push(...got);
      if (got.length > 0) await ack(api, groups.ordered, got.map((m) => m.receipt));
    }
    expect(places(ordered)).toEqual(places(sent));
    for (const p of [0, 1, 2, 3]) {
      const offsets = ordered.filter((m) => m.partition === p).map((m) => m.offset);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    }
    expect((await api('GET', groups.ordered)).body.lag).toBe(0);

    // Broadcast: a consumer seen for the first time gets everything since the group, on all 4 partitions.
    for (const consumerId of ['c1', 'c2']) {
      expect(places(await pullAll(api, groups.broadcast, { consumerId }))).toEqual(places(sent));
    }
    expect((await api('GET', groups.broadcast)).body.lag).toBe(0);

    // Reset on a new partition, for a leased and a broadcast group.
    const p3 = sent.filter((r) => r.partition === 3).sort((a, b) => a.offset - b.offset);
    for (const path of [groups.shared, groups.broadcast]) {
      expect((await api('POST', `${path}/reset`, { to: { partition: 3, offset: 0 } })).status).toBe(200);
      const replay = await pullAll(api, path, { consumerId: 'c1' });
      expect(replay.map((m) => [m.partition, m.offset])).toEqual(p3.map((r) => [3, r.offset]));
    }
  });

  it('a lost reply of the catalog write: the SDK retries it, the PUT answers 200 with the grown topic, grown once', async () => {
    const name = await newTopic(api, 2);
    injectFault({ command: 'UpdateItem', when: 'lostReply' });
    const grown = await api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 });
    expect(faultFired()).toBe(true);
    expect(grown.status).toBe(200);
    expect(grown.body).toMatchObject({ name, partitions: 4 });
    expect(await partitionsOf(api, name)).toBe(4);
    const item = await stores().catalog.getTopic(name);
    expect(item?.growth?.from).toBe(2);
  });

  it('two racing growths to different counts: one wins (200), the other is 409; to the same count both answer 200', async () => {
    const name = await newTopic(api, 2);
    // Both PUTs read the 2-partition topic before either conditional write is sent (each plan delays
    // the first UpdateItem it sees; a fired plan is gone, so the second delays the next one).
    injectFault({ command: 'UpdateItem', when: 'slow', nth: 1, delayMs: 500 });
    injectFault({ command: 'UpdateItem', when: 'slow', nth: 1, delayMs: 500 });
    const [to3, to4] = await Promise.all([
      api('PUT', `/v1/topics/${name}`, { partitions: 3, retentionHours: 24 }),
      api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 }),
    ]);
    expect(faultFired()).toBe(true);
    expect([to3.status, to4.status].sort()).toEqual([200, 409]);
    const [winner, loser] = to3.status === 200 ? [to3, to4] : [to4, to3];
    expect(loser.body.error.message).toContain(`has ${winner.body.partitions} partitions now`);
    expect(await partitionsOf(api, name)).toBe(winner.body.partitions);

    const same = await newTopic(api, 2);
    injectFault({ command: 'UpdateItem', when: 'slow', nth: 1, delayMs: 500 });
    injectFault({ command: 'UpdateItem', when: 'slow', nth: 1, delayMs: 500 });
    const both = await Promise.all([0, 1].map(() => api('PUT', `/v1/topics/${same}`, { partitions: 4, retentionHours: 24 })));
    expect(both.map((r) => [r.status, r.body.partitions])).toEqual([
      [200, 4],
      [200, 4],
    ]);
  });

  it('a topic being deleted cannot be grown: 409 while it is marked (even when the mark lands after the PUT read it), 404 once gone', async () => {
    const name = await newTopic(api, 2);
    const topic = (await stores().catalog.getTopic(name))!;
    // The mark lands between the PUT's read and its conditional write (held back until the mark is stored).
    injectFault({ command: 'UpdateItem', when: 'slow', nth: 1, delayMs: 1000 });
    const updateSent = nextUpdate();
    const put = api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 });
    await updateSent;
    await stores().catalog.markTopicDeleting(topic, Date.now());
    const refused = await put;
    expect(faultFired()).toBe(true);
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/being deleted/);
    expect((await stores().catalog.getTopic(name))?.partitions).toBe(2);
    // Marked before the PUT: refused as well.
    expect((await api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 })).status).toBe(409);
    expect((await api('DELETE', `/v1/topics/${name}`)).status).toBe(204);
    expect((await api('GET', `/v1/topics/${name}`)).status).toBe(404);
  });

  it('a growth that lands between DELETE reading the topic and marking it: the grave names every partition', async () => {
    const name = await newTopic(api, 2);
    // DELETE's mark (its first UpdateItem) waits; the growth (the next UpdateItem) is applied first.
    injectFault({ command: 'UpdateItem', when: 'slow', nth: 1, delayMs: 2000 });
    const marking = nextUpdate();
    const deleting = api('DELETE', `/v1/topics/${name}`);
    await marking;
    const grown = await api('PUT', `/v1/topics/${name}`, { partitions: 4, retentionHours: 24 });
    expect(grown.status).toBe(200);
    expect((await deleting).status).toBe(204);
    const grave = (await stores().catalog.listBuriedTopics()).find((t) => t.name === name);
    expect(grave?.partitions).toBe(4);
  });

  it('handlers with a cached copy of the topic from before the growth: nothing breaks, new partitions show within the cache time', async () => {
    const name = await newTopic(api, 2);
    const groupPath = `/v1/topics/${name}/groups/g`;
    expect((await api('PUT', groupPath, { startFrom: 'earliest' })).status).toBe(201);
    // Time stands still, so the copies cached below stay fresh (TOPIC_CACHE_MS) until the clock is moved.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const start = Date.now();
    await produce(api, name, [{ body: 'warm', partition: 0 }]); // produce's cached copy: 2 partitions
    expect((await pullAll(api, groupPath)).map((m) => m.body)).toEqual(['warm']); // the group's cached copy: 2 partitions
    // Another handler grows the topic (the catalog write itself; keyed routing switches 1.25 s later).
    const before = (await stores().catalog.getTopic(name))!;
    expect((await stores().catalog.growTopic(before, 4, start + 1250)).grown).toBe(true);

    // Keyed messages still route by 2 until the switch, stale copy or not.
    const [key] = movingKeys(1);
    expect((await produce(api, name, [{ body: 'old count', key }]))[0]!.partition).toBe(partitionForKey(key!, 2));
    // An explicit new partition re-reads the stale copy instead of refusing it.
    expect((await produce(api, name, [{ body: 'on 3', partition: 3 }]))[0]).toMatchObject({ partition: 3, offset: 0 });
    // With the fresh copy (which knows the switch time), keys still route by 2 before the switch.
    expect((await produce(api, name, [{ body: 'old count again', key }]))[0]!.partition).toBe(partitionForKey(key!, 2));

    // The group's stale copy: a pull skips the new partition, it does not fail.
    const stale = await pullAll(api, groupPath);
    expect(stale.map((m) => m.body).sort()).toEqual(['old count', 'old count again']);
    // A receipt of the new partition (leased by a handler that knows it) is acked, not called stale.
    const { topic, group } = await requireGroup(stores(), name, 'g');
    const [leased] = await leaseForPush(stores(), topic, group, 3, 10, 30, Date.now() + 10_000);
    expect(leased).toMatchObject({ partition: 3, body: 'on 3' });
    expect(await ack(api, groupPath, [leased!.receipt, ...stale.map((m) => m.receipt)])).toEqual({ acked: 3, stale: [] });

    // Past the switch (and so past every cached copy from before the growth): keys route by 4.
    vi.setSystemTime(start + 1300);
    expect((await produce(api, name, [{ body: 'new count', key }]))[0]!.partition).toBe(partitionForKey(key!, 4));
    expect((await pullAll(api, groupPath)).map((m) => [m.partition, m.body])).toEqual([[partitionForKey(key!, 4), 'new count']]);
    expect((await api('GET', groupPath)).body.partitions).toHaveLength(4);
  });
});
