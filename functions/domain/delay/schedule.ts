import { randomBytes } from 'node:crypto';
import { LIMITS } from '../limits.js';
import { SluiceError, validation } from '../errors.js';
import { recordBytes, toRecord, type MessageInput, type StoredRecord } from '../messages.js';
import { topicKeyOf, type PendingDelayed, type Stores, type Topic } from '../ports.js';
import { iso, parseTime } from '../time.js';
import { DELAY } from './limits.js';
import { inBatches } from '../concurrency.js';
import { queueDue } from './queueing.js';

export interface ScheduledResult {
  readonly id: string;
  readonly status: 'scheduled';
  readonly deliverAt: string;
  readonly duplicate?: true;
}

/** A duplicate of a producer id that was already appended (not delayed any more). */
export interface AlreadyAppended {
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
  readonly duplicate: true;
}

/** A delayed message of a request, checked and with its due time, not stored yet. */
export type PreparedDelayed = Pick<PendingDelayed, 'id' | 'due' | 'record' | 'key' | 'partition' | 'repeat'> & {
  readonly index: number;
  /** The producer gave the id (only such an id can have been appended before). */
  readonly producerId: boolean;
};

/** Ids of delayed messages without a producer id: "dl-" + due time + random, printable and unique. */
const newDelayId = (due: number) => `dl-${due.toString(36)}-${randomBytes(8).toString('hex')}`;

/**
 * Checks every delayed message of a request and works out its due time, before anything is stored: a
 * rejected request stores nothing. "In the past or now means now"; more than 2 years ahead is a 400.
 */
export function prepareDelayed(topic: Topic, delayed: ReadonlyArray<{ index: number; input: MessageInput }>, now: number): PreparedDelayed[] {
  return delayed.map(({ index, input }) => {
    const field = `messages[${index}]`;
    if (input.delaySeconds !== undefined && input.deliverAt !== undefined) {
      throw validation(`${field}: give delaySeconds or deliverAt, not both.`);
    }
    if (input.partition !== undefined && input.partition >= topic.partitions) {
      throw validation(`${field}.partition must be below the topic's ${topic.partitions} partitions.`);
    }
    let due = now;
    if (input.deliverAt !== undefined) due = Math.max(now, parseTime(input.deliverAt, `${field}.deliverAt`));
    else if (input.delaySeconds !== undefined) due = now + input.delaySeconds * 1000;
    if (due > now + DELAY.maxDelayMs) {
      throw validation(`${field}.deliverAt is more than 2 years ahead (${iso(now + DELAY.maxDelayMs)} at the latest).`);
    }
    const id = input.id ?? newDelayId(due);
    const record: StoredRecord = { ...toRecord(input), i: id };
    const bytes = recordBytes(record);
    if (bytes > LIMITS.maxMessageBytes) {
      throw new SluiceError('PayloadTooLarge', `${field} is ${bytes} bytes encoded; the limit is ${LIMITS.maxMessageBytes}.`);
    }
    return {
      index,
      id,
      producerId: input.id !== undefined,
      due,
      record,
      ...(input.key !== undefined ? { key: input.key } : {}),
      ...(input.partition !== undefined ? { partition: input.partition } : {}),
      ...(input.repeat ? { repeat: input.repeat } : {}),
    };
  });
}

/**
 * Stores delayed messages as pending records (one conditional put each: an id already pending is a
 * duplicate and answers its own due time), then hands those due within the delay queue's reach to it.
 * A producer id that was already appended answers with its original place.
 */
export async function scheduleDelayed(
  stores: Stores,
  topic: Topic,
  prepared: readonly PreparedDelayed[],
): Promise<Array<{ index: number; result: ScheduledResult | AlreadyAppended }>> {
  const topicKey = topicKeyOf(topic);
  const now = Date.now();
  const out: Array<{ index: number; result: ScheduledResult | AlreadyAppended }> = [];
  const firstOfId = new Map<string, PreparedDelayed>();
  const unique: PreparedDelayed[] = [];
  for (const p of prepared) {
    if (firstOfId.has(p.id)) continue;
    firstOfId.set(p.id, p);
    unique.push(p);
  }
  // Only producer ids can have been appended already; a generated "dl-" id is new by construction.
  const producerIds = unique.filter((p) => p.producerId).map((p) => p.id);
  const appended = producerIds.length > 0 ? await stores.dedup.getMany(topicKey, producerIds) : new Map();
  const created: PendingDelayed[] = [];
  const answers = new Map<string, ScheduledResult | AlreadyAppended>();
  const maxQueueMs = stores.delayQueue.maxDelaySeconds * 1000;
  await inBatches(unique, 16, async (p) => {
    const seen = appended.get(p.id);
    if (seen) {
      answers.set(p.id, { id: p.id, partition: seen.partition, offset: seen.offset, duplicate: true });
      return;
    }
    const pending: PendingDelayed = {
      topicKey,
      id: p.id,
      due: p.due,
      record: p.record,
      ...(p.key !== undefined ? { key: p.key } : {}),
      ...(p.partition !== undefined ? { partition: p.partition } : {}),
      ...(p.repeat ? { repeat: p.repeat } : {}),
      landing: 1,
      queued: p.due - now <= maxQueueMs,
      version: 1,
      createdAt: now,
    };
    const existing = await stores.delays.create(pending);
    if (existing) answers.set(p.id, { id: p.id, status: 'scheduled', deliverAt: iso(existing.due), duplicate: true });
    else {
      answers.set(p.id, { id: p.id, status: 'scheduled', deliverAt: iso(p.due) });
      created.push(pending);
    }
  });
  await queueDue(stores, created.filter((p) => p.queued));
  for (const p of prepared) {
    const answer = answers.get(p.id)!;
    const first = firstOfId.get(p.id)!;
    // A repeat of an id within the request points at its first occurrence.
    out.push({ index: p.index, result: first === p ? answer : { ...answer, duplicate: true } });
  }
  return out;
}
