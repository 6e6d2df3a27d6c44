/**
 * Tries to break DESIGN.md's invariants: gap-free unique offsets under racing producers, no loss or
 * double offset when a handler dies between two AWS calls, every message acked exactly once by a
 * crowd of consumers, ordered groups never having two batches of a partition out, broadcast seeing all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { forgetTailHints, raceAppendsLikeSeparateProcesses } from '../../functions/domain/produce.js';
import { ack, produce, pullAll, sleep, topicWithGroup, useApi, type Api } from '../support/api.js';

async function readPartition(api: Api, topic: string, partition: number) {
  const messages: Array<{ offset: number; body: unknown; id: string }> = [];
  let from = 0;
  for (;;) {
    const page = await api('GET', `/v1/topics/${topic}/partitions/${partition}/messages?from=${from}&limit=1000`);
    expect(page.status).toBe(200);
    messages.push(...page.body.messages);
    if (page.body.messages.length === 0) return messages;
    from = page.body.next;
  }
}

function expectGapFree(messages: Array<{ offset: number }>) {
  expect(messages.map((m) => m.offset)).toEqual(messages.map((_, i) => i));
}

describe('invariants', () => {
  const api = useApi();
  afterEach(() => {
    clearFault();
    raceAppendsLikeSeparateProcesses(false);
  });

  it('50 appends racing for the same offset: exactly one wins (the storage guarantee the log rests on)', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const { dynamoStores } = await import('../../functions/adapters/stores.js');
    const { loadConfig } = await import('../../functions/config.js');
    const stores = dynamoStores(loadConfig());
    const topicRecord = (await stores.catalog.getTopic(topic))!;
    const key = `${topicRecord.name}@${topicRecord.epoch}`;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        stores.log.appendSegment(key, { partition: 0, base: 0, producedAt: Date.now(), records: [{ b: `writer-${i}` }] }, [], 0),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected').every((o) => (o as PromiseRejectedResult).reason.message === 'offset already written')).toBe(true);
    const stored = await readPartition(api, topic, 0);
    expect(stored).toHaveLength(1);
  });

  it('20 concurrent producers on one partition get offsets 0..n-1: no gap, no duplicate, each body where its offset says', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    // Each request behaves as its own Lambda instance: no in-process queueing, so they really race.
    raceAppendsLikeSeparateProcesses(true);
    const producers = 20;
    const requestsEach = 5;
    const batch = 3;
    const results = await Promise.all(
      Array.from({ length: producers }, async (_, p) => {
        const mine: Array<{ offset: number; body: string }> = [];
        for (let r = 0; r < requestsEach; r++) {
          // Every other request starts cold, like a fresh Lambda that has no tail hint.
          if ((p + r) % 2 === 0) forgetTailHints();
          const bodies = Array.from({ length: batch }, (_, i) => `p${p}-r${r}-m${i}`);
          const out = await produce(api, topic, bodies.map((body) => ({ body, partition: 0 })));
          out.forEach((o, i) => mine.push({ offset: o.offset, body: bodies[i]! }));
        }
        return mine;
      }),
    );
    const all = results.flat();
    const n = producers * requestsEach * batch;
    expect(all).toHaveLength(n);
    expect(all.map((r) => r.offset).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    const stored = await readPartition(api, topic, 0);
    expectGapFree(stored);
    const bodyAt = new Map(stored.map((m) => [m.offset, m.body]));
    for (const r of all) expect(bodyAt.get(r.offset)).toBe(r.body);
    // Each request's messages are contiguous: one segment per request.
    for (const mine of results) {
      for (let r = 0; r < requestsEach; r++) {
        const offsets = mine.slice(r * batch, (r + 1) * batch).map((m) => m.offset);
        expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
      }
    }
  });

  it('a produce that dies after its first segment commit, then is retried with the same ids, appends each message once', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 2 });
    const messages = Array.from({ length: 6 }, (_, i) => ({ body: `m${i}`, id: `crash-${i}`, partition: i % 2 }));
    await produce(api, topic, [{ body: 'already there', partition: 1 }]);
    injectFault({ command: 'TransactWriteItems', when: 'after', nth: 1 });
    const failed = await api('POST', `/v1/topics/${topic}/messages`, { messages });
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe('InternalError');
    expect(faultFired()).toBe(true);

    // Both partitions' transactions were under way; at least the first committed before the "crash".
    const landed = [...(await readPartition(api, topic, 0)), ...(await readPartition(api, topic, 1))].filter((m) =>
      m.id.startsWith('crash-'),
    );
    expect(landed.length).toBeGreaterThanOrEqual(3);
    forgetTailHints();
    const retried = await produce(api, topic, messages);
    expect(retried.filter((r) => r.duplicate).map((r) => r.id).sort()).toEqual(landed.map((m) => m.id).sort());
    for (const partition of [0, 1]) {
      const stored = await readPartition(api, topic, partition);
      expectGapFree(stored);
      const ids = stored.map((m) => m.id).filter((id) => id.startsWith('crash-'));
      expect(new Set(ids).size).toBe(ids.length);
    }
    const stored = [...(await readPartition(api, topic, 0)), ...(await readPartition(api, topic, 1))];
    for (const [i, r] of retried.entries()) {
      expect(r.id).toBe(`crash-${i}`);
      const m = stored.find((s) => s.id === r.id)!;
      expect([m.offset, m.body]).toEqual([r.offset, `m${i}`]);
    }
    // A third attempt changes nothing.
    expect((await produce(api, topic, messages)).map((r) => [r.partition, r.offset])).toEqual(retried.map((r) => [r.partition, r.offset]));
  });

  it('a produce that dies before or after its write leaves no gap and no double offset (without ids: at-least-once)', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    injectFault({ command: 'PutItem', when: 'before' });
    expect((await api('POST', `/v1/topics/${topic}/messages`, { messages: [{ body: 'a' }] })).status).toBe(500);
    expect(await readPartition(api, topic, 0)).toEqual([]);

    injectFault({ command: 'PutItem', when: 'after' });
    expect((await api('POST', `/v1/topics/${topic}/messages`, { messages: [{ body: 'b' }] })).status).toBe(500);
    // The client cannot know whether it landed and retries; without a producer id it lands twice, at two offsets.
    await produce(api, topic, [{ body: 'b' }]);
    await produce(api, topic, [{ body: 'c' }]);
    const stored = await readPartition(api, topic, 0);
    expectGapFree(stored);
    expect(stored.map((m) => m.body)).toEqual(['b', 'b', 'c']);
  });

  it('a pull that dies after leasing loses nothing: the messages come back after the visibility timeout', async () => {
    // Leases of 5 s: the empty pull right after the failed one is well inside them even on a loaded machine.
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 5 } });
    await produce(api, topic, [{ body: 1 }, { body: 2 }]);
    injectFault({ command: 'PutItem', when: 'after' });
    expect((await api('POST', `${groupPath}/pull`, { max: 10 })).status).toBe(500);
    expect(await pullAll(api, groupPath)).toEqual([]);
    // Waits on the condition (a long poll answers once the leases have expired), not on a sleep.
    const again = await pullAll(api, groupPath, { waitSeconds: 20 });
    expect(again.map((m) => [m.body, m.deliveryCount])).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it('a pull that dies before leasing leaves the messages available at once', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: {} });
    await produce(api, topic, [{ body: 1 }]);
    injectFault({ command: 'PutItem', when: 'before' });
    expect((await api('POST', `${groupPath}/pull`, { max: 10 })).status).toBe(500);
    const got = await pullAll(api, groupPath);
    expect(got.map((m) => [m.body, m.deliveryCount])).toEqual([[1, 1]]);
  });

  it('an ack that dies between two partitions can be retried: every message is acked once and never comes back', async () => {
    // Leases of 60 s: the retried ack is well inside them however slow the machine. "Never comes back" is
    // checked on the group's state: no entry is left that a later pull could redeliver.
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: { visibilitySeconds: 60 } });
    await produce(api, topic, [{ body: 'a', partition: 0 }, { body: 'b', partition: 1 }]);
    const got = await pullAll(api, groupPath);
    expect(got).toHaveLength(2);
    injectFault({ command: 'PutItem', when: 'after', nth: 1 });
    const receipts = got.map((m) => m.receipt);
    expect((await api('POST', `${groupPath}/ack`, { receipts })).status).toBe(500);
    expect(await ack(api, groupPath, receipts)).toEqual({ acked: 2, stale: [] });
    const view = (await api('GET', groupPath)).body;
    expect(view.lag).toBe(0);
    expect(view.partitions.map((p: { ackedThrough: number; endOffset: number; inFlight: number }) => [p.ackedThrough, p.endOffset, p.inFlight])).toEqual([
      [1, 1, 0],
      [1, 1, 0],
    ]);
    expect(await pullAll(api, groupPath)).toEqual([]);
  });

  it('many concurrent consumers of a shared group ack every message exactly once; dropped ones come back', async () => {
    // The group's leases are 60 s, so no ack of a healthy consumer can be late however loaded the machine;
    // consumer 0, which "crashes", takes 2 s leases (the pull's own visibilitySeconds) so that what it drops
    // comes back soon. If one of its own acks is late (a lease that expired first), that ack is stale and the
    // message comes back too: it is then acked once, later, which is exactly what is checked.
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 4, group: { visibilitySeconds: 60 } });
    const total = 240;
    await produce(api, topic, Array.from({ length: total }, (_, i) => ({ body: i, key: `k${i % 37}` })));
    const ackedIds: string[] = [];
    const redelivered = new Set<number>();
    let dropped = 0;
    const droppedBodies: number[] = [];
    const deadline = Date.now() + 45_000;
    await Promise.all(
      Array.from({ length: 6 }, async (_, c) => {
        while (ackedIds.length < total && Date.now() < deadline) {
          const got = await pullAll(api, groupPath, { max: 10, waitSeconds: 1, ...(c === 0 ? { visibilitySeconds: 2 } : {}) });
          const keep: string[] = [];
          for (const m of got) {
            if (m.deliveryCount > 1) redelivered.add(m.body);
            // Consumer 0 "crashes" on every 7th first delivery: it never acks, the lease must expire.
            if (c === 0 && m.deliveryCount === 1 && m.body % 7 === 0) {
              dropped++;
              droppedBodies.push(m.body);
            }
            else keep.push(m.receipt);
          }
          if (keep.length === 0) continue;
          const result = await ack(api, groupPath, keep);
          if (c !== 0) expect(result.stale).toEqual([]);
          for (const m of got) if (keep.includes(m.receipt) && !result.stale.includes(m.receipt)) ackedIds.push(m.id);
        }
      }),
    );
    expect(ackedIds).toHaveLength(total);
    expect(new Set(ackedIds).size).toBe(total);
    // Every dropped delivery came back (and only a late ack of consumer 0 can add to the redeliveries).
    for (const body of droppedBodies) expect(redelivered.has(body)).toBe(true);
    expect(redelivered.size).toBeGreaterThanOrEqual(dropped);
    const view = await api('GET', groupPath);
    expect(view.body.lag).toBe(0);
  });

  it('an ordered group never has two batches of a partition out and delivers strictly in order across nacks', async () => {
    // Nothing here relies on a lease expiring (failed messages are nacked), so leases of 60 s: a lease that
    // expired on a loaded machine between a pull and its ack would show up as "a second batch while one was out".
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: { mode: 'ordered', visibilitySeconds: 60 } });
    const perPartition = 30;
    await produce(
      api,
      topic,
      Array.from({ length: perPartition * 2 }, (_, i) => ({ body: { p: i % 2, n: Math.floor(i / 2) }, partition: i % 2 })),
    );
    const outstanding = new Map<number, boolean>();
    const nextExpected = [0, 0];
    const ackedOrder: number[][] = [[], []];
    const violations: string[] = [];
    let rng = 42;
    const random = () => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const deadline = Date.now() + 45_000;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (ackedOrder[0]!.length + ackedOrder[1]!.length < perPartition * 2 && Date.now() < deadline) {
          const got = await pullAll(api, groupPath, { max: 4 });
          if (got.length === 0) {
            await sleep(20);
            continue;
          }
          const byPartition = new Map<number, typeof got>();
          for (const m of got) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
          for (const [p, batch] of byPartition) {
            if (outstanding.get(p)) violations.push(`partition ${p}: a second batch while one was out`);
            outstanding.set(p, true);
            const offsets = batch.map((m) => m.offset);
            if (offsets[0] !== nextExpected[p]) violations.push(`partition ${p}: batch starts at ${offsets[0]}, expected ${nextExpected[p]}`);
            offsets.forEach((o, i) => {
              if (o !== offsets[0]! + i) violations.push(`partition ${p}: batch not contiguous ${offsets}`);
            });
          }
          await sleep(10);
          for (const [p, batch] of byPartition) {
            // Process in order; at a random point fail and nack the rest, as an ordered consumer does.
            const cut = random() < 0.3 ? Math.floor(random() * batch.length) : batch.length;
            const done = batch.slice(0, cut);
            const failed = batch.slice(cut);
            nextExpected[p] = failed.length > 0 ? failed[0]!.offset : batch[batch.length - 1]!.offset + 1;
            ackedOrder[p]!.push(...done.map((m) => m.offset));
            outstanding.set(p, false);
            if (done.length > 0) await ack(api, groupPath, done.map((m) => m.receipt));
            if (failed.length > 0) {
              await api('POST', `${groupPath}/nack`, { receipts: failed.map((m) => m.receipt), retryAfterSeconds: 0 });
            }
          }
        }
      }),
    );
    expect(violations).toEqual([]);
    expect(ackedOrder).toEqual([
      Array.from({ length: perPartition }, (_, i) => i),
      Array.from({ length: perPartition }, (_, i) => i),
    ]);
  });

  it('every consumer of a broadcast group sees every message exactly once, while producers and consumers race', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 3, group: { mode: 'broadcast' } });
    const total = 90;
    const consumers = ['a', 'b', 'c', 'd'];
    const seen = new Map(consumers.map((c) => [c, [] as number[]]));
    let produced = false;
    const producing = (async () => {
      for (let i = 0; i < total; i += 10) {
        await produce(api, topic, Array.from({ length: 10 }, (_, k) => ({ body: i + k, key: `k${i + k}` })));
      }
      produced = true;
    })();
    await Promise.all(
      consumers.flatMap((consumerId) =>
        // Two pollers per consumer id: a consumer instance with two threads must still not see a message twice.
        [0, 1].map(async () => {
          const deadline = Date.now() + 30_000;
          while (Date.now() < deadline) {
            const got = await pullAll(api, groupPath, { consumerId, max: 7 });
            seen.get(consumerId)!.push(...got.map((m) => m.body as number));
            if (produced && got.length === 0 && seen.get(consumerId)!.length >= total) break;
            if (got.length === 0) await sleep(20);
          }
        }),
      ),
    );
    await producing;
    for (const c of consumers) {
      expect(seen.get(c)!.sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i));
    }
  });
});
