import { SluiceError } from '../errors.js';
import { appendAll, type AppendedResult, type Pending } from '../log/append.js';
import { recordBytes, type StoredRecord } from '../messages.js';
import { partitionOfKey, stickyPartition } from '../partitioner.js';
import { topicKeyOf, topicNameOf, type LandingChange, type PendingDelayed, type Stores, type Topic } from '../ports.js';
import { sleep } from '../time.js';
import { requireTopicCached } from '../topics.js';
import { DELAY } from './limits.js';
import { queueDue } from './queueing.js';

/** The header each landing of a repeating message carries: "<n>/<times>" (API.md). */
export const REPEAT_HEADER = 'sluice-repeat';

export interface LandingSummary {
  readonly landed: number;
  /** Cancelled, landed already (a duplicate queue message), of a deleted topic, or not due yet. */
  readonly skipped: number;
}

/** The topic a pending record belongs to, if that incarnation still exists. */
async function liveTopic(stores: Stores, topicKey: string, partitions: number): Promise<Topic | undefined> {
  try {
    const topic = await requireTopicCached(stores, topicNameOf(topicKey), partitions);
    return topicKeyOf(topic) === topicKey ? topic : undefined;
  } catch (error) {
    // Only "no such topic" means deleted; any other failure (throttling, a timeout) must not drop
    // messages: it fails the landing, and SQS delivers the queue message again.
    if (error instanceof SluiceError && error.code === 'TopicNotFound') return undefined;
    throw error;
  }
}

/**
 * Lands the pending messages one delay-queue message names. Each landing is part of the transaction
 * that appends its segment: the pending record is deleted (or, for a repeat, advanced to its next
 * landing) on condition that it is still the version read here, so a duplicate queue message, a
 * retry after a crash, and a cancel racing the landing can never land a message twice or land a
 * cancelled one. Messages not due yet (a repeat's next landing) are left for their own turn.
 */
export async function landDelayed(
  stores: Stores,
  message: { topicKey: string; ids: readonly string[] },
  deadline: number,
): Promise<LandingSummary> {
  const pendings = [...(await stores.delays.getMany(message.topicKey, message.ids)).values()];
  // A message scheduled for a partition that a growth added is valid: a cached copy of the topic from
  // before the growth is read again rather than trusted.
  const topic = await liveTopic(stores, message.topicKey, Math.max(0, ...pendings.map((p) => (p.partition ?? -1) + 1)));
  if (!topic) {
    // Deleted topic (or a re-created one: a new incarnation never gets the old one's messages).
    await Promise.all(pendings.map((p) => stores.delays.drop(p.topicKey, p.id, p.version)));
    return { landed: 0, skipped: message.ids.length };
  }
  const now = Date.now();
  const due = pendings.filter((p) => p.due <= now + DELAY.earlyLandingMs);
  if (due.length === 0) return { landed: 0, skipped: message.ids.length };
  const latest = Math.max(...due.map((p) => p.due));
  // A timer may fire a millisecond early: wait until the clock has really reached the due time.
  while (Date.now() < latest) await sleep(latest - Date.now());

  const sticky = stickyPartition(topic.partitions);
  const maxQueueMs = stores.delayQueue.maxDelaySeconds * 1000;
  const toAppend: Pending[] = due.map((p, index) => {
    const record = landingRecord(p);
    const landing: LandingChange = { topicKey: p.topicKey, id: p.id, version: p.version, ...nextLanding(p, maxQueueMs) };
    const partition = p.partition ?? (p.key !== undefined ? partitionOfKey(topic, p.key) : sticky);
    return {
      index,
      partition: Math.min(partition, topic.partitions - 1),
      movable: p.partition === undefined && p.key === undefined,
      record,
      bytes: recordBytes(record),
      landing,
    };
  });
  const results: (AppendedResult | undefined)[] = new Array(due.length);
  await appendAll(stores, topic, toAppend, results, deadline);

  let landed = 0;
  const nextToQueue: PendingDelayed[] = [];
  for (const [i, p] of due.entries()) {
    const result = results[i];
    if (!result) continue; // cancelled or changed meanwhile
    if (result.duplicate) {
      // Its id was appended already (a producer id appended directly): this pending record is a leftover.
      await stores.delays.drop(p.topicKey, p.id, p.version);
      continue;
    }
    landed++;
    const next = toAppend[i]!.landing!.next;
    if (next?.queued) nextToQueue.push(next);
  }
  // The next landings of repeats that are already within the queue's reach; a crash before this send
  // leaves them to the sweep (they are overdue DELAY.overdueAfterMs after their due time).
  await queueDue(stores, nextToQueue);
  return { landed, skipped: message.ids.length - landed };
}

/** The message as it lands: its id (per landing for repeats), its due time, and the repeat header. */
function landingRecord(p: PendingDelayed): StoredRecord {
  if (!p.repeat) return { ...p.record, i: p.id, d: p.due };
  const headers = { ...(p.record.h ?? {}), [REPEAT_HEADER]: `${p.landing}/${p.repeat.times}` };
  // Each landing is its own message with its own id, so a lookup by id finds each one.
  const id = p.landing === 1 ? p.id : `${p.id}.${p.landing}`;
  return { ...p.record, i: id, d: p.due, h: headers };
}

function nextLanding(p: PendingDelayed, maxQueueMs: number): { next?: PendingDelayed } {
  if (!p.repeat || p.landing >= p.repeat.times) return {};
  const due = p.due + p.repeat.everySeconds * 1000;
  return { next: { ...p, due, landing: p.landing + 1, queued: due - Date.now() <= maxQueueMs, version: p.version + 1 } };
}
