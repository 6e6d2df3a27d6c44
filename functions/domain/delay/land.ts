import { SluiceError } from '../errors.js';
import { appendAll, type AppendedResult, type Pending } from '../log/append.js';
import { recordBytes, type StoredRecord } from '../messages.js';
import { partitionOfKey, stickyPartition } from '../partitioner.js';
import {
  isGroup,
  topicKeyOf,
  topicNameOf,
  type LandingChange,
  type PendingDelayed,
  type PendingGroup,
  type PendingItem,
  type Stores,
  type Topic,
} from '../ports.js';
import { sleep } from '../time.js';
import { requireTopicCached } from '../topics.js';
import { landedMemberId, liveMembers } from './groups.js';
import { GroupLandingPlan } from '../log/landings.js';
import { DELAY } from './limits.js';
import { queueDue } from './queueing.js';

/** The header each landing of a repeating message carries: "<n>/<times>" (API.md). */
export const REPEAT_HEADER = 'sluice-repeat';

export interface LandingSummary {
  readonly landed: number;
  /** Cancelled, landed already (a duplicate queue message), of a deleted topic, or not due yet. */
  readonly skipped: number;
}

/**
 * A group whose landing failed its condition (a member cancelled meanwhile, a duplicate landing) is read
 * again and landed again, this many times at most in one landing; then the queue delivers it again.
 */
const GROUP_ROUNDS = 20;

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

/** The highest partition a pending item names (+1), so a topic cached before a growth is read again. */
const partitionsNamed = (p: PendingItem) =>
  isGroup(p) ? Math.max(0, ...p.members.map((m) => (m.partition ?? -1) + 1)) : (p.partition ?? -1) + 1;

/**
 * Lands the pending messages one delay-queue message names. Each landing is part of the transaction
 * that appends its segment: the pending record is deleted (or, for a repeat, advanced to its next
 * landing) on condition that it is still the version read here, so a duplicate queue message, a
 * retry after a crash, and a cancel racing the landing can never land a message twice or land a
 * cancelled one. A group lands the same way, all its members in one segment's transaction with one
 * conditional change of the group's item; when that condition fails (a member was cancelled meanwhile),
 * the group is read again and what is left of it lands. Messages not due yet (a repeat's next landing)
 * are left for their own turn.
 */
export async function landDelayed(
  stores: Stores,
  message: { topicKey: string; ids: readonly string[] },
  deadline: number,
): Promise<LandingSummary> {
  const found = await stores.delays.getMany(message.topicKey, message.ids);
  const items = [...found.values()];
  // Everything named counts: a group by its members, an id not found (landed, cancelled) as one.
  const named = new Set(message.ids).size - found.size + items.reduce((n, p) => n + (isGroup(p) ? p.members.length : 1), 0);
  // A message scheduled for a partition that a growth added is valid: a cached copy of the topic from
  // before the growth is read again rather than trusted.
  const topic = await liveTopic(stores, message.topicKey, Math.max(0, ...items.map(partitionsNamed)));
  if (!topic) {
    // Deleted topic (or a re-created one: a new incarnation never gets the old one's messages).
    await Promise.all(items.map((p) => stores.delays.drop(p.topicKey, p.id, p.version)));
    return { landed: 0, skipped: named };
  }
  const now = Date.now();
  const due = items.filter((p) => p.due <= now + DELAY.earlyLandingMs);
  if (due.length === 0) return { landed: 0, skipped: named };
  const latest = Math.max(...due.map((p) => p.due));
  // A timer may fire a millisecond early: wait until the clock has really reached the due time.
  while (Date.now() < latest) await sleep(latest - Date.now());

  const sticky = stickyPartition(topic.partitions);
  const nextToQueue: PendingItem[] = [];
  let landed = await landMessages(stores, topic, due.filter((p): p is PendingDelayed => !isGroup(p)), sticky, deadline, nextToQueue);
  let groups = due.filter(isGroup);
  const landingOf = new Map(groups.map((g) => [g.id, g.landing]));
  for (let round = 1; groups.length > 0; round++) {
    const outcome = await landGroups(stores, topic, groups, sticky, deadline, nextToQueue);
    landed += outcome.landed;
    if (outcome.unsettled.length === 0) break;
    if (round >= GROUP_ROUNDS || Date.now() >= deadline) {
      // What landed stays landed; the queue delivers the message again for the rest.
      throw new SluiceError('Throttled', `Delayed groups of '${topic.name}' kept changing while landing; landing them again later.`);
    }
    // A member cancelled, or another landing (a duplicate queue message) moved the group on: read it
    // again and land what is left of this landing (nothing, when the group moved on to a later one).
    const again = await stores.delays.getMany(topicKeyOf(topic), outcome.unsettled);
    groups = [...again.values()].filter(isGroup).filter((g) => g.landing === landingOf.get(g.id));
  }
  // The next landings of repeats that are already within the queue's reach; a crash before this send
  // leaves them to the sweep (they are overdue DELAY.overdueAfterMs after their due time).
  await queueDue(stores, nextToQueue);
  return { landed, skipped: Math.max(0, named - landed) };
}

/** Pending messages stored one per item (producer ids, and records written before groups existed). */
async function landMessages(
  stores: Stores,
  topic: Topic,
  due: readonly PendingDelayed[],
  sticky: number,
  deadline: number,
  nextToQueue: PendingItem[],
): Promise<number> {
  if (due.length === 0) return 0;
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
  return landed;
}

/**
 * One round of landing groups: every member left to land in the group's current landing, each group with
 * a plan its segments share. Returns how many landed and the groups whose landing did not complete
 * (their condition failed: read them again).
 */
async function landGroups(
  stores: Stores,
  topic: Topic,
  groups: readonly PendingGroup[],
  sticky: number,
  deadline: number,
  nextToQueue: PendingItem[],
): Promise<{ landed: number; unsettled: string[] }> {
  const maxQueueMs = stores.delayQueue.maxDelaySeconds * 1000;
  const toAppend: Pending[] = [];
  const plans: GroupLandingPlan[] = [];
  for (const g of groups) {
    const live = liveMembers(g);
    const landedBefore = new Set(g.landed);
    const toLand = live.filter((m) => !landedBefore.has(m));
    const nextDue = g.due + (g.repeat?.everySeconds ?? 0) * 1000;
    // A cancelled member stops; a group with no member left has no next landing.
    const next = g.repeat && g.landing < g.repeat.times && live.length > 0 ? { due: nextDue, landing: g.landing + 1, queued: nextDue - Date.now() <= maxQueueMs } : undefined;
    if (toLand.length === 0) {
      // Nothing left of this landing: every member cancelled, or the rest landed before a cancel.
      if (next) {
        await stores.delays.advanceGroup(g.topicKey, g.id, g.version, next);
        if (next.queued) nextToQueue.push({ ...g, ...next, landed: [], positions: '', version: g.version + 1 });
      } else await stores.delays.drop(g.topicKey, g.id, g.version);
      continue;
    }
    const plan = new GroupLandingPlan(g, toLand, next);
    plans.push(plan);
    for (const member of toLand) {
      const m = g.members[member]!;
      const record = memberRecord(g, member);
      const key = m.record.k;
      const partition = m.partition ?? (key !== undefined ? partitionOfKey(topic, key) : sticky);
      toAppend.push({
        index: toAppend.length,
        partition: Math.min(partition, topic.partitions - 1),
        movable: m.partition === undefined && key === undefined,
        record,
        bytes: recordBytes(record),
        member: { plan, member },
      });
    }
  }
  if (toAppend.length === 0) return { landed: 0, unsettled: [] };
  const results: (AppendedResult | undefined)[] = new Array(toAppend.length);
  // A group lands in one partition, unless the topic grew since it was produced and its keys route to
  // several now: then its partitions take turns (waves), each transaction at the version the previous
  // one wrote, instead of racing each other for the group's condition.
  const waves: Pending[][] = [];
  const partitionsOf = new Map<GroupLandingPlan, number[]>();
  for (const p of toAppend) {
    const plan = p.member!.plan;
    const seen = partitionsOf.get(plan) ?? [];
    if (!p.movable && !seen.includes(p.partition)) seen.push(p.partition);
    partitionsOf.set(plan, seen);
    const wave = p.movable ? 0 : seen.indexOf(p.partition);
    (waves[wave] ??= []).push(p);
  }
  for (const wave of waves) await appendAll(stores, topic, wave, results, deadline);
  const landed = results.filter((r) => r !== undefined).length;
  const unsettled: string[] = [];
  for (const plan of plans) {
    if (plan.toLand.size > 0) unsettled.push(plan.id);
    else if (plan.next?.queued) nextToQueue.push({ ...plan.group, ...plan.next, landed: [], positions: '', version: plan.version });
  }
  return { landed, unsettled };
}

/** A group member as it lands: its id for this landing, its due time, and the repeat header. */
function memberRecord(g: PendingGroup, member: number): StoredRecord {
  const { record } = g.members[member]!;
  const id = landedMemberId(g.id, member, g.landing);
  if (!g.repeat) return { ...record, i: id, d: g.due };
  return { ...record, i: id, d: g.due, h: { ...(record.h ?? {}), [REPEAT_HEADER]: `${g.landing}/${g.repeat.times}` } };
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
