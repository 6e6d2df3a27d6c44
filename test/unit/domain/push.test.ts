import { afterEach, describe, expect, it, vi } from 'vitest';
import { dispatchPush, segmentOfLogKey } from '../../../functions/domain/push/dispatch.js';
import type { PushVerdict } from '../../../functions/domain/push/reply.js';
import { runPushWork } from '../../../functions/domain/push/runWork.js';
import { verifySignature } from '../../../functions/domain/push/signature.js';
import { pushPartition, type PushPorts } from '../../../functions/domain/push/worker.js';
import { listDeadLetters } from '../../../functions/domain/groups/deadLetters.js';
import { putGroup } from '../../../functions/domain/groups/groups.js';
import { describeGroup } from '../../../functions/domain/groups/groups.js';
import { bodies, defaults, T0, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => vi.restoreAllMocks());

const FAR = T0 + 1e9;

interface Sent {
  url?: string;
  arn?: string;
  batchId?: string;
  body: { topic: string; group: string; messages: Array<Record<string, unknown>> };
  secret?: string;
}

/** Push ports that record each batch and answer with the verdicts given, in turn (the last one repeats). */
function ports(verdicts: PushVerdict[]): PushPorts & { sent: Sent[] } {
  const sent: Sent[] = [];
  const next = () => (verdicts.length > 1 ? verdicts.shift()! : verdicts[0]!);
  return {
    sent,
    async http(target, batchId, body) {
      sent.push({ url: target.url, batchId, body: JSON.parse(body), secret: target.signingSecret });
      return next();
    },
    async lambda(functionArn, _timeout, payload) {
      sent.push({ arn: functionArn, body: JSON.parse(payload) });
      return next();
    },
  };
}

const http = { type: 'http' as const, url: 'https://example.com/hook', batchSize: 2, maxConcurrency: 1, timeoutSeconds: 5 };
const lambda = { type: 'lambda' as const, functionArn: 'arn:aws:lambda:us-east-1:1:function:f', batchSize: 10, maxConcurrency: 2, timeoutSeconds: 5 };

describe('push worker', () => {
  it('delivers a partition in batches until nothing is left, acking what the endpoint took', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce([{ body: 'a', key: 'k', partition: 0 }, { bodyBase64: 'AA==', partition: 0 }, { body: 'c', partition: 0, tags: ['t'] }]);
    const p = ports([{ kind: 'delivered' }]);
    const round = await pushPartition(w.stores, p, w.name, w.group, 0, FAR);
    expect(round).toEqual({ delivered: 3, failed: 0, more: false });
    expect(p.sent.map((s) => s.body.messages.map((m) => m.offset))).toEqual([[0, 1], [2]]);
    expect(p.sent[0]!.body).toMatchObject({ topic: w.name, group: w.group });
    expect(p.sent[0]!.body.messages[0]).toEqual({
      id: expect.any(String),
      partition: 0,
      offset: 0,
      body: 'a',
      key: 'k',
      tags: [],
      headers: {},
      producedAt: new Date(T0).toISOString(),
      deliveryCount: 1,
    });
    expect(p.sent[0]!.body.messages[1]).toMatchObject({ bodyBase64: 'AA==', key: null });
    expect(p.sent[0]!.body.messages[1]).not.toHaveProperty('body');
    expect(p.sent[0]!.batchId).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(p.sent[0]!.secret).toBe(await w.stores.secrets.get(w.groupKey));
    expect((await describeGroup(w.stores, w.name, w.group)).lag).toBe(0);
  });

  it('the batch id is the same for every retry of the same messages', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(2));
    const p = ports([{ kind: 'retryLater', retryAfterSeconds: 1, slowDown: false, reason: 'x' }]);
    await pushPartition(w.stores, p, w.name, w.group, 0, FAR);
    clock.advance(1000);
    await pushPartition(w.stores, p, w.name, w.group, 0, FAR);
    expect(p.sent).toHaveLength(2);
    expect(p.sent[1]!.batchId).toBe(p.sent[0]!.batchId);
    expect(p.sent[1]!.body.messages[0]!.deliveryCount).toBe(2);
  });

  it('a failed batch is nacked with jittered backoff; it comes back after it', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(1));
    const p = ports([{ kind: 'failed', reason: 'endpoint answered 500' }]);
    expect(await pushPartition(w.stores, p, w.name, w.group, 0, FAR)).toEqual({ delivered: 0, failed: 1, more: false });
    clock.advance(900);
    await pushPartition(w.stores, p, w.name, w.group, 0, FAR);
    expect(p.sent).toHaveLength(1);
    clock.advance(100);
    await pushPartition(w.stores, p, w.name, w.group, 0, FAR);
    expect(p.sent).toHaveLength(2);
  });

  it('a partial failure acks the rest and nacks the failed ids', async () => {
    const w = await world({ group: { delivery: { ...http, batchSize: 3 } } });
    const results = await w.produce(bodies(3));
    const p = ports([{ kind: 'partial', failedIds: [results[1]!.id] }]);
    expect(await pushPartition(w.stores, p, w.name, w.group, 0, FAR)).toEqual({ delivered: 2, failed: 1, more: false });
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.partitions[0]).toMatchObject({ ackedThrough: 1, inFlight: 0 });
    const progress = await w.stores.groupState.getProgress(w.groupKey, 0);
    expect(progress!.entries.map((e) => [e.offset, e.token])).toEqual([[1, '']]);
  });

  it('retryLater pauses the round for the endpoint’s time, at least a second; slowDown for a second', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(4));
    const later = ports([{ kind: 'retryLater', retryAfterSeconds: 7, slowDown: true, reason: '429' }]);
    expect(await pushPartition(w.stores, later, w.name, w.group, 0, FAR)).toEqual({ delivered: 0, failed: 2, more: true, resumeAfterMs: 7000 });
    clock.advance(6999);
    const slow = ports([{ kind: 'delivered', slowDown: true }]);
    expect(await pushPartition(w.stores, slow, w.name, w.group, 0, FAR)).toEqual({ delivered: 2, failed: 0, more: true, resumeAfterMs: 1000 });
    expect(slow.sent[0]!.body.messages.map((m) => m.offset)).toEqual([2, 3]);
    const zero = ports([{ kind: 'retryLater', retryAfterSeconds: 0, slowDown: false, reason: 'x' }]);
    clock.advance(1);
    expect(await pushPartition(w.stores, zero, w.name, w.group, 0, FAR)).toMatchObject({ more: true, resumeAfterMs: 1000 });
  });

  it('unprocessable batches go straight to the dead letters', async () => {
    const w = await world({ group: { delivery: http, maxDeliveries: 5 } });
    await w.produce(bodies(2));
    const p = ports([{ kind: 'unprocessable', reason: 'errno 1000001' }, { kind: 'delivered' }]);
    expect(await pushPartition(w.stores, p, w.name, w.group, 0, FAR)).toEqual({ delivered: 0, failed: 2, more: false });
    await w.produce(bodies(1));
    await pushPartition(w.stores, p, w.name, w.group, 0, FAR);
    const { letters } = await listDeadLetters(w.stores, w.name, w.group, 10);
    expect(letters.map((l) => [l.offset, l.deliveryCount])).toEqual([
      [0, 5],
      [1, 5],
    ]);
  });

  it('an HTTP group without a signing secret fails its batches instead of sending them unsigned', async () => {
    const w = await world({ group: { delivery: http } });
    w.stores.secrets.secrets.clear();
    await w.produce(bodies(1));
    const p = ports([{ kind: 'delivered' }]);
    expect(await pushPartition(w.stores, p, w.name, w.group, 0, FAR)).toEqual({ delivered: 0, failed: 1, more: false });
    expect(p.sent).toEqual([]);
  });

  it('a Lambda group is invoked with the batch', async () => {
    const w = await world({ group: { delivery: lambda } });
    await w.produce(bodies(3));
    const p = ports([{ kind: 'delivered' }]);
    expect(await pushPartition(w.stores, p, w.name, w.group, 0, FAR)).toEqual({ delivered: 3, failed: 0, more: false });
    expect(p.sent.map((s) => [s.arn, s.body.messages.length])).toEqual([[lambda.functionArn, 3]]);
  });

  it('a round stops with work left when the next batch could not be settled before the deadline', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(4));
    const p = ports([{ kind: 'delivered' }]);
    // The endpoint's timeout (5 s) and the settle margin (2 s) must fit before the deadline.
    expect(await pushPartition(w.stores, p, w.name, w.group, 0, T0 + 6999)).toEqual({ delivered: 0, failed: 0, more: true, resumeAfterMs: 0 });
    expect(p.sent).toEqual([]);
    expect(await pushPartition(w.stores, p, w.name, w.group, 0, T0 + 7000)).toEqual({ delivered: 4, failed: 0, more: false });
  });

  it('a group switched to pull stops its push round', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(1));
    await putGroup(w.stores, w.name, w.group, defaults);
    clock.advance(1000);
    expect(await pushPartition(w.stores, ports([{ kind: 'delivered' }]), w.name, w.group, 0, FAR)).toEqual({ delivered: 0, failed: 0, more: false });
  });

  it('the lease outlives the endpoint timeout by 5 s', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(1));
    let leasedUntil = 0;
    const p: PushPorts = {
      async http() {
        const progress = await w.stores.groupState.getProgress(w.groupKey, 0);
        leasedUntil = progress!.entries[0]!.until;
        return { kind: 'delivered' };
      },
      lambda: async () => ({ kind: 'delivered' }),
    };
    await pushPartition(w.stores, p, w.name, w.group, 0, FAR);
    expect(leasedUntil).toBe(T0 + (5 + 5) * 1000);
  });
});

describe('push work', () => {
  it('delivers, releases its slot, and plans no wake-up when nothing is left', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(1));
    const outcome = await runPushWork(w.stores, ports([{ kind: 'delivered' }]), { topic: w.name, group: w.group, partition: 0 }, FAR);
    expect(outcome).toEqual({ delivered: 1, failed: 0 });
    expect(w.stores.pushQueue.sent).toEqual([]);
    expect(w.stores.groupState.groups.get(w.groupKey)!.slots.size).toBe(0);
  });

  it('wakes itself when a nacked message is due again, once per partition', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(1));
    const work = { topic: w.name, group: w.group, partition: 0 };
    const outcome = await runPushWork(w.stores, ports([{ kind: 'failed', reason: '500' }]), work, FAR);
    expect(outcome).toEqual({ delivered: 0, failed: 1, wakeInSeconds: 1 });
    expect(w.stores.pushQueue.sent).toEqual([{ work, delaySeconds: 1 }]);
    // A second run with the same wake-up pending queues nothing more.
    await runPushWork(w.stores, ports([{ kind: 'failed', reason: '500' }]), work, FAR);
    expect(w.stores.pushQueue.sent).toHaveLength(1);
  });

  it('a round with work left wakes after the pause the endpoint asked for', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(1));
    const work = { topic: w.name, group: w.group, partition: 0 };
    const outcome = await runPushWork(w.stores, ports([{ kind: 'retryLater', retryAfterSeconds: 1200, slowDown: true, reason: '503' }]), work, FAR);
    expect(outcome).toEqual({ delivered: 0, failed: 1, wakeInSeconds: 900 });
    expect(w.stores.pushQueue.sent).toEqual([{ work, delaySeconds: 900 }]);
  });

  it('when every slot is taken, the work is queued again a second later', async () => {
    const w = await world({ group: { delivery: http } });
    await w.produce(bodies(1));
    await w.stores.groupState.claimSlot(w.groupKey, 1, FAR);
    const work = { topic: w.name, group: w.group, partition: 0 };
    const p = ports([{ kind: 'delivered' }]);
    expect(await runPushWork(w.stores, p, work, FAR)).toEqual({ delivered: 0, failed: 0, wakeInSeconds: 1, busy: true });
    expect(p.sent).toEqual([]);
    expect(w.stores.pushQueue.sent).toEqual([{ work, delaySeconds: 1 }]);
  });

  it('work for a gone group, a pull group, or a partition outside the topic does nothing', async () => {
    const w = await world({ partitions: 1 });
    const p = ports([{ kind: 'delivered' }]);
    expect(await runPushWork(w.stores, p, { topic: w.name, group: 'missing', partition: 0 }, FAR)).toEqual({ delivered: 0, failed: 0 });
    expect(await runPushWork(w.stores, p, { topic: w.name, group: w.group, partition: 0 }, FAR)).toEqual({ delivered: 0, failed: 0 });
    const v = await world({ group: { delivery: http } });
    expect(await runPushWork(v.stores, p, { topic: v.name, group: v.group, partition: 1 }, FAR)).toEqual({ delivered: 0, failed: 0 });
    expect(v.stores.groupState.groups.get(v.groupKey)?.slots.size ?? 0).toBe(0);
  });
});

describe('push dispatch', () => {
  it('new segments become one unit of work per push group and partition', async () => {
    const w = await world({ partitions: 3, group: { delivery: http } });
    await putGroup(w.stores, w.name, 'lam', { ...defaults, delivery: lambda });
    await putGroup(w.stores, w.name, 'pulled', defaults);
    const count = await dispatchPush(w.stores, [
      { topicKey: w.topicKey, partition: 0 },
      { topicKey: w.topicKey, partition: 2 },
      { topicKey: w.topicKey, partition: 0 },
      { topicKey: `${w.name}@oldepoch`, partition: 1 },
    ]);
    expect(count).toBe(4);
    expect(w.stores.pushQueue.sent.map((s) => `${s.work.group}/${s.work.partition}/${s.delaySeconds}`).sort()).toEqual(
      [`${w.group}/0/0`, `${w.group}/2/0`, 'lam/0/0', 'lam/2/0'].sort(),
    );
  });

  it('a topic without push groups, or gone, sends nothing', async () => {
    const w = await world({ group: {} });
    expect(await dispatchPush(w.stores, [{ topicKey: w.topicKey, partition: 0 }])).toBe(0);
    expect(await dispatchPush(w.stores, [{ topicKey: 'nope@x', partition: 0 }])).toBe(0);
    expect(w.stores.pushQueue.sent).toEqual([]);
  });

  it('segmentOfLogKey reads a log key', () => {
    expect(segmentOfLogKey('orders@abc#12')).toEqual({ topicKey: 'orders@abc', partition: 12 });
    expect(segmentOfLogKey('#1')).toBeUndefined();
    expect(segmentOfLogKey('orders@abc#x')).toBeUndefined();
    expect(segmentOfLogKey('orders@abc')).toBeUndefined();
  });

  it('signatures verify only with the right secret and body', async () => {
    const { signatureHeaders } = await import('../../../functions/domain/push/signature.js');
    const secret = `whsec_${Buffer.from('k'.repeat(24)).toString('base64')}`;
    const headers = signatureHeaders(secret, 'msg_1', '{"a":1}', T0);
    expect(headers['webhook-timestamp']).toBe(String(T0 / 1000));
    expect(verifySignature(secret, headers, '{"a":1}')).toBe(true);
    expect(verifySignature(secret, headers, '{"a":2}')).toBe(false);
    expect(verifySignature(secret, { ...headers, 'webhook-signature': `v2,${headers['webhook-signature']!.slice(3)}` }, '{"a":1}')).toBe(false);
    expect(verifySignature(secret, { ...headers, 'webhook-signature': `v1,AAAA ${headers['webhook-signature']}` }, '{"a":1}')).toBe(true);
    expect(verifySignature(secret, { ...headers, 'webhook-signature': 'v1,' }, '{"a":1}')).toBe(false);
    expect(verifySignature(secret, {}, '{"a":1}')).toBe(false);
    // A secret without its prefix is the same key.
    expect(verifySignature(secret.slice(6), headers, '{"a":1}')).toBe(true);
  });
});
