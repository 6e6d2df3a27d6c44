/**
 * DESIGN.md invariant 5: any AWS call may be applied and still fail to answer; the SDK then retries it.
 * The fault here is a TimeoutError thrown *inside the SDK's retry loop* after the call was applied
 * (functions/adapters/faults.ts, `lostReply`), so the SDK really sends the same request a second time.
 *
 * The sweep: for every DynamoDB call that produce, pull (shared and broadcast), ack, nack and redrive
 * make, run the operation with that one call's reply lost, and check the invariants each time:
 * one offset per message, nothing delivered twice or skipped, no lease leaked, no delivery burnt.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { ack, produce, pullAll, sleep, topicWithGroup, useApi, type Api } from '../support/api.js';

async function readPartition(api: Api, topic: string, partition: number) {
  const page = await api('GET', `/v1/topics/${topic}/partitions/${partition}/messages?from=0&limit=1000`);
  expect(page.status).toBe(200);
  return page.body.messages as Array<{ offset: number; body: unknown; id: string }>;
}

/** How many DynamoDB calls `run` makes (each counted once, however often the SDK retries it). */
async function countCalls(run: () => Promise<unknown>): Promise<number> {
  let calls = 0;
  observeDynamoCalls(() => calls++);
  try {
    await run();
  } finally {
    observeDynamoCalls(undefined);
  }
  return calls;
}

/**
 * Runs `scenario` once to count the calls of its operation, then once per call with that call's reply
 * lost. The scenario prepares its own fresh topic, arms the fault through `lose` right before the
 * operation, and checks the invariants itself.
 */
async function sweep(scenario: (lose: (op: () => Promise<unknown>) => Promise<unknown>) => Promise<void>) {
  let calls = 0;
  await scenario(async (op) => {
    let result: unknown;
    calls = await countCalls(async () => {
      result = await op();
    });
    return result;
  });
  expect(calls).toBeGreaterThan(0);
  for (let nth = 1; nth <= calls; nth++) {
    await scenario(async (op) => {
      injectFault({ command: '*', when: 'lostReply', nth });
      const result = await op();
      expect(faultFired(), `call ${nth} of ${calls} should have lost its reply`).toBe(true);
      return result;
    });
  }
  return calls;
}

describe('lost replies (the SDK retries a call that was applied)', () => {
  const api = useApi();
  afterEach(() => clearFault());

  it('a produce without producer ids whose segment write is retried gets one offset', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const results = await produce(api, topic, [{ body: 'once' }]);
    expect(faultFired()).toBe(true);
    expect(results.map((r) => r.offset)).toEqual([0]);
    expect((await readPartition(api, topic, 0)).map((m) => m.body)).toEqual(['once']);
  });

  it('a produce with producer ids whose transaction is retried answers its own offsets, not duplicate', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    injectFault({ command: 'TransactWriteItems', when: 'lostReply' });
    const results = await produce(api, topic, [{ body: 'a', id: 'lr-a' }, { body: 'b', id: 'lr-b' }]);
    expect(faultFired()).toBe(true);
    expect(results).toEqual([
      { id: 'lr-a', partition: 0, offset: 0 },
      { id: 'lr-b', partition: 0, offset: 1 },
    ]);
    expect((await readPartition(api, topic, 0)).map((m) => m.body)).toEqual(['a', 'b']);
  });

  it('a broadcast pull whose cursor write is retried returns that batch, not the next one', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: { mode: 'broadcast' } });
    await produce(api, topic, [{ body: 1 }, { body: 2 }, { body: 3 }, { body: 4 }]);
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const first = await pullAll(api, groupPath, { consumerId: 'c1', max: 2 });
    expect(faultFired()).toBe(true);
    expect(first.map((m) => m.body)).toEqual([1, 2]);
    expect((await pullAll(api, groupPath, { consumerId: 'c1', max: 2 })).map((m) => m.body)).toEqual([3, 4]);
  });

  it('a shared pull whose lease write is retried returns the leases it took: none leaks, no delivery is burnt', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: { maxDeliveries: 1, visibilitySeconds: 30 } });
    await produce(api, topic, [{ body: 'x' }]);
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const got = await pullAll(api, groupPath);
    expect(faultFired()).toBe(true);
    expect(got.map((m) => [m.body, m.deliveryCount])).toEqual([['x', 1]]);
    expect(await ack(api, groupPath, [got[0]!.receipt])).toEqual({ acked: 1, stale: [] });
    expect((await api('GET', `${groupPath}/dead-letters`)).body.messages).toEqual([]);
    expect((await api('GET', groupPath)).body.lag).toBe(0);
  });

  it('sweep: produce (keyed, two partitions, with and without ids) — one offset per message, gap-free', async () => {
    for (const withIds of [false, true]) {
      await sweep(async (lose) => {
        const { topic } = await topicWithGroup(api, { partitions: 2 });
        const messages = [0, 1, 2, 3].map((i) => ({ body: `m${i}`, partition: i % 2, ...(withIds ? { id: `id-${i}` } : {}) }));
        const reply = (await lose(() => api('POST', `/v1/topics/${topic}/messages`, { messages }))) as Awaited<ReturnType<Api>>;
        expect(reply.status).toBe(200);
        expect(reply.body.results.some((r: { duplicate?: boolean }) => r.duplicate)).toBe(false);
        for (const partition of [0, 1]) {
          const stored = await readPartition(api, topic, partition);
          expect(stored.map((m) => m.offset)).toEqual([0, 1]);
          expect(stored.map((m) => m.body)).toEqual([`m${partition}`, `m${partition + 2}`]);
        }
      });
    }
  });

  it('sweep: shared pull — the batch is delivered once, its leases are the ones returned', async () => {
    await sweep(async (lose) => {
      const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: { maxDeliveries: 1 } });
      await produce(api, topic, [0, 1, 2, 3].map((i) => ({ body: i, partition: i % 2 })));
      const reply = (await lose(() => api('POST', `${groupPath}/pull`, { max: 10 }))) as Awaited<ReturnType<Api>>;
      expect(reply.status).toBe(200);
      const got = reply.body.messages as Array<{ body: number; deliveryCount: number; receipt: string }>;
      expect(got.map((m) => m.body).sort()).toEqual([0, 1, 2, 3]);
      expect(got.every((m) => m.deliveryCount === 1)).toBe(true);
      expect(await pullAll(api, groupPath)).toEqual([]);
      expect(await ack(api, groupPath, got.map((m) => m.receipt))).toEqual({ acked: 4, stale: [] });
      expect((await api('GET', groupPath)).body.lag).toBe(0);
    });
  });

  it('sweep: broadcast pull — no batch skipped, none delivered twice', async () => {
    await sweep(async (lose) => {
      const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: { mode: 'broadcast' } });
      await produce(api, topic, [0, 1, 2, 3].map((i) => ({ body: i, partition: i % 2 })));
      const reply = (await lose(() => api('POST', `${groupPath}/pull`, { consumerId: 'c', max: 3 }))) as Awaited<ReturnType<Api>>;
      expect(reply.status).toBe(200);
      const rest = await pullAll(api, groupPath, { consumerId: 'c' });
      const all = [...reply.body.messages, ...rest].map((m: { body: number }) => m.body);
      expect(all.sort()).toEqual([0, 1, 2, 3]);
    });
  });

  it('sweep: ack — every receipt settles once and nothing comes back', async () => {
    await sweep(async (lose) => {
      const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: { visibilitySeconds: 1 } });
      await produce(api, topic, [0, 1, 2].map((i) => ({ body: i, partition: i % 2 })));
      const got = await pullAll(api, groupPath);
      const reply = (await lose(() => api('POST', `${groupPath}/ack`, { receipts: got.map((m) => m.receipt) }))) as Awaited<ReturnType<Api>>;
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ acked: 3, stale: [] });
      await sleep(1100);
      expect(await pullAll(api, groupPath)).toEqual([]);
    });
  });

  it('sweep: nack — the messages come back once, with the next delivery count', async () => {
    await sweep(async (lose) => {
      const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: {} });
      await produce(api, topic, [{ body: 'a' }, { body: 'b' }]);
      const got = await pullAll(api, groupPath);
      const receipts = got.map((m) => m.receipt);
      const reply = (await lose(() => api('POST', `${groupPath}/nack`, { receipts, retryAfterSeconds: 0 }))) as Awaited<ReturnType<Api>>;
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ nacked: 2, stale: [] });
      const again = await pullAll(api, groupPath);
      expect(again.map((m) => [m.body, m.deliveryCount])).toEqual([
        ['a', 2],
        ['b', 2],
      ]);
    });
  });

  it('sweep: redrive — each dead letter comes back exactly once', async () => {
    await sweep(async (lose) => {
      const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: { maxDeliveries: 1, visibilitySeconds: 1 } });
      await produce(api, topic, [0, 1, 2].map((i) => ({ body: i, partition: i % 2 })));
      expect(await pullAll(api, groupPath)).toHaveLength(3);
      await sleep(1100);
      expect(await pullAll(api, groupPath)).toEqual([]);
      expect((await api('GET', `${groupPath}/dead-letters`)).body.messages).toHaveLength(3);
      const reply = (await lose(() => api('POST', `${groupPath}/dead-letters/redrive`))) as Awaited<ReturnType<Api>>;
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({ redriven: 3, deferred: 0 });
      expect((await api('GET', `${groupPath}/dead-letters`)).body.messages).toEqual([]);
      const back = await pullAll(api, groupPath);
      expect(back.map((m) => m.body).sort()).toEqual([0, 1, 2]);
      expect(back.every((m) => m.deliveryCount === 1)).toBe(true);
    });
  });
});
