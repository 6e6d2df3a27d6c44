/**
 * Behaviour that a hand-made mutation run of the domain core showed unguarded (issue 13): each test
 * here failed with the mutation named in its title applied (docs/testing.md, "Mutation testing").
 * Leases are long wherever the test does not need them to expire, and expiry is awaited by polling or
 * by sleeping past it, so a loaded machine makes these tests slower, never wrong.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { raceAppendsLikeSeparateProcesses } from '../../functions/domain/produce.js';
import { topicKeyOf } from '../../functions/domain/ports.js';
import { useLocalAws } from '../../local/environment.js';
import { createTables } from '../../local/tables.js';
import { ack, produce, pullAll, sleep, topicWithGroup, useApi, type Api } from '../support/api.js';
import { retentionFor } from '../support/retention.js';


// Tables of this file's own: the retention test below trims its topic "in the future", and other files'
// retention passes (permissions.test.ts runs one 1,000 hours ahead) must not trim it first.
beforeAll(async () => {
  const prefix = `${inject('tablePrefix')}mut`;
  useLocalAws(inject('awsEndpoint'), prefix);
  await createTables(new DynamoDBClient({}), prefix);
  if (!loadConfig().tables.log.startsWith(`${prefix}-`)) throw new Error('not on this file’s own tables');
});

async function nack(api: Api, groupPath: string, receipts: string[], retryAfterSeconds?: number) {
  const reply = await api('POST', `${groupPath}/nack`, { receipts, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) });
  expect(reply.status).toBe(200);
  return reply.body as { nacked: number; stale: string[] };
}

async function deadLetterCount(api: Api, groupPath: string) {
  const reply = await api('GET', `${groupPath}/dead-letters?limit=100`);
  expect(reply.status).toBe(200);
  return (reply.body.messages as unknown[]).length;
}

describe('survivors of the mutation run', () => {
  const api = useApi();
  afterEach(() => {
    clearFault();
    raceAppendsLikeSeparateProcesses(false);
  });

  it('nack checks the token: after a reset, a receipt from before it is stale and the new lease is untouched', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: {} });
    await produce(api, topic, [{ body: 'x' }]);
    const [old] = await pullAll(api, groupPath);
    expect((await api('POST', `${groupPath}/reset`, { to: 'earliest' })).status).toBe(200);
    const [fresh] = await pullAll(api, groupPath);
    // The same offset and the same delivery number: only the lease token tells the two receipts apart.
    expect(fresh).toMatchObject({ offset: old!.offset, deliveryCount: 1 });
    expect(await nack(api, groupPath, [old!.receipt], 600)).toEqual({ nacked: 0, stale: [old!.receipt] });
    expect(await ack(api, groupPath, [old!.receipt])).toEqual({ acked: 0, stale: [old!.receipt] });
    expect(await ack(api, groupPath, [fresh!.receipt])).toEqual({ acked: 1, stale: [] });
    expect((await api('GET', groupPath)).body.lag).toBe(0);
  });

  it('a nack of an expired lease is stale: the message comes back at once instead of waiting for the retry', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: {} });
    await produce(api, topic, [{ body: 'x' }]);
    const [leased] = await pullAll(api, groupPath, { visibilitySeconds: 1 });
    await sleep(1100);
    expect(await nack(api, groupPath, [leased!.receipt], 600)).toEqual({ nacked: 0, stale: [leased!.receipt] });
    const [again] = await pullAll(api, groupPath);
    expect(again).toMatchObject({ offset: leased!.offset, deliveryCount: 2 });
  });

  it("a pull's own visibilitySeconds is the lease: the message returns after it, long before the group's 30 s", async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { visibilitySeconds: 30 } });
    await produce(api, topic, [{ body: 'x' }]);
    const started = Date.now();
    await pullAll(api, groupPath, { visibilitySeconds: 1 });
    // A long poll: it answers as soon as the lease has expired.
    const again = await pullAll(api, groupPath, { waitSeconds: 20 });
    expect(again.map((m) => [m.offset, m.deliveryCount])).toEqual([[0, 2]]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - started).toBeLessThan(25_000);
  });

  it('max bounds a pull when redeliveries are due: 5 expired leases and 5 new messages, max 5 gives exactly 5', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: {} });
    await produce(api, topic, Array.from({ length: 5 }, (_, i) => ({ body: i })));
    expect(await pullAll(api, groupPath, { max: 5, visibilitySeconds: 1 })).toHaveLength(5);
    await sleep(1100);
    await produce(api, topic, Array.from({ length: 5 }, (_, i) => ({ body: 5 + i })));
    const due = await pullAll(api, groupPath, { max: 5 });
    expect(due.map((m) => [m.offset, m.deliveryCount])).toEqual([0, 1, 2, 3, 4].map((o) => [o, 2]));
    const fresh = await pullAll(api, groupPath, { max: 5 });
    expect(fresh.map((m) => [m.offset, m.deliveryCount])).toEqual([5, 6, 7, 8, 9].map((o) => [o, 1]));
  });

  it("retention's threshold: TTL may take a segment only after its retention and a day, the pass never before; the newest stays", async () => {
    const { topic, base } = await topicWithGroup(api, {});
    await produce(api, topic, [{ body: 'old' }]);
    await produce(api, topic, [{ body: 'newest' }]);
    const stores = dynamoStores(loadConfig());
    const [oldest] = await stores.log.segmentKeysFrom(topicKeyOf((await stores.catalog.getTopic(topic))!), 0, 0, 1);
    const expiry = oldest!.expiresAt!;
    expect(expiry).toBe(Math.ceil(oldest!.producedAt / 1000) + 72 * 3600 + 24 * 3600);
    // A second before the expiry nothing goes (TTL deletes items whose expiry is before now); a second after, TTL takes it.
    expect(await retentionFor(topic, (expiry - 1) * 1000)).toBe(0);
    expect(await retentionFor(topic, expiry * 1000)).toBe(0);
    expect((await api('GET', base)).body.partitionsInfo[0]).toEqual({ partition: 0, startOffset: 0, endOffset: 2 });
    expect(await retentionFor(topic, (expiry + 1) * 1000)).toBe(1);
    expect((await api('GET', base)).body.partitionsInfo[0]).toEqual({ partition: 0, startOffset: 1, endOffset: 2 });
  });

  it('the same producer id from separate processes at once: one offset, every other request a duplicate of it', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 1 });
    raceAppendsLikeSeparateProcesses(true);
    const racers = 6;
    // Each request's append waits, so that all of them have looked the id up (and not found it) before any
    // lands: the losers learn about the id from their failed transaction (IdsTaken), not from the lookup.
    for (let nth = 1; nth <= racers; nth++) injectFault({ command: 'TransactWriteItems', when: 'slow', nth, delayMs: 400 });
    const results = await Promise.all(Array.from({ length: racers }, () => produce(api, topic, [{ body: 'once', id: 'same-id' }])));
    const flat = results.map((r) => r[0]!);
    expect(new Set(flat.map((r) => `${r.partition}.${r.offset}`)).size).toBe(1);
    expect(flat.filter((r) => r.duplicate)).toHaveLength(racers - 1);
    const page = await api('GET', `${base}/partitions/0/messages?limit=10`);
    expect(page.body.messages.map((m: { id: string }) => m.id)).toEqual(['same-id']);
  });

  it('more dead letters due in a partition than one pull moves: pulls keep answering, letters arrive over several pulls', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { maxDeliveries: 1 } });
    await produce(api, topic, Array.from({ length: 25 }, (_, i) => ({ body: i })));
    expect(await pullAll(api, groupPath, { visibilitySeconds: 1 })).toHaveLength(25);
    await sleep(1100);
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      expect(await pullAll(api, groupPath)).toEqual([]);
      counts.push(await deadLetterCount(api, groupPath));
    }
    expect(counts).toEqual([10, 20, 25]);
  });

  it('an ack that a stale replica shows as settled (before a reset) is checked with a strong read and is stale', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: {} });
    await produce(api, topic, [{ body: 'x' }]);
    const [m] = await pullAll(api, groupPath);
    expect(await ack(api, groupPath, [m!.receipt])).toEqual({ acked: 1, stale: [] });
    injectFault({ command: 'GetItem', when: 'stale', nth: 1 });
    // A retried ack: the replica keeps the progress as it is now (offset 0 acknowledged).
    expect(await ack(api, groupPath, [m!.receipt])).toEqual({ acked: 1, stale: [] });
    expect((await api('POST', `${groupPath}/reset`, { to: 'earliest' })).status).toBe(200);
    // The reset made offset 0 available again; the stale replica still says "acknowledged".
    expect(await ack(api, groupPath, [m!.receipt])).toEqual({ acked: 0, stale: [m!.receipt] });
    expect(faultFired()).toBe(true);
    expect((await pullAll(api, groupPath)).map((d) => d.offset)).toEqual([0]);
  });
});

describe('ordered-group rules, each through the API', () => {
  const api = useApi();

  it('blocked while anything is leased: a nacked message waits until the rest of its batch is settled', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { mode: 'ordered' } });
    await produce(api, topic, [{ body: 0 }, { body: 1 }, { body: 2 }]);
    const [first, second] = await pullAll(api, groupPath, { max: 2 });
    await nack(api, groupPath, [first!.receipt], 0);
    // Offset 0 is due again, but offset 1 is still leased: nothing may go out.
    expect(await pullAll(api, groupPath)).toEqual([]);
    await ack(api, groupPath, [second!.receipt]);
    const again = await pullAll(api, groupPath);
    expect(again.map((m) => [m.offset, m.deliveryCount])).toEqual([[0, 2]]);
  });

  it('no new offsets while redeliveries are pending: a redelivered batch comes alone', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { mode: 'ordered' } });
    await produce(api, topic, [{ body: 0 }, { body: 1 }, { body: 2 }]);
    const [first] = await pullAll(api, groupPath, { max: 1 });
    await nack(api, groupPath, [first!.receipt], 0);
    const again = await pullAll(api, groupPath, { max: 10 });
    expect(again.map((m) => [m.offset, m.deliveryCount])).toEqual([[0, 2]]);
    await ack(api, groupPath, [again[0]!.receipt]);
    expect((await pullAll(api, groupPath, { max: 10 })).map((m) => m.offset)).toEqual([1, 2]);
  });
});
