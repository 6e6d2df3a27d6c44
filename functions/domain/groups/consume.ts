import { SluiceError, validation } from '../errors.js';
import { EXPRESSION_LIMITS } from './expression.js';
import { matchesFilter, screenMessages, type GroupRules } from './filter.js';
import { formatReceipt, parseReceipt, type Receipt } from '../ids.js';
import { LIMITS } from '../limits.js';
import { OffsetReader, readFrom, replyBytes } from '../log/logReader.js';
import type { LogMessage } from '../messages.js';
import { groupKeyOf, topicKeyOf, VersionConflict, type DeadLetter, type Group, type Stores, type Topic } from '../ports.js';
import { applyAcks, applyNacks, applyPull, freshProgress, planPull, type InFlight, type PartitionProgress, type SettleResult } from './progress.js';
import { requireGroupCached, retryOnConflict, startOffsetOf } from './groups.js';
import { knownProgress, readProgress, writeProgress } from './progressCache.js';
import { cachedLog } from './segmentCache.js';
import { sleep } from '../time.js';

export interface PullRequest {
  readonly max: number;
  readonly waitSeconds: number;
  readonly visibilitySeconds?: number;
  readonly consumerId?: string;
  /**
   * Receipts to acknowledge before pulling (a consumer loop's previous batch): one call per batch instead
   * of two, and on each partition the acks and the new leases are one progress write.
   */
  readonly ackReceipts?: readonly string[];
}

/** What a pull with `ackReceipts` settled (the same shape an ack answers). */
export interface PullAndAckResult {
  readonly deliveries: Delivery[];
  readonly acks?: SettleSummary;
}

/** Acks waiting for their partition's progress write in the first sweep of a pull, by partition. */
type PendingAcks = Map<number, Array<{ receipt: Receipt; text: string }>>;
interface AckTally {
  settled: number;
  readonly stale: string[];
}

export interface Delivery extends LogMessage {
  readonly deliveryCount: number;
  readonly receipt: string;
}

/** Long-poll cadence: first re-check soon, then back off to bound idle reads. */
const FIRST_POLL_DELAY_MS = 50;
const MAX_POLL_DELAY_MS = 500;
/** Conditional-write races one partition may lose in the second sweep of a pull before the pull gives up on it. */
const RETRY_ATTEMPTS = 3;
/** Writes an ack or nack tries on the item its lost race returned, before it backs off and reads again. */
const IMMEDIATE_SETTLE_TRIES = 3;
type PartitionPull = Delivery[] | 'contended';

export async function pull(
  stores: Stores,
  topicName: string,
  groupName: string,
  request: PullRequest,
  deadline = Date.now() + (request.waitSeconds + 8) * 1000,
): Promise<Delivery[]> {
  return (await pullAndAck(stores, topicName, groupName, request, deadline)).deliveries;
}

/**
 * A pull that first acknowledges `request.ackReceipts`. The acks of a partition the first sweep visits
 * are applied to the progress it reads and written with its new leases (one conditional write); the
 * acks of partitions it does not reach are settled as an ack call would, before the pull answers.
 */
export async function pullAndAck(
  stores: Stores,
  topicName: string,
  groupName: string,
  request: PullRequest,
  deadline = Date.now() + (request.waitSeconds + 8) * 1000,
): Promise<PullAndAckResult> {
  const ackTexts = [...new Set(request.ackReceipts ?? [])];
  const ackReceipts = parseReceipts(ackTexts);
  let { topic, group } = await requireGroupCached(stores, topicName, groupName, Math.max(0, ...ackReceipts.map((r) => r.partition + 1)));
  if (group.delivery && group.delivery.type !== 'pull') {
    throw new SluiceError('Conflict', `Group '${group.name}' is delivered by ${group.delivery.type} push; it cannot be pulled.`);
  }
  if (group.mode === 'broadcast' && !request.consumerId) {
    throw validation('consumerId is required to pull from a broadcast group.');
  }
  // Acks ride along with the first sweep's progress writes (leased groups); the rest are settled after it.
  const tally: AckTally = { settled: 0, stale: [] };
  let pending: PendingAcks | undefined;
  if (ackReceipts.length > 0) {
    if (group.mode === 'broadcast') {
      const done = await settle(stores, topicName, groupName, ackTexts, applyAcks);
      tally.settled += done.settled;
      tally.stale.push(...done.stale);
    } else {
      pending = new Map();
      ackReceipts.forEach((receipt, i) => {
        if (receipt.partition >= topic.partitions) tally.stale.push(ackTexts[i]!);
        else pending!.set(receipt.partition, [...(pending!.get(receipt.partition) ?? []), { receipt, text: ackTexts[i]! }]);
      });
    }
  }
  const settleLeftover = async () => {
    if (!pending || pending.size === 0) return;
    const left = [...pending.values()].flat().map((a) => a.text);
    pending.clear();
    const done = await settle(stores, topicName, groupName, left, applyAcks);
    tally.settled += done.settled;
    tally.stale.push(...done.stale);
  };
  const answer = (deliveries: Delivery[]): PullAndAckResult =>
    ackReceipts.length > 0 ? { deliveries, acks: { settled: tally.settled, stale: tally.stale } } : { deliveries };
  // A long poll ends when asked, and always early enough to answer within the function's timeout.
  const waitUntil = Math.min(Date.now() + request.waitSeconds * 1000, deadline - 1000);
  let delay = FIRST_POLL_DELAY_MS;
  for (;;) {
    // Expression evaluation of one sweep is bounded too, and ends with the poll.
    const evaluateUntil = Math.min(Date.now() + EXPRESSION_LIMITS.batchBudgetMs, deadline - 1000);
    const sweep = { passedOver: 0 };
    let deliveries: Delivery[];
    try {
      deliveries = await pullOnce(stores, topic, group, request, evaluateUntil, sweep, pending, tally);
    } finally {
      // Acks are never left unsettled behind a failed or empty sweep.
      await settleLeftover();
    }
    const left = waitUntil - Date.now();
    if (deliveries.length > 0 || left <= 0) return answer(deliveries);
    if (sweep.passedOver > 0) {
      // The sweep only filtered out (or dead-lettered) messages: there may be matching ones right
      // behind them, so look again at once instead of backing off.
      delay = FIRST_POLL_DELAY_MS;
    } else {
      await sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, MAX_POLL_DELAY_MS);
    }
    // Re-check the group (cached for a second): a long poll stops at a deleted topic or group instead
    // of polling, and writing progress for, an incarnation that is gone; settings changes apply at once.
    ({ topic, group } = await requireGroupCached(stores, topicName, groupName));
  }
}

/**
 * One sweep over the partitions. Each partition's lease is its own commit, so a partition that fails
 * (throttling, a timeout, a bad item) must not throw away what other partitions already committed:
 * those messages are returned, and the failing partition is skipped until the next pull. Only when
 * nothing was committed does the error reach the caller (nothing was leased, so a retry is safe).
 */
async function pullOnce(
  stores: Stores,
  topic: Topic,
  group: Group,
  request: PullRequest,
  evaluateUntil: number,
  sweep: SweepCount,
  acks?: PendingAcks,
  tally?: AckTally,
): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  let bytes = 0;
  let firstError: unknown;
  const failed: number[] = [];
  // Start at a random partition so that concurrent consumers spread out instead of racing on one item.
  // A partition another consumer is busy with is skipped at first and retried after the others.
  const first = Math.floor(Math.random() * topic.partitions);
  const byChance = Array.from({ length: topic.partitions }, (_, i) => (first + i) % topic.partitions);
  // Partitions with acks to apply come first: a consumer's previous batch came from them, so the acks and
  // the next leases are one progress write, and a consumer stays on the partition it was served by
  // instead of meeting the other consumers on a random one (each lost race costs a read and a write).
  const order = acks && acks.size > 0 ? [...byChance.filter((p) => acks.has(p)), ...byChance.filter((p) => !acks.has(p))] : byChance;
  const contended: number[] = [];
  const visit = async (partition: number, attempts: number): Promise<PartitionPull> => {
    const budget = { count: request.max - deliveries.length, bytes: LIMITS.maxReplyMessageBytes - bytes, evaluateUntil, sweep };
    try {
      return group.mode === 'broadcast'
        ? await pullBroadcastPartition(stores, topic, group, request.consumerId!, partition, budget, attempts)
        : await pullLeasedPartition(stores, topic, group, partition, budget, request.visibilitySeconds ?? group.visibilitySeconds, attempts, acks, tally);
    } catch (error) {
      firstError ??= error;
      failed.push(partition);
      return [];
    }
  };
  const take = (got: Delivery[]) => {
    deliveries.push(...got);
    for (const d of got) bytes += replyBytes(d);
  };
  const full = () => deliveries.length >= request.max || bytes >= LIMITS.maxReplyMessageBytes;
  // A full reply still visits the partitions it has acks for: their acks go with an empty lease write.
  for (const partition of order) {
    if (full() && (acks?.size ?? 0) === 0) break;
    if (full() && !acks?.has(partition)) continue;
    const got = await visit(partition, 1);
    if (got === 'contended') contended.push(partition);
    else take(got);
  }
  for (const partition of contended) {
    // As in the first sweep, a full reply still visits a partition it has acks for (an acks-only write
    // planned on the item the lost race returned), rather than leaving them to a separate read and write.
    if (full() && !acks?.has(partition)) continue;
    const got = await visit(partition, RETRY_ATTEMPTS);
    if (got !== 'contended') take(got);
  }
  if (firstError !== undefined) {
    if (deliveries.length === 0) throw firstError;
    logFailedPartitions(topic, group, failed, firstError);
  }
  return deliveries;
}

function logFailedPartitions(topic: Topic, group: Group, partitions: readonly number[], error: unknown) {
  console.warn(
    JSON.stringify({
      level: 'WARN',
      message: 'pull skipped a failing partition and returned what other partitions committed',
      topic: topic.name,
      group: group.name,
      partitions,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    }),
  );
}

interface PullBudget {
  readonly count: number;
  readonly bytes: number;
  /** No expression evaluation starts after this (epoch ms): see EXPRESSION_LIMITS.batchBudgetMs. */
  readonly evaluateUntil: number;
  readonly sweep: SweepCount;
}

/** Messages a sweep committed past without delivering them (filtered out, or dead-lettered by an expression). */
interface SweepCount {
  passedOver: number;
}

/** What a pull takes of a batch of messages after the group's filter and transform (screenMessages). */
interface Screened {
  /** Messages to deliver, transformed, in order. */
  readonly deliver: LogMessage[];
  /** Messages filtered out: acknowledged without delivery. */
  readonly skipped: LogMessage[];
  /** Messages whose filter expression or transform failed. */
  readonly dead: Array<{ readonly message: LogMessage; readonly reason: string }>;
  /** How many of the batch were decided (a prefix); the rest are left for a later pull. */
  readonly count: number;
  /** Reply bytes of `deliver`. */
  readonly bytes: number;
}

/**
 * Applies the group's rules to `messages` and takes a prefix of the verdicts that fits the reply's
 * byte budget (transformed bodies counted as delivered), at most `maxDead` dead letters (they share
 * the progress write's transaction, LIMITS.maxDeadLettersPerPull), and the evaluation budget.
 */
async function screenWithin(
  rules: GroupRules,
  messages: readonly LogMessage[],
  limits: { readonly bytes: number; readonly maxDead: number; readonly evaluateUntil: number },
): Promise<Screened> {
  const verdicts = await screenMessages(rules, messages, { evaluateUntil: limits.evaluateUntil });
  const taken: Screened = { deliver: [], skipped: [], dead: [], count: 0, bytes: 0 };
  let bytes = 0;
  let count = 0;
  for (const verdict of verdicts) {
    const message = messages[count]!;
    if (verdict.action === 'deliver') {
      const size = replyBytes(verdict.message);
      if (bytes + size > limits.bytes) break; // a reply must fit 6 MB: the rest waits for the next pull
      bytes += size;
      taken.deliver.push(verdict.message);
    } else if (verdict.action === 'skip') {
      taken.skipped.push(message);
    } else {
      if (taken.dead.length >= limits.maxDead) break;
      taken.dead.push({ message, reason: verdict.reason });
    }
    count++;
  }
  return { ...taken, count, bytes };
}

/** Tag-filtered messages will not be returned: they cost nothing of a read's byte budget (an estimate when there is a transform). */
const estimatedReplyBytes = (group: Group) => (m: LogMessage) => (matchesFilter(group.filter, m.tags) ? replyBytes(m) : 0);

async function pullLeasedPartition(
  stores: Stores,
  topic: Topic,
  group: Group,
  partition: number,
  budget: PullBudget,
  visibilitySeconds: number,
  attempts: number,
  acks?: PendingAcks,
  tally?: AckTally,
): Promise<PartitionPull> {
  const groupKey = groupKeyOf(topic, group.name);
  const topicKey = topicKeyOf(topic);
  // Segments this process read are read from here again (segmentCache.ts).
  const log = cachedLog(stores.log, topic.retentionHours);
  const mine = acks?.get(partition);
  // The item this process knows (progressCache.ts) is planned on without a read, once per visit: a write
  // checks it, and a plan that writes nothing is confirmed by a read first.
  let useKnown = true;
  /** What the read that did not confirm the known item showed: the same attempt plans on it. */
  let reread: { readonly progress: PartitionProgress | undefined } | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const now = Date.now();
    // The first look is eventually consistent (half price): a stale answer fails the versioned write
    // below, and the retry reads strongly. At worst a stale "nothing to do" delays work to the next poll.
    // With acks to apply the read is strong: an ack's answer must not rest on a stale replica.
    const strong = attempt > 0 || mine !== undefined;
    const known = useKnown ? knownProgress(stores.groupState, groupKey, partition) : undefined;
    const read = known ? undefined : (reread ?? { progress: await readProgress(stores.groupState, groupKey, partition, strong) });
    reread = undefined;
    const stored = known ?? read?.progress ?? freshProgress(startOffsetOf(group, partition));
    const acked = mine ? applyAcks(stored, mine.map((a) => a.receipt), now) : undefined;
    const progress = acked?.next ?? stored;
    /**
     * Writes `next` (acks and leases) as the version after the stored one; false when someone else wrote
     * first, or when a plan on the known item that writes nothing is not confirmed by a read (then the
     * same attempt runs again on what was read).
     */
    const write = async (next: PartitionProgress, extra?: Parameters<Stores['groupState']['putProgress']>[3]) => {
      if (next === stored) {
        if (!known) return true;
        const seen = await readProgress(stores.groupState, groupKey, partition, strong);
        if (seen?.version === known.version) return true;
        useKnown = false;
        reread = { progress: seen };
        attempt--;
        return false;
      }
      try {
        await writeProgress(stores.groupState, groupKey, partition, { ...next, version: stored.version + 1 }, extra);
        return true;
      } catch (error) {
        if (error instanceof VersionConflict) return false;
        throw error;
      }
    };
    /** The acks of this partition are written: count them, and take them off the pending ones. */
    const acksDone = () => {
      if (!mine || !acked || !tally) return;
      acked.results.forEach((result, i) => {
        if (result === 'settled') tally.settled++;
        else tally.stale.push(mine[i]!.text);
      });
      acks!.delete(partition);
    };
    const plan = planPull(progress, now, { ordered: group.mode === 'ordered', maxDeliveries: group.maxDeliveries }, budget.count);
    if (plan.redeliver.length === 0 && plan.dead.length === 0 && plan.newLimit === 0) {
      if (!(await write(progress))) continue;
      acksDone();
      return [];
    }

    const reader = new OffsetReader(log, topicKey, partition);
    // A redriven entry whose segment retention removed is delivered from the dead letter's kept copy.
    const messageOf = async (entry: InFlight) =>
      (await reader.at(entry.offset)) ?? (entry.copy ? await stores.groupState.getRedriveCopy(groupKey, partition, entry.offset) : undefined);
    const removed = new Set<number>();
    const deadLetters: DeadLetter[] = [];
    for (const entry of plan.dead) {
      const message = await messageOf(entry);
      removed.add(entry.offset);
      if (message) {
        deadLetters.push({ message, deliveryCount: entry.deliveries, deadAt: now, reason: `maxDeliveries (${group.maxDeliveries}) reached` });
      }
    }
    // Offsets whose receipts went out before: a late ack of them is `stale` once they are dead.
    const deadLettered = deadLetters.map((l) => l.message.offset);

    // Redeliveries go through the group's rules again (a redriven message meets the current settings).
    let rawBytes = 0;
    let readAll = true;
    const due: LogMessage[] = [];
    const entryAt = new Map<number, InFlight>();
    for (const entry of plan.redeliver) {
      const message = await messageOf(entry);
      // A message whose segment retention removed can never be delivered again: drop it.
      if (!message) {
        removed.add(entry.offset);
        continue;
      }
      rawBytes += replyBytes(message);
      if (rawBytes > budget.bytes) {
        readAll = false; // read no further than a reply can carry
        break;
      }
      due.push(message);
      entryAt.set(entry.offset, entry);
    }
    const again = await screenWithin(group, due, {
      bytes: budget.bytes,
      maxDead: LIMITS.maxDeadLettersPerPull - deadLetters.length,
      evaluateUntil: budget.evaluateUntil,
    });
    const delivered = new Map<number, LogMessage>(again.deliver.map((m) => [m.offset, m]));
    const redelivered = again.deliver.map((m) => entryAt.get(m.offset)!);
    for (const m of again.skipped) removed.add(m.offset); // filtered out now: acknowledged
    for (const { message, reason } of again.dead) {
      const deliveries = entryAt.get(message.offset)!.deliveries;
      removed.add(message.offset);
      deadLettered.push(message.offset);
      deadLetters.push({ message, deliveryCount: deliveries, deadAt: now, reason });
    }

    let nextDispatched = progress.dispatched;
    let nextSegmentHint = progress.segmentHint;
    const fresh: number[] = [];
    let passedOver = 0;
    const allDecided = readAll && again.count === due.length && again.bytes < budget.bytes;
    if (allDecided && plan.newLimit > 0) {
      const batch = await readFrom(log, topicKey, partition, progress.dispatched, progress.segmentHint, plan.newLimit, {
        maxBytes: budget.bytes - again.bytes,
        sizeOf: estimatedReplyBytes(group),
      });
      // An offset that already has an entry (redriven after a reset moved `dispatched` back) is handled
      // through that entry only: one offset is never out twice.
      const present = new Set(progress.entries.map((e) => e.offset));
      const candidates = batch.messages.filter((m) => !present.has(m.offset));
      const taken = await screenWithin(group, candidates, {
        bytes: budget.bytes - again.bytes,
        maxDead: LIMITS.maxDeadLettersPerPull - deadLetters.length,
        evaluateUntil: budget.evaluateUntil,
      });
      for (const m of taken.deliver) {
        delivered.set(m.offset, m);
        fresh.push(m.offset);
      }
      // Never delivered, so no receipt of them exists: they are not remembered as dead offsets.
      for (const { message, reason } of taken.dead) deadLetters.push({ message, deliveryCount: 0, deadAt: now, reason });
      passedOver += taken.skipped.length + taken.dead.length;
      // Skipped messages need nothing: moving `dispatched` past them acknowledges them.
      if (taken.count === candidates.length) {
        nextDispatched = batch.next;
        nextSegmentHint = batch.nextSegmentHint;
      } else {
        // Stop at the first message not taken; where its segment starts is looked up by the next pull.
        nextDispatched = candidates[taken.count]!.offset;
        nextSegmentHint = nextDispatched === progress.dispatched ? progress.segmentHint : -1;
      }
    }
    const { leased, next } = applyPull(progress, {
      redelivered,
      removed,
      deadLettered,
      now,
      newMatching: fresh,
      nextDispatched,
      nextSegmentHint,
      leaseUntil: now + visibilitySeconds * 1000,
    });
    if (next.dispatched === progress.dispatched && leased.length === 0 && removed.size === 0) {
      if (!(await write(progress))) continue;
      acksDone();
      return [];
    }
    if (!(await write(next, { deadLetters }))) continue;
    acksDone();
    budget.sweep.passedOver += passedOver;
    return leased.map((lease) => ({
      ...delivered.get(lease.offset)!,
      deliveryCount: lease.deliveries,
      receipt: formatReceipt({ partition, offset: lease.offset, delivery: lease.deliveries, token: lease.token }),
    }));
  }
  return 'contended';
}

/** Broadcast (QMQ): each consumer instance has its own cursor per partition; delivery is never retried. */
async function pullBroadcastPartition(
  stores: Stores,
  topic: Topic,
  group: Group,
  consumerId: string,
  partition: number,
  budget: PullBudget,
  attempts: number,
): Promise<PartitionPull> {
  const groupKey = groupKeyOf(topic, group.name);
  const topicKey = topicKeyOf(topic);
  const log = cachedLog(stores.log, topic.retentionHours);
  for (let attempt = 0; attempt < attempts; attempt++) {
    const cursor = (await stores.groupState.getCursor(groupKey, consumerId, partition)) ?? {
      consumerId,
      partition,
      dispatched: startOffsetOf(group, partition),
      segmentHint: -1,
      version: 0,
    };
    const batch = await readFrom(log, topicKey, partition, cursor.dispatched, cursor.segmentHint, budget.count, {
      maxBytes: budget.bytes,
      sizeOf: estimatedReplyBytes(group),
    });
    // Broadcast has no dead letters (nothing is leased or redelivered, and each consumer would have its
    // own copy): a message whose expression fails is skipped for this consumer, with a log line.
    const taken = await screenWithin(group, batch.messages, { bytes: budget.bytes, maxDead: Infinity, evaluateUntil: budget.evaluateUntil });
    const all = taken.count === batch.messages.length;
    const next = all ? batch.next : batch.messages[taken.count]!.offset;
    if (next === cursor.dispatched) return [];
    try {
      await stores.groupState.putCursor(groupKey, {
        ...cursor,
        dispatched: next,
        segmentHint: all ? batch.nextSegmentHint : -1,
        version: cursor.version + 1,
      });
    } catch (error) {
      if (error instanceof VersionConflict) continue;
      throw error;
    }
    if (taken.dead.length > 0) logSkippedBroadcast(topic, group, consumerId, taken.dead);
    budget.sweep.passedOver += taken.skipped.length + taken.dead.length;
    return taken.deliver.map((m) => ({ ...m, deliveryCount: 1, receipt: formatReceipt({ partition, offset: m.offset, delivery: 1, token: 'b' }) }));
  }
  return 'contended';
}

function logSkippedBroadcast(topic: Topic, group: Group, consumerId: string, dead: Screened['dead']) {
  for (const { message, reason } of dead) {
    console.warn(
      JSON.stringify({
        level: 'WARN',
        message: 'broadcast pull skipped a message whose filter expression or transform failed',
        topic: topic.name,
        group: group.name,
        consumerId,
        partition: message.partition,
        offset: message.offset,
        reason,
      }),
    );
  }
}

/**
 * Leases up to `count` messages of one partition for Sluice's own push worker, exactly as a pull
 * would (same progress model, filter, transform and dead-lettering), with leases of `visibilitySeconds`.
 */
export async function leaseForPush(
  stores: Stores,
  topic: Topic,
  group: Group,
  partition: number,
  count: number,
  visibilitySeconds: number,
  deadline: number,
): Promise<Delivery[]> {
  const budget = {
    count,
    bytes: LIMITS.maxReplyMessageBytes,
    evaluateUntil: Math.min(Date.now() + EXPRESSION_LIMITS.batchBudgetMs, deadline),
    sweep: { passedOver: 0 },
  };
  const got = await pullLeasedPartition(stores, topic, group, partition, budget, visibilitySeconds, RETRY_ATTEMPTS);
  return got === 'contended' ? [] : got;
}

export interface SettleSummary {
  readonly settled: number;
  readonly stale: string[];
}

function parseReceipts(receipts: readonly string[]): Receipt[] {
  return receipts.map((text, i) => {
    const receipt = parseReceipt(text);
    if (!receipt) throw validation(`receipts[${i}] is not a receipt issued by this broker.`);
    return receipt;
  });
}

async function settle(
  stores: Stores,
  topicName: string,
  groupName: string,
  receiptTexts: readonly string[],
  apply: typeof applyAcks,
): Promise<SettleSummary> {
  // A receipt repeated in one call settles its delivery once and counts once.
  receiptTexts = [...new Set(receiptTexts)];
  const receipts = parseReceipts(receiptTexts);
  // A receipt of a partition that a cached copy of the topic does not know (a growth since) re-reads it.
  const { topic, group } = await requireGroupCached(stores, topicName, groupName, Math.max(0, ...receipts.map((r) => r.partition + 1)));
  const groupKey = groupKeyOf(topic, group.name);
  const stale: string[] = [];
  let settled = 0;
  const byPartition = new Map<number, Array<{ receipt: Receipt; text: string }>>();
  receipts.forEach((receipt, i) => {
    const text = receiptTexts[i]!;
    if (receipt.partition >= topic.partitions) stale.push(text);
    else if (group.mode === 'broadcast') {
      // Broadcast deliveries are not leased: settling them is accepted and changes nothing.
      if (receipt.token === 'b') settled++;
      else stale.push(text);
    } else {
      const list = byPartition.get(receipt.partition) ?? [];
      list.push({ receipt, text });
      byPartition.set(receipt.partition, list);
    }
  });
  for (const [partition, list] of byPartition) {
    const results: SettleResult[] = await retryOnConflict(async () => {
      const receipts = list.map((l) => l.receipt);
      // Eventually consistent first (half price); a stale answer either fails the versioned write, or
      // is checked with a strong read below. (Not the item this process knows: an ack on its own is rare
      // in a consumer loop that acks with its next pull, and its reads stay as they were.)
      let progress = (await readProgress(stores.groupState, groupKey, partition, false)) ?? freshProgress(startOffsetOf(group, partition));
      for (let tries = 1; ; tries++) {
        const now = Date.now();
        let outcome = apply(progress, receipts, now);
        // An answer given without a write rests on the read alone: a stale replica (after a reset or a
        // redrive) could make an old receipt look settled, so such an answer is checked strongly.
        if (outcome.results.includes('stale') || outcome.next === progress) {
          progress = (await readProgress(stores.groupState, groupKey, partition, true)) ?? freshProgress(startOffsetOf(group, partition));
          outcome = apply(progress, receipts, now);
        }
        if (outcome.next === progress) return outcome.results;
        try {
          await writeProgress(stores.groupState, groupKey, partition, outcome.next);
          return outcome.results;
        } catch (error) {
          // A lost race returns the current item (strongly consistent): try again on it at once, a few
          // times, before backing off; a consumer pulling from this partition in a loop writes often,
          // and a read-then-write each time could keep losing to it.
          if (!(error instanceof VersionConflict) || !error.current || tries >= IMMEDIATE_SETTLE_TRIES) throw error;
          progress = error.current;
        }
      }
    });
    results.forEach((result, i) => {
      if (result === 'settled') settled++;
      else stale.push(list[i]!.text);
    });
  }
  return { settled, stale };
}

export const ack = (stores: Stores, topic: string, group: string, receipts: readonly string[]) =>
  settle(stores, topic, group, receipts, (p, r, now) => applyAcks(p, r, now));

export const nack = (
  stores: Stores,
  topic: string,
  group: string,
  receipts: readonly string[],
  retryAfterSeconds?: number,
  deliveriesAtLeast?: number,
) => settle(stores, topic, group, receipts, (p, r, now) => applyNacks(p, r, now, retryAfterSeconds, deliveriesAtLeast));
