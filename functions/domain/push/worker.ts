import { createHash } from 'node:crypto';
import { ack, leaseForPush, nack, type Delivery } from '../groups/consume.js';
import { requireGroupCached } from '../groups/groups.js';
import { backoffSeconds } from '../groups/progress.js';
import { groupKeyOf, type DeliverySetting, type Stores } from '../ports.js';
import type { PushVerdict } from './reply.js';

/** How a push reaches its endpoint: the HTTP and Lambda adapters (functions/adapters/). */
export interface PushPorts {
  http(
    target: { url: string; headers?: Readonly<Record<string, string>>; timeoutSeconds: number; signingSecret: string },
    batchId: string,
    body: string,
  ): Promise<PushVerdict>;
  lambda(functionArn: string, timeoutSeconds: number, payload: string): Promise<PushVerdict>;
}

export interface PushRound {
  readonly delivered: number;
  readonly failed: number;
  /** Stopped with work left (deadline, or the endpoint asked to slow down): run again after `resumeAfterMs`. */
  readonly more: boolean;
  readonly resumeAfterMs?: number;
}

/** A lease outlives the endpoint's timeout by this much, so a slow answer is settled before the lease ends. */
const LEASE_MARGIN_SECONDS = 5;
/** Time kept back at the end of a round for the acks and nacks of the last batch. */
const SETTLE_MARGIN_MS = 2000;
/** After a slow-down signal, this partition's round pauses for this long. */
const SLOW_DOWN_MS = 1000;

/** What a push endpoint receives per message: as a pull, without the receipt (Sluice settles it). */
function pushedMessage(d: Delivery) {
  return {
    id: d.id,
    partition: d.partition,
    offset: d.offset,
    ...(d.bodyBase64 !== undefined ? { bodyBase64: d.bodyBase64 } : { body: d.body }),
    key: d.key ?? null,
    tags: d.tags,
    headers: d.headers,
    producedAt: d.producedAt,
    ...(d.deliverAt !== undefined ? { deliverAt: d.deliverAt } : {}),
    deliveryCount: d.deliveryCount,
  };
}

/**
 * The Standard Webhooks message id of a batch: the same for every retry of the same messages, so an
 * endpoint can de-duplicate a batch it already processed when only its reply was lost.
 */
const batchIdOf = (groupKey: string, batch: readonly Delivery[]) =>
  `msg_${createHash('sha256')
    .update(`${groupKey}/${batch.map((d) => `${d.partition}.${d.offset}`).join(',')}`)
    .digest('hex')
    .slice(0, 32)}`;

/** Exponential backoff (1 s, 2 s, 4 s … capped) with full jitter, so failing batches do not retry in step. */
const jittered = (deliveries: number) => backoffSeconds(deliveries) * (0.5 + Math.random() / 2);

/**
 * Delivers one partition of a push group until it has nothing due, its deadline nears, or the endpoint
 * asks to slow down. Each batch is leased exactly as a pull leases (so invariants 2 and 3 hold for push
 * as for pull: an ordered group has one batch per partition out at a time, a worker that dies
 * mid-delivery leaves leases that expire and are delivered again), then acked or nacked by the verdict.
 */
export async function pushPartition(
  stores: Stores,
  ports: PushPorts,
  topicName: string,
  groupName: string,
  partition: number,
  deadline: number,
): Promise<PushRound> {
  let delivered = 0;
  let failed = 0;
  for (;;) {
    const { topic, group } = await requireGroupCached(stores, topicName, groupName);
    const delivery: DeliverySetting | undefined = group.delivery;
    if (!delivery || delivery.type === 'pull') return { delivered, failed, more: false };
    if (Date.now() + delivery.timeoutSeconds * 1000 + SETTLE_MARGIN_MS > deadline) return { delivered, failed, more: true, resumeAfterMs: 0 };
    const batch = await leaseForPush(stores, topic, group, partition, delivery.batchSize, delivery.timeoutSeconds + LEASE_MARGIN_SECONDS, deadline);
    if (batch.length === 0) return { delivered, failed, more: false };
    const groupKey = groupKeyOf(topic, group.name);
    const body = JSON.stringify({ topic: topic.name, group: group.name, messages: batch.map(pushedMessage) });
    let verdict: PushVerdict;
    if (delivery.type === 'http') {
      const signingSecret = await stores.secrets.get(groupKey);
      verdict = signingSecret
        ? await ports.http({ ...delivery, signingSecret }, batchIdOf(groupKey, batch), body)
        : { kind: 'failed', reason: 'the group has no signing secret (PUT the group again to create one)' };
    } else {
      verdict = await ports.lambda(delivery.functionArn, delivery.timeoutSeconds, body);
    }
    const outcome = await settleBatch(stores, topic.name, group.name, group.maxDeliveries, batch, verdict);
    delivered += outcome.delivered;
    failed += outcome.failed;
    if (verdict.kind === 'retryLater' || (verdict.kind === 'delivered' && verdict.slowDown)) {
      const pause = verdict.kind === 'retryLater' ? verdict.retryAfterSeconds * 1000 : SLOW_DOWN_MS;
      return { delivered, failed, more: true, resumeAfterMs: Math.max(pause, SLOW_DOWN_MS) };
    }
  }
}

async function settleBatch(
  stores: Stores,
  topicName: string,
  groupName: string,
  maxDeliveries: number,
  batch: readonly Delivery[],
  verdict: PushVerdict,
): Promise<{ delivered: number; failed: number }> {
  const receiptsOf = (list: readonly Delivery[]) => list.map((d) => d.receipt);
  switch (verdict.kind) {
    case 'delivered':
      await ack(stores, topicName, groupName, receiptsOf(batch));
      return { delivered: batch.length, failed: 0 };
    case 'partial': {
      const failedIds = new Set(verdict.failedIds);
      const bad = batch.filter((d) => failedIds.has(d.id));
      const good = batch.filter((d) => !failedIds.has(d.id));
      if (good.length > 0) await ack(stores, topicName, groupName, receiptsOf(good));
      await nackEach(stores, topicName, groupName, bad);
      return { delivered: good.length, failed: bad.length };
    }
    case 'failed':
      await nackEach(stores, topicName, groupName, batch);
      return { delivered: 0, failed: batch.length };
    case 'retryLater':
      await nack(stores, topicName, groupName, receiptsOf(batch), verdict.retryAfterSeconds);
      return { delivered: 0, failed: batch.length };
    case 'unprocessable':
      // Straight to the dead letters: the delivery count is raised to maxDeliveries, and the next lease
      // of the partition moves them (in the same transaction as its progress write).
      await nack(stores, topicName, groupName, receiptsOf(batch), 0, maxDeliveries);
      return { delivered: 0, failed: batch.length };
  }
}

/** Nacks each message with its own jittered backoff (their delivery counts may differ). */
async function nackEach(stores: Stores, topicName: string, groupName: string, list: readonly Delivery[]) {
  const byDelay = new Map<number, string[]>();
  for (const d of list) {
    const delay = Math.round(jittered(d.deliveryCount) * 10) / 10;
    byDelay.set(delay, [...(byDelay.get(delay) ?? []), d.receipt]);
  }
  for (const [delay, receipts] of byDelay) await nack(stores, topicName, groupName, receipts, delay);
}
