import { randomBytes } from 'node:crypto';
import { LIMITS } from '../limits.js';
import { SluiceError, validation } from '../errors.js';
import { recordBytes, toRecord, type MessageInput, type StoredRecord } from '../messages.js';
import { partitionOfKey } from '../partitioner.js';
import { topicKeyOf, type PendingDelayed, type PendingGroup, type PendingItem, type Stores, type Topic } from '../ports.js';
import { iso, parseTime } from '../time.js';
import { DELAY } from './limits.js';
import { inBatches } from '../concurrency.js';
import { queueDue } from './queueing.js';
import { memberId, newGroupId, parseMemberId } from './groups.js';
import { memberBytes } from '../log/landings.js';

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
  /** The producer gave the id (only such an id can have been appended before); else the id is a group member's. */
  readonly producerId: boolean;
};

/**
 * Ids of delayed messages without a producer id, as they were before groups: "dl-" + due time + random.
 * Kept for records of that form (they land, list and cancel as they did); new id-less messages are members of groups.
 */
export const newDelayId = (due: number) => `dl-${due.toString(36)}-${randomBytes(8).toString('hex')}`;

/**
 * Checks every delayed message of a request and works out its due time, before anything is stored: a
 * rejected request stores nothing. "In the past or now means now"; more than 2 years ahead is a 400.
 */
export function prepareDelayed(topic: Topic, delayed: ReadonlyArray<{ index: number; input: MessageInput }>, now: number): PreparedDelayed[] {
  // Id-less messages due at the same moment, repeating alike and bound for the same partition share a
  // group, up to DELAY.maxGroupBytes of records each.
  const groups = new Map<string, { id: string; count: number; bytes: number }>();
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
    let group: { id: string; member: number } | undefined;
    if (input.id === undefined) {
      const target = input.partition ?? (input.key !== undefined ? partitionOfKey(topic, input.key, now) : 'any');
      const key = `${due}|${input.repeat ? `${input.repeat.everySeconds}x${input.repeat.times}` : '-'}|${target}`;
      const bytes = memberBytes(toRecord(input));
      let open = groups.get(key);
      if (!open || open.bytes + bytes > DELAY.maxGroupBytes) {
        open = { id: newGroupId(due), count: 0, bytes: 0 };
        groups.set(key, open);
      }
      group = { id: open.id, member: open.count };
      open.count += 1;
      open.bytes += bytes;
    }
    const id = input.id ?? memberId(group!.id, group!.member);
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
 * Stores delayed messages as pending records, then hands those due within the delay queue's reach to it:
 * a message with a producer id is one conditional put (an id already pending is a duplicate and answers
 * its own due time; one already appended answers with its original place); id-less messages are stored
 * as groups, one put per group (functions/domain/delay/groups.ts).
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
  // Only producer ids can have been appended already; a generated id is new by construction.
  const producerIds = unique.filter((p) => p.producerId).map((p) => p.id);
  const appended = producerIds.length > 0 ? await stores.dedup.getMany(topicKey, producerIds) : new Map();
  const created: PendingItem[] = [];
  const answers = new Map<string, ScheduledResult | AlreadyAppended>();
  const maxQueueMs = stores.delayQueue.maxDelaySeconds * 1000;
  const groups = new Map<string, { due: number; repeat?: PendingGroup['repeat']; members: Array<PendingGroup['members'][number]> }>();
  const singles: PreparedDelayed[] = [];
  for (const p of unique) {
    // An id-less message's id names its group (prepareDelayed).
    const member = p.producerId ? undefined : parseMemberId(p.id);
    if (!member) {
      singles.push(p);
      continue;
    }
    const g = groups.get(member.group) ?? { due: p.due, ...(p.repeat ? { repeat: p.repeat } : {}), members: [] };
    // The member's record without its id: the group's id and the index make it.
    const { i: _id, ...record } = p.record;
    g.members[member.member] = p.partition !== undefined ? { record, partition: p.partition } : { record };
    groups.set(member.group, g);
  }
  const work: Array<() => Promise<void>> = [];
  for (const p of singles) {
    work.push(async () => {
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
  }
  for (const [id, g] of groups) {
    const group: PendingGroup = {
      topicKey,
      id,
      due: g.due,
      members: g.members,
      cancelled: [],
      landed: [],
      positions: '',
      ...(g.repeat ? { repeat: g.repeat } : {}),
      landing: 1,
      queued: g.due - now <= maxQueueMs,
      version: 1,
      createdAt: now,
    };
    work.push(async () => {
      await stores.delays.createGroup(group);
      created.push(group);
      g.members.forEach((_, member) => answers.set(memberId(id, member), { id: memberId(id, member), status: 'scheduled', deliverAt: iso(g.due) }));
    });
  }
  await inBatches(work, 16, (run) => run());
  await queueDue(stores, created.filter((p) => p.queued));
  for (const p of prepared) {
    const answer = answers.get(p.id)!;
    const first = firstOfId.get(p.id)!;
    // A repeat of an id within the request points at its first occurrence.
    out.push({ index: p.index, result: first === p ? answer : { ...answer, duplicate: true } });
  }
  return out;
}
