/**
 * What a warm process knows (issue 11): the progress items it wrote last (functions/domain/groups/progressCache.ts)
 * and the segments it read (segmentCache.ts). These tests try to make that knowledge lie: another process
 * (another Lambda instance: a store object of its own, so caches of its own) writes the same progress items,
 * resets the group, nacks; a write's reply is lost after it was applied; consumers of two processes race;
 * the topic is deleted and created again. The API's handlers are one process (this worker's stores), the
 * domain called with `otherProcess()` is the other.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { ack as ackDomain, nack as nackDomain, pullAndAck } from '../../functions/domain/groups/consume.js';
import { resetGroup } from '../../functions/domain/groups/groups.js';
import type { Stores } from '../../functions/domain/ports.js';
import { ack, produce, topicWithGroup, useApi, type Api } from '../support/api.js';

/** Another Lambda instance: the same tables, its own store objects (and so its own warm caches). */
function otherProcess(): Stores {
  const real = dynamoStores(loadConfig());
  return { ...real, groupState: Object.create(real.groupState), log: Object.create(real.log) };
}

interface Pulled {
  messages: Array<{ receipt: string; offset: number; body?: unknown; partition: number; deliveryCount: number }>;
  acked?: number;
  stale?: string[];
}

async function pullWith(api: Api, groupPath: string, body: Record<string, unknown>): Promise<Pulled> {
  const reply = await api('POST', `${groupPath}/pull`, body);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body as Pulled;
}

/** DynamoDB calls made while `run` runs, in wire form: progress reads and writes, log queries. */
async function counting<T>(run: () => Promise<T>) {
  const tables = loadConfig().tables;
  const seen = { progressReads: 0, progressWrites: 0, logQueries: 0 };
  observeDynamoCalls((command, input) => {
    const i = input as { TableName?: string; Key?: { sk?: { S?: string } }; Item?: { sk?: { S?: string } } };
    if (command === 'GetItemCommand' && i.TableName === tables.groupState && i.Key?.sk?.S?.startsWith('p#')) seen.progressReads++;
    if (command === 'PutItemCommand' && i.TableName === tables.groupState && i.Item?.sk?.S?.startsWith('p#')) seen.progressWrites++;
    if (command === 'QueryCommand' && i.TableName === tables.log) seen.logQueries++;
  });
  try {
    return { result: await run(), ...seen };
  } finally {
    observeDynamoCalls(undefined);
  }
}

const lagOf = async (api: Api, groupPath: string) => {
  const group = await api('GET', groupPath);
  return group.body.partitions.reduce((n: number, p: { lag: number }) => n + p.lag, 0) as number;
};

describe("a warm process's known progress and segments, against other processes", () => {
  const api = useApi();
  afterEach(() => clearFault());

  it('a pull planned on known progress that another process changed fails its write and leases only what is left', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, Array.from({ length: 6 }, (_, i) => ({ body: i })));
    const first = await pullWith(api, t.groupPath, { max: 2 });
    expect(first.messages.map((m) => m.offset)).toEqual([0, 1]);
    const other = otherProcess();
    const theirs = await pullAndAck(other, t.topic, t.group, { max: 2, waitSeconds: 0 });
    expect(theirs.deliveries.map((d) => d.offset)).toEqual([2, 3]);

    // This process still knows the item as it wrote it: it plans on that without a read, its write fails
    // the version check, and the failure's own copy of the item is what it plans on next.
    const again = await counting(() => pullWith(api, t.groupPath, { max: 2 }));
    expect(again.result.messages.map((m) => m.offset)).toEqual([4, 5]);
    expect([again.progressReads, again.progressWrites, again.logQueries]).toEqual([0, 2, 0]);

    expect(await ack(api, t.groupPath, [...first.messages, ...again.result.messages].map((m) => m.receipt))).toEqual({ acked: 4, stale: [] });
    expect(await ackDomain(other, t.topic, t.group, theirs.deliveries.map((d) => d.receipt))).toEqual({ settled: 2, stale: [] });
    expect(await lagOf(api, t.groupPath)).toBe(0);
  });

  it("acks on a pull planned on known progress are answered from the current item: after another process's redelivery the old receipt is stale", async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, [{ body: 'x' }]);
    const [mine] = (await pullWith(api, t.groupPath, { max: 1 })).messages;
    const other = otherProcess();
    expect(await nackDomain(other, t.topic, t.group, [mine!.receipt], 0)).toEqual({ settled: 1, stale: [] });
    const [theirs] = (await pullAndAck(other, t.topic, t.group, { max: 1, waitSeconds: 0 })).deliveries;
    expect(theirs).toMatchObject({ offset: 0, deliveryCount: 2 });

    // Known here: offset 0 leased with this receipt (it would settle). The write says otherwise.
    const late = await pullWith(api, t.groupPath, { max: 1, ackReceipts: [mine!.receipt] });
    expect([late.messages, late.acked, late.stale]).toEqual([[], 0, [mine!.receipt]]);
    expect(await ackDomain(other, t.topic, t.group, [theirs!.receipt])).toEqual({ settled: 1, stale: [] });
    expect(await lagOf(api, t.groupPath)).toBe(0);
  });

  it("acks on a pull that would write nothing on known progress are checked with a strong read: after another process's reset they are stale", async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    await produce(api, t.topic, [{ body: 'x' }]);
    const [first] = (await pullWith(api, t.groupPath, { max: 1 })).messages;
    const acked = await pullWith(api, t.groupPath, { max: 1, ackReceipts: [first!.receipt] });
    expect([acked.messages, acked.acked]).toEqual([[], 1]);
    // Known here now: offset 0 acknowledged, so acking it again would change nothing. Another process re-opens it.
    await resetGroup(otherProcess(), t.topic, t.group, 'earliest');
    const again = await pullWith(api, t.groupPath, { max: 10, ackReceipts: [first!.receipt] });
    expect([again.acked, again.stale]).toEqual([0, [first!.receipt]]);
    expect(again.messages.map((m) => [m.offset, m.body, m.deliveryCount])).toEqual([[0, 'x', 1]]);
  });

  it('a pull that finds nothing to do on known progress reads before it says so: work another process made due is delivered', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, [{ body: 'x' }]);
    const [mine] = (await pullWith(api, t.groupPath, { max: 1 })).messages;
    // Known here: offset 0 leased for a minute, nothing else: nothing to deliver. Another process nacks it.
    await nackDomain(otherProcess(), t.topic, t.group, [mine!.receipt], 0);
    const again = await pullWith(api, t.groupPath, { max: 1 });
    expect(again.messages.map((m) => [m.offset, m.deliveryCount])).toEqual([[0, 2]]);
    expect(await ack(api, t.groupPath, [again.messages[0]!.receipt])).toEqual({ acked: 1, stale: [] });
  });

  it('a progress write whose reply was lost after it was applied is known as written: the next pull goes on from it', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, Array.from({ length: 10 }, (_, i) => ({ body: i })));
    injectFault({ command: 'PutItem', when: 'lostReply', nth: 1 });
    const first = await pullWith(api, t.groupPath, { max: 5 });
    expect(faultFired()).toBe(true);
    expect(first.messages.map((m) => m.offset)).toEqual([0, 1, 2, 3, 4]);
    // The SDK's retry failed the version check on this very write, and its token said so: it is what this
    // process knows, so the next pull (with the acks) needs no read and leases the next five.
    const next = await counting(() => pullWith(api, t.groupPath, { max: 5, ackReceipts: first.messages.map((m) => m.receipt) }));
    expect(next.result.messages.map((m) => m.offset)).toEqual([5, 6, 7, 8, 9]);
    expect([next.result.acked, next.result.stale]).toEqual([5, []]);
    expect([next.progressReads, next.progressWrites]).toEqual([0, 1]);
    expect(await ack(api, t.groupPath, next.result.messages.map((m) => m.receipt))).toEqual({ acked: 5, stale: [] });
    expect(await lagOf(api, t.groupPath)).toBe(0);
  });

  it('consumers of two processes racing with acks on their pulls: every message leased once and acked once', async () => {
    const t = await topicWithGroup(api, { partitions: 3, group: { visibilitySeconds: 120 } });
    const total = 150;
    await produce(api, t.topic, Array.from({ length: total }, (_, i) => ({ body: i, partition: i % 3 })));
    const other = otherProcess();
    const delivered: Array<{ partition: number; offset: number; deliveryCount: number }> = [];
    let acked = 0;
    const stale: string[] = [];
    const consumer = async (pullOnce: (receipts: string[]) => Promise<{ messages: Pulled['messages']; acked?: number; stale?: string[] }>) => {
      let receipts: string[] = [];
      for (let round = 0; round < 200; round++) {
        const reply = await pullOnce(receipts);
        acked += reply.acked ?? 0;
        stale.push(...(reply.stale ?? []));
        delivered.push(...reply.messages);
        receipts = reply.messages.map((m) => m.receipt);
        if (receipts.length === 0 && delivered.length >= total) return;
      }
    };
    const viaApi = (receipts: string[]) => pullWith(api, t.groupPath, { max: 7, ...(receipts.length > 0 ? { ackReceipts: receipts } : {}) });
    const viaOther = async (receipts: string[]) => {
      const out = await pullAndAck(other, t.topic, t.group, { max: 7, waitSeconds: 0, ...(receipts.length > 0 ? { ackReceipts: receipts } : {}) });
      return { messages: out.deliveries, acked: out.acks?.settled, stale: out.acks?.stale };
    };
    await Promise.all([consumer(viaApi), consumer(viaApi), consumer(viaApi), consumer(viaOther), consumer(viaOther), consumer(viaOther)]);
    const keys = delivered.map((d) => `${d.partition}/${d.offset}`);
    expect(new Set(keys).size).toBe(total);
    expect(keys).toHaveLength(total);
    expect(delivered.every((d) => d.deliveryCount === 1)).toBe(true);
    expect([acked, stale]).toEqual([total, []]);
    expect(await lagOf(api, t.groupPath)).toBe(0);
  });

  it('small segments are read ahead, one query for many pulls; segments appended after the read-ahead still come, in order', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const produceEach = async (from: number, to: number) => {
      for (let i = from; i < to; i++) await produce(api, t.topic, [{ body: `m${i}` }]);
    };
    const bodies: unknown[] = [];
    let receipts: string[] = [];
    const pullUpTo = async (max: number) => {
      const reply = await pullWith(api, t.groupPath, { max, ...(receipts.length > 0 ? { ackReceipts: receipts } : {}) });
      expect(reply.stale ?? []).toEqual([]);
      bodies.push(...reply.messages.map((m) => m.body));
      receipts = reply.messages.map((m) => m.receipt);
    };
    await produceEach(0, 6);
    // The first query fetches one segment (nothing is known of this partition's sizes yet), the second as
    // many small ones as one 4 KB read unit holds: the other five.
    await pullUpTo(1);
    await pullUpTo(1);
    await produceEach(6, 9);
    // From offset 2: three known segments (m2..m4, then m5 short of the four asked), and the store for the rest.
    const spanning = await counting(() => pullUpTo(10));
    expect(bodies).toEqual(Array.from({ length: 9 }, (_, i) => `m${i}`));
    expect(spanning.logQueries).toBeLessThanOrEqual(2);
    await produceEach(9, 14);
    const fivePulls = await counting(async () => {
      for (let i = 0; i < 5; i++) await pullUpTo(1);
    });
    expect(bodies).toEqual(Array.from({ length: 14 }, (_, i) => `m${i}`));
    expect(fivePulls.logQueries).toBe(1);
    expect(await ack(api, t.groupPath, receipts)).toEqual({ acked: 1, stale: [] });
    expect(await lagOf(api, t.groupPath)).toBe(0);
  });

  it('a topic deleted and created again under its name: nothing the process knew of the old one is served', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, [{ body: 'old-0' }, { body: 'old-1' }]);
    expect((await pullWith(api, t.groupPath, { max: 1 })).messages.map((m) => m.body)).toEqual(['old-0']);
    expect((await api('DELETE', t.base)).status).toBe(204);
    expect((await api('PUT', t.base, { partitions: 1 })).status).toBe(201);
    expect((await api('PUT', t.groupPath, { startFrom: 'earliest', visibilitySeconds: 60 })).status).toBe(201);
    await produce(api, t.topic, [{ body: 'new-0' }, { body: 'new-1' }, { body: 'new-2' }]);
    const fresh = await pullWith(api, t.groupPath, { max: 10 });
    expect(fresh.messages.map((m) => [m.offset, m.body, m.deliveryCount])).toEqual([
      [0, 'new-0', 1],
      [1, 'new-1', 1],
      [2, 'new-2', 1],
    ]);
  });
});
