import { randomBytes } from 'node:crypto';
import { SluiceError, validation } from '../errors.js';
import { LIMITS } from '../limits.js';
import { recordBytes, toRecord, type MessageInput } from '../messages.js';
import { partitionOfKey, stickyPartition } from '../partitioner.js';
import { topicKeyOf, type Stores, type Topic } from '../ports.js';
import { requireTopic } from '../topics.js';
import { TX } from './limits.js';
import type { CheckBackTarget, PreparedMessage, Transaction } from './model.js';
import type { TransactionPorts } from './ports.js';
import { segmentPlan } from './segments.js';

export interface PrepareInput {
  readonly messages: ReadonlyArray<MessageInput & { readonly topic: string }>;
  readonly timeoutSeconds?: number;
  readonly checkBack?: CheckBackTarget;
  readonly maxChecks?: number;
  readonly checkIntervalSeconds?: number;
}

export interface Prepared {
  readonly id: string;
  readonly state: 'prepared';
  readonly expiresAt: number;
  /** The deployment's check-back signing secret (check-back by URL only: Lambda invokes are not signed). */
  readonly signingSecret?: string;
}

/** Transaction ids: 128 random bits, URL-safe ("tx" + 22 base64url characters). */
export const newTransactionId = () => `tx${randomBytes(16).toString('base64url')}`;
export const TRANSACTION_ID = /^tx[A-Za-z0-9_-]{22}$/;

/**
 * Prepares a transaction: checks and places every message (its topic incarnation and partition are fixed
 * now, so the commit's size is known and a too-big transaction is refused here, storing nothing), then
 * queues its timeout and stores it. Nothing is visible until commit.
 */
export async function prepareTransaction(stores: Stores, ports: TransactionPorts, input: PrepareInput, now = Date.now()): Promise<Prepared> {
  const timeoutSeconds = input.timeoutSeconds ?? TX.defaultTimeoutSeconds;
  const topics = new Map<string, Topic>();
  for (const name of new Set(input.messages.map((m) => m.topic))) topics.set(name, await requireTopic(stores, name));

  const sticky = new Map<string, number>();
  const seenIds = new Map<string, number>();
  let bytes = 0;
  const messages: PreparedMessage[] = input.messages.map((m, index) => {
    const topic = topics.get(m.topic)!;
    if (m.delaySeconds !== undefined || m.deliverAt !== undefined || m.repeat !== undefined) {
      throw new SluiceError('NotSupported', `messages[${index}]: delaySeconds, deliverAt and repeat are not supported in transactions.`);
    }
    if (m.partition !== undefined && m.partition >= topic.partitions) {
      throw validation(`messages[${index}].partition must be below topic '${topic.name}'s ${topic.partitions} partitions.`);
    }
    if (m.id !== undefined) {
      const first = seenIds.get(`${m.topic}\u0000${m.id}`);
      if (first !== undefined) throw validation(`messages[${index}].id repeats messages[${first}].id in the same topic.`);
      seenIds.set(`${m.topic}\u0000${m.id}`, index);
    }
    const record = toRecord(m);
    const size = recordBytes(record);
    if (size > LIMITS.maxMessageBytes) {
      throw new SluiceError('PayloadTooLarge', `messages[${index}] is ${size} bytes encoded; the limit is ${LIMITS.maxMessageBytes}.`);
    }
    bytes += size;
    // Unkeyed messages of one topic go to one partition: fewer segments, so more room in the commit.
    let partition = m.partition ?? (m.key !== undefined ? partitionOfKey(topic, m.key) : sticky.get(m.topic));
    if (partition === undefined) {
      partition = stickyPartition(topic.partitions);
      sticky.set(m.topic, partition);
    }
    return { topic: topic.name, topicKey: topicKeyOf(topic), partition, record };
  });
  if (bytes > TX.maxPreparedBytes) {
    throw new SluiceError(
      'TransactionTooLarge',
      `The transaction's messages are ${bytes} bytes encoded; a transaction holds ${TX.maxPreparedBytes} (its prepared messages live in one DynamoDB item, 400 KB at most).`,
    );
  }
  const actions = 1 + segmentPlan(messages).length + messages.filter((m) => m.record.i !== undefined).length;
  if (actions > TX.maxActions) {
    throw new SluiceError(
      'TransactionTooLarge',
      `Committing this transaction takes ${actions} writes (one per segment, one per producer id, one for the transaction); ` +
        `a DynamoDB transaction takes ${TX.maxActions}. Use fewer partitions or fewer producer ids.`,
    );
  }

  const id = newTransactionId();
  const tx: Transaction = {
    id,
    state: 'prepared',
    messages,
    createdAt: now,
    expiresAt: now + timeoutSeconds * 1000,
    ...(input.checkBack ? { checkBack: input.checkBack } : {}),
    maxChecks: input.maxChecks ?? TX.defaultMaxChecks,
    checkIntervalSeconds: input.checkIntervalSeconds ?? TX.defaultCheckIntervalSeconds,
    checks: [],
  };
  const signingSecret = input.checkBack && 'url' in input.checkBack ? await ports.transactions.checkBackSecret() : undefined;
  // The timeout is queued before the transaction is stored: a crash between the two leaves a timeout
  // that finds nothing (and is dropped), never a stored transaction that nobody will ever check back.
  await ports.timeouts.send(id, Math.min(timeoutSeconds, ports.timeouts.maxDelaySeconds));
  await ports.transactions.create(tx);
  return { id, state: 'prepared', expiresAt: tx.expiresAt, ...(signingSecret ? { signingSecret } : {}) };
}
