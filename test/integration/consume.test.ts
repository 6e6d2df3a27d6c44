import { describe, expect, it } from 'vitest';
import { ack, produce, pullAll, sleep, topicWithGroup, useApi } from '../support/api.js';

describe('consumer groups', () => {
  const api = useApi();

  it('a new group starts at latest by default (QMQ): it sees only what comes after it', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 2 });
    await produce(api, topic, [{ body: 'before' }]);
    expect((await api('PUT', `${base}/groups/late`, {})).status).toBe(201);
    await produce(api, topic, [{ body: 'after' }]);
    const got = await pullAll(api, `${base}/groups/late`);
    expect(got.map((m) => m.body)).toEqual(['after']);
  });

  it('PUT on an existing group updates its settings (200) but refuses a mode change (409)', async () => {
    const { groupPath } = await topicWithGroup(api, { group: {} });
    const updated = await api('PUT', groupPath, { visibilitySeconds: 5, maxDeliveries: 3 });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ mode: 'shared', visibilitySeconds: 5, maxDeliveries: 3 });
    const conflict = await api('PUT', groupPath, { mode: 'ordered' });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('Conflict');
  });

  it('pull leases, ack settles, and lag goes to zero', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: {} });
    await produce(api, topic, [{ body: 1, partition: 0 }, { body: 2, partition: 1 }, { body: 3, partition: 1 }]);
    const before = await api('GET', groupPath);
    expect(before.body.lag).toBe(3);
    const got = await pullAll(api, groupPath);
    expect(got.map((m) => m.body).sort()).toEqual([1, 2, 3]);
    expect(got.every((m) => m.deliveryCount === 1 && typeof m.receipt === 'string')).toBe(true);
    const during = await api('GET', groupPath);
    expect(during.body.partitions.map((p: { inFlight: number }) => p.inFlight)).toEqual([1, 2]);
    expect(await pullAll(api, groupPath)).toEqual([]);
    // Each receipt twice in one call: each delivery is settled and counted once.
    const settled = await ack(api, groupPath, [...got.map((m) => m.receipt), ...got.map((m) => m.receipt)]);
    expect(settled).toEqual({ acked: 3, stale: [] });
    const after = await api('GET', groupPath);
    expect(after.body.lag).toBe(0);
    expect(after.body.partitions).toEqual([
      { partition: 0, ackedThrough: 1, endOffset: 1, inFlight: 0, lag: 0 },
      { partition: 1, ackedThrough: 2, endOffset: 2, inFlight: 0, lag: 0 },
    ]);
  });

  it('unacked messages come back after the visibility timeout, and old receipts go stale', async () => {
    // Leases of 2 s leave room for a slow machine between the two pulls.
    const { topic, groupPath } = await topicWithGroup(api, { group: { visibilitySeconds: 2 } });
    await produce(api, topic, [{ body: 'x' }]);
    const [first] = await pullAll(api, groupPath);
    expect(await pullAll(api, groupPath)).toEqual([]);
    await sleep(2200);
    const [second] = await pullAll(api, groupPath);
    expect(second).toMatchObject({ body: 'x', deliveryCount: 2, offset: first!.offset });
    expect(await ack(api, groupPath, [first!.receipt])).toEqual({ acked: 0, stale: [first!.receipt] });
    expect(await ack(api, groupPath, [second!.receipt])).toEqual({ acked: 1, stale: [] });
  });

  it('nack with retryAfterSeconds makes the message wait, then come back', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: {} });
    await produce(api, topic, [{ body: 'retry me' }]);
    const [m] = await pullAll(api, groupPath);
    const nacked = await api('POST', `${groupPath}/nack`, { receipts: [m!.receipt], retryAfterSeconds: 2 });
    expect(nacked.body).toEqual({ nacked: 1, stale: [] });
    expect(await pullAll(api, groupPath)).toEqual([]);
    await sleep(2100);
    const [again] = await pullAll(api, groupPath);
    expect(again).toMatchObject({ body: 'retry me', deliveryCount: 2 });
  });

  it('after maxDeliveries the message goes to the dead letters, which can be listed and redriven', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { maxDeliveries: 2 } });
    await produce(api, topic, [{ body: 'poison', id: 'poison-1' }, { body: 'fine' }]);
    for (let delivery = 1; delivery <= 2; delivery++) {
      const got = await pullAll(api, groupPath);
      const poison = got.find((m) => m.body === 'poison')!;
      expect(poison.deliveryCount).toBe(delivery);
      const fine = got.find((m) => m.body === 'fine');
      if (fine) await ack(api, groupPath, [fine.receipt]);
      await api('POST', `${groupPath}/nack`, { receipts: [poison.receipt], retryAfterSeconds: 0 });
    }
    expect(await pullAll(api, groupPath)).toEqual([]);
    const dead = await api('GET', `${groupPath}/dead-letters?limit=10`);
    expect(dead.body.messages).toHaveLength(1);
    expect(dead.body.messages[0]).toMatchObject({ id: 'poison-1', body: 'poison', deliveryCount: 2 });
    expect(Date.parse(dead.body.messages[0].deadAt)).toBeGreaterThan(0);
    expect((await api('GET', groupPath)).body.lag).toBe(0);

    expect((await api('POST', `${groupPath}/dead-letters/redrive`)).body).toEqual({ redriven: 1, deferred: 0 });
    expect((await api('GET', `${groupPath}/dead-letters`)).body.messages).toEqual([]);
    const [back] = await pullAll(api, groupPath);
    expect(back).toMatchObject({ id: 'poison-1', deliveryCount: 1 });
    expect(await ack(api, groupPath, [back!.receipt])).toEqual({ acked: 1, stale: [] });
    expect((await api('GET', groupPath)).body.lag).toBe(0);
  });

  it('tag filters (any / all) deliver matching messages and ack the rest server-side', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 1 });
    await api('PUT', `${base}/groups/any`, { startFrom: 'earliest', filter: { tags: { any: ['red', 'blue'] } } });
    await api('PUT', `${base}/groups/all`, { startFrom: 'earliest', filter: { tags: { all: ['red', 'big'] } } });
    await produce(api, topic, [
      { body: 'red big', tags: ['red', 'big'] },
      { body: 'blue', tags: ['blue'] },
      { body: 'green', tags: ['green'] },
      { body: 'untagged' },
    ]);
    const anyGot = await pullAll(api, `${base}/groups/any`);
    expect(anyGot.map((m) => m.body)).toEqual(['red big', 'blue']);
    const allGot = await pullAll(api, `${base}/groups/all`);
    expect(allGot.map((m) => m.body)).toEqual(['red big']);
    await ack(api, `${base}/groups/all`, allGot.map((m) => m.receipt));
    const lag = await api('GET', `${base}/groups/all`);
    expect(lag.body.lag).toBe(0);
    expect(lag.body.partitions[0].ackedThrough).toBe(4);
  });

  it('long polling returns as soon as a message arrives', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: {} });
    const started = Date.now();
    const polling = api('POST', `${groupPath}/pull`, { max: 10, waitSeconds: 10 });
    await sleep(700);
    await produce(api, topic, [{ body: 'wake up' }]);
    const reply = await polling;
    expect(reply.body.messages.map((m: { body: string }) => m.body)).toEqual(['wake up']);
    expect(Date.now() - started).toBeLessThan(9000);
  });

  it('an empty long poll waits for waitSeconds and returns nothing', async () => {
    const { groupPath } = await topicWithGroup(api, { group: {} });
    const started = Date.now();
    const reply = await api('POST', `${groupPath}/pull`, { waitSeconds: 1 });
    expect(reply.body).toEqual({ messages: [] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('reset moves a group to earliest, latest, a time, or a partition offset', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: {} });
    await produce(api, topic, [{ body: 0 }, { body: 1 }]);
    await sleep(30);
    const middle = Date.now();
    await sleep(30);
    await produce(api, topic, [{ body: 2 }, { body: 3 }]);

    const all = await pullAll(api, groupPath);
    expect(all.map((m) => m.body)).toEqual([0, 1, 2, 3]);
    expect((await api('POST', `${groupPath}/reset`, { to: 'latest' })).status).toBe(200);
    // Leases dropped by the reset: their receipts are stale and nothing is pending.
    expect(await pullAll(api, groupPath)).toEqual([]);
    expect((await api('GET', groupPath)).body.lag).toBe(0);

    await api('POST', `${groupPath}/reset`, { to: 'earliest' });
    expect((await pullAll(api, groupPath)).map((m) => m.body)).toEqual([0, 1, 2, 3]);

    const byTime = await api('POST', `${groupPath}/reset`, { to: { time: new Date(middle).toISOString() } });
    expect(byTime.body).toEqual({ partitions: [{ partition: 0, offset: 2 }] });
    expect((await pullAll(api, groupPath)).map((m) => m.body)).toEqual([2, 3]);

    await api('POST', `${groupPath}/reset`, { to: { partition: 0, offset: 3 } });
    expect((await pullAll(api, groupPath)).map((m) => m.body)).toEqual([3]);
  });

  it('a broadcast group gives every consumer every message, without leases', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 3, group: { mode: 'broadcast' } });
    await produce(api, topic, Array.from({ length: 12 }, (_, i) => ({ body: i, key: `k${i}` })));
    for (const consumerId of ['c1', 'c2', 'c3']) {
      const got = await pullAll(api, groupPath, { consumerId });
      expect(got.map((m) => m.body).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
      expect(await pullAll(api, groupPath, { consumerId })).toEqual([]);
    }
    const view = await api('GET', groupPath);
    expect(view.body.consumers.map((c: { consumerId: string }) => c.consumerId).sort()).toEqual(['c1', 'c2', 'c3']);
    expect(view.body.lag).toBe(0);
  });
});
