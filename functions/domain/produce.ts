import { LIMITS } from './limits.js';
import { SluiceError, validation } from './errors.js';
import { recordBytes, toRecord, type MessageInput } from './messages.js';
import { partitionOfKey, stickyPartition } from './partitioner.js';
import { topicKeyOf, type Stores, type Topic } from './ports.js';
import { requireTopicCached } from './topics.js';
import { appendAll, type AppendedResult, type Pending } from './log/append.js';
import { prepareDelayed, scheduleDelayed, type ScheduledResult } from './delay/schedule.js';
import { produceInSession, type ProducerSession } from './sessions/produceInSession.js';

export type { AppendedResult } from './log/append.js';
export { forgetTailHints, raceAppendsLikeSeparateProcesses } from './log/append.js';

/** Used when the caller gives no deadline: under the produce function's 10 s timeout. */
const DEFAULT_BUDGET_MS = 8000;

export type ProduceResult = AppendedResult | ScheduledResult;

export async function produce(
  stores: Stores,
  topicName: string,
  inputs: readonly MessageInput[],
  deadline = Date.now() + DEFAULT_BUDGET_MS,
  producer?: ProducerSession,
): Promise<ProduceResult[]> {
  // A message naming a partition the cached copy of the topic does not have (yet) re-reads the topic:
  // the topic may have grown since it was cached.
  const topic = await requireTopicCached(stores, topicName, Math.max(0, ...inputs.map((m) => (m.partition ?? -1) + 1)));
  if (producer) {
    // Sequenced by the session: no producer ids, no delays (checked with the request's schema).
    return produceInSession(stores, topic, route(topic, inputs), producer, deadline);
  }
  const topicKey = topicKeyOf(topic);
  // Delayed messages wait in the delay path (functions/domain/delay/) and land later.
  const delayed: Array<{ index: number; input: MessageInput }> = [];
  const now: MessageInput[] = [];
  const nowIndex: number[] = [];
  inputs.forEach((input, index) => {
    if (input.delaySeconds !== undefined || input.deliverAt !== undefined || input.repeat !== undefined) delayed.push({ index, input });
    else {
      nowIndex.push(index);
      now.push(input);
    }
  });
  const out: (ProduceResult | undefined)[] = new Array(inputs.length);
  // Validate every message before storing anything: a rejected request stores nothing.
  const pending = route(topic, now).map((p) => ({ ...p, index: nowIndex[p.index]! }));
  const prepared = delayed.length > 0 ? prepareDelayed(topic, delayed, Date.now()) : [];
  const results: (AppendedResult | undefined)[] = out as (AppendedResult | undefined)[];

  // Producer ids: a repeat within the request points at its first occurrence; ids already appended
  // (within the de-duplication window) answer with their original place.
  const firstIndexOfId = new Map<string, number>();
  const repeats: Array<{ index: number; first: number }> = [];
  const fresh: Pending[] = [];
  for (const p of pending) {
    const id = p.record.i;
    if (id === undefined) {
      fresh.push(p);
      continue;
    }
    const first = firstIndexOfId.get(id);
    if (first !== undefined) repeats.push({ index: p.index, first });
    else {
      firstIndexOfId.set(id, p.index);
      fresh.push(p);
    }
  }
  const known = firstIndexOfId.size > 0 ? await stores.dedup.getMany(topicKey, [...firstIndexOfId.keys()]) : new Map();
  const toAppend: Pending[] = [];
  for (const p of fresh) {
    const seen = p.record.i !== undefined ? known.get(p.record.i) : undefined;
    if (seen) results[p.index] = { id: seen.id, partition: seen.partition, offset: seen.offset, duplicate: true };
    else toAppend.push(p);
  }

  await appendAll(stores, topic, toAppend, results, deadline);
  for (const { index, first } of repeats) {
    const original = results[first]!;
    results[index] = { id: original.id, partition: original.partition, offset: original.offset, duplicate: true };
  }
  if (prepared.length > 0) {
    for (const r of await scheduleDelayed(stores, topic, prepared)) out[r.index] = r.result;
  }
  return out.map((r) => r!);
}

function route(topic: Topic, inputs: readonly MessageInput[]): Pending[] {
  const sticky = stickyPartition(topic.partitions);
  return inputs.map((input, index) => {
    if (input.partition !== undefined && input.partition >= topic.partitions) {
      throw validation(`messages[${index}].partition must be below the topic's ${topic.partitions} partitions.`);
    }
    const record = toRecord(input);
    const bytes = recordBytes(record);
    if (bytes > LIMITS.maxMessageBytes) {
      throw new SluiceError('PayloadTooLarge', `messages[${index}] is ${bytes} bytes encoded; the limit is ${LIMITS.maxMessageBytes}.`);
    }
    const partition =
      input.partition ?? (input.key !== undefined ? partitionOfKey(topic, input.key) : sticky);
    return { index, partition, record, bytes, movable: input.partition === undefined && input.key === undefined };
  });
}

