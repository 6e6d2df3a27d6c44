/**
 * Acks piggy-backed on the next pull (`ackReceipts`, issue 11): a consumer loop costs one call per batch,
 * and on each partition the acks and the new leases are one progress write.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { ack, produce, pullAll, sleep, topicWithGroup, useApi, type Api } from '../support/api.js';

async function pullWith(api: Api, groupPath: string, body: Record<string, unknown>) {
  const reply = await api('POST', `${groupPath}/pull`, body);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body as { messages: Array<{ receipt: string; offset: number; body: unknown; partition: number }>; acked?: number; stale?: string[] };
}

async function countingPutItems<T>(run: () => Promise<T>): Promise<{ result: T; puts: number }> {
  let puts = 0;
  observeDynamoCalls((command) => {
    if (command === 'PutItemCommand') puts++;
  });
  try {
    return { result: await run(), puts };
  } finally {
    observeDynamoCalls(undefined);
  }
}

describe('ackReceipts on pull', () => {
  const api = useApi();
  afterEach(() => clearFault());

  it('a consumer loop acks each batch with the next pull: everything once, nothing redelivered, lag 0', async () => {
    const t = await topicWithGroup(api, { partitions: 3, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, Array.from({ length: 50 }, (_, i) => ({ body: i })));
    const seen: unknown[] = [];
    let receipts: string[] = [];
    let acked = 0;
    for (let round = 0; round < 20; round++) {
      const reply = await pullWith(api, t.groupPath, { max: 7, ...(receipts.length > 0 ? { ackReceipts: receipts } : {}) });
      if (receipts.length > 0) {
        expect(reply.acked).toBe(receipts.length);
        expect(reply.stale).toEqual([]);
        acked += reply.acked!;
      } else expect(reply.acked).toBeUndefined();
      seen.push(...reply.messages.map((m) => m.body));
      receipts = reply.messages.map((m) => m.receipt);
      if (receipts.length === 0) break;
    }
    expect(acked).toBe(50);
    expect(seen.sort((a, b) => (a as number) - (b as number))).toEqual([...Array(50).keys()]);
    const group = await api('GET', t.groupPath);
    expect(group.body.partitions.reduce((n: number, p: { lag: number }) => n + p.lag, 0)).toBe(0);
  });

  it('on a partition, the acks and the next leases are one progress write (pull + ack separately: two)', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    await produce(api, t.topic, Array.from({ length: 20 }, (_, i) => ({ body: i })));
    const first = await pullWith(api, t.groupPath, { max: 10 });
    const separate = await countingPutItems(async () => {
      await ack(api, t.groupPath, first.messages.slice(0, 5).map((m) => m.receipt));
      return pullWith(api, t.groupPath, { max: 5 });
    });
    expect(separate.puts).toBe(2);
    const combined = await countingPutItems(() =>
      pullWith(api, t.groupPath, { max: 5, ackReceipts: [...first.messages.slice(5).map((m) => m.receipt), ...separate.result.messages.map((m) => m.receipt)] }),
    );
    expect(combined.puts).toBe(1);
    expect(combined.result.acked).toBe(10);
    expect(combined.result.messages.map((m) => m.body)).toEqual([15, 16, 17, 18, 19]);
  });

  it('acks of partitions a full reply never reaches are settled too', async () => {
    const t = await topicWithGroup(api, { partitions: 4, group: {} });
    await produce(api, t.topic, Array.from({ length: 40 }, (_, i) => ({ body: i, partition: i % 4 })));
    const all = await pullAll(api, t.groupPath, { max: 12 }); // more than one partition holds
    expect(new Set(all.map((m) => m.partition)).size).toBeGreaterThan(1);
    const reply = await pullWith(api, t.groupPath, { max: 1, ackReceipts: all.map((m) => m.receipt) });
    expect(reply.acked).toBe(12);
    expect(reply.messages).toHaveLength(1);
    // None of the acked ones ever comes back: pull everything else and ack it.
    const rest = await pullAll(api, t.groupPath, { max: 100 });
    const offsets = new Set([...all, ...reply.messages, ...rest].map((m) => `${m.partition}:${m.offset}`));
    expect(offsets.size).toBe(40);
  });

  it('stale and foreign receipts are reported stale and change nothing; a malformed one is 400 and acks nothing', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 1 } });
    await produce(api, t.topic, [{ body: 'a' }, { body: 'b' }]);
    const first = await pullWith(api, t.groupPath, { max: 2 });
    await sleep(1100);
    // The leases expired: the messages come back with new receipts, and the old ones are stale.
    const again = await pullWith(api, t.groupPath, { max: 2, visibilitySeconds: 60, ackReceipts: first.messages.map((m) => m.receipt) });
    expect(again.acked).toBe(0);
    expect(again.stale).toEqual(first.messages.map((m) => m.receipt));
    expect(again.messages.map((m) => m.body)).toEqual(['a', 'b']);
    const bad = await api('POST', `${t.groupPath}/pull`, { ackReceipts: [again.messages[0]!.receipt, 'not-a-receipt'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('ValidationError');
    // The good receipt in the refused request was not acked.
    const acked = await ack(api, t.groupPath, again.messages.map((m) => m.receipt));
    expect(acked).toEqual({ acked: 2, stale: [] });
    const beyond = await pullWith(api, t.groupPath, { ackReceipts: ['7.0.1.abcdef12'] });
    expect(beyond.stale).toEqual(['7.0.1.abcdef12']);
  });

  it('the combined write losing its reply is retried as its own: acks counted once, no lease lost', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, Array.from({ length: 6 }, (_, i) => ({ body: i })));
    const first = await pullWith(api, t.groupPath, { max: 3 });
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const reply = await pullWith(api, t.groupPath, { max: 3, ackReceipts: first.messages.map((m) => m.receipt) });
    expect(faultFired()).toBe(true);
    expect(reply.acked).toBe(3);
    expect(reply.messages.map((m) => m.body)).toEqual([3, 4, 5]);
    const last = await pullWith(api, t.groupPath, { max: 10, ackReceipts: reply.messages.map((m) => m.receipt) });
    expect(last.acked).toBe(3);
    expect(last.messages).toEqual([]);
  });

  it('a broadcast group takes ackReceipts as an ack (settled, nothing changes)', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { mode: 'broadcast' } });
    await produce(api, t.topic, [{ body: 1 }]);
    const first = await pullWith(api, t.groupPath, { consumerId: 'c1' });
    const next = await pullWith(api, t.groupPath, { consumerId: 'c1', ackReceipts: first.messages.map((m) => m.receipt) });
    expect(next.acked).toBe(1);
    expect(next.messages).toEqual([]);
  });
});
