import { LIMITS } from '../limits.js';
import { newLeaseToken, type Receipt } from '../ids.js';

/**
 * Progress of one consumer group on one partition — the whole state of DESIGN.md invariant 3:
 * - offsets >= `dispatched` are available (never handed out);
 * - an offset below `dispatched` that has an entry is in flight (leased while `until` > now, with a
 *   non-empty token) or waiting to be redelivered (`until` <= now, or a nack's retry time);
 * - an offset below `dispatched` with no entry is acknowledged (or was moved to the dead letters,
 *   which keep their own copy).
 * The ack floor ("ackedThrough") is therefore min(entry offsets, dispatched): no separate counter.
 * Every change is one conditional write on `version`.
 */
export interface InFlight {
  readonly offset: number;
  /** Lease expiry while leased; time it becomes available again after a nack or redrive. */
  readonly until: number;
  readonly deliveries: number;
  /** Lease token of the current delivery; empty once nacked or redriven. */
  readonly token: string;
  /** Redriven from the dead letters: the dead letter's own copy is kept, in case retention removed the segment. */
  readonly copy?: true;
}

/** An offset moved to the dead letters: a late ack of one of its receipts is `stale`, not `settled`. */
export interface DeadMark {
  readonly offset: number;
  readonly at: number;
}

export interface PartitionProgress {
  readonly dispatched: number;
  /** Base offset of the segment holding `dispatched` (or `dispatched` itself at a segment boundary); -1 when unknown. */
  readonly segmentHint: number;
  readonly entries: readonly InFlight[];
  /** Recently dead-lettered offsets (bounded: see rememberDead). */
  readonly dead: readonly DeadMark[];
  /** 0 when the item was never written. */
  readonly version: number;
}

export const freshProgress = (startOffset: number): PartitionProgress => ({
  dispatched: startOffset,
  segmentHint: -1,
  entries: [],
  dead: [],
  version: 0,
});

/**
 * Dead-lettered offsets are remembered for as long as a receipt of theirs can plausibly still be acked
 * (the longest lease, 12 h), and at most `maxDeadMarks` of them per partition, so the progress item
 * (rewritten whole on every change) stays small; older late acks of dead messages answer as acked ones do.
 */
export function rememberDead(marks: readonly DeadMark[], offsets: readonly number[], now: number): DeadMark[] {
  const horizon = now - LIMITS.maxVisibilitySeconds * 1000;
  const kept = marks.filter((m) => m.at > horizon && !offsets.includes(m.offset));
  return [...kept, ...offsets.map((offset) => ({ offset, at: now }))].slice(-LIMITS.maxDeadMarks);
}

export function ackFloor(progress: PartitionProgress): number {
  let floor = progress.dispatched;
  for (const e of progress.entries) if (e.offset < floor) floor = e.offset;
  return floor;
}

export const leasedCount = (progress: PartitionProgress, now: number) =>
  progress.entries.filter((e) => e.token !== '' && e.until > now).length;

export interface PullSettings {
  readonly ordered: boolean;
  readonly maxDeliveries: number;
  readonly maxInFlight?: number;
}

export interface PullPlan {
  /** Entries due for another delivery, in offset order. */
  readonly redeliver: readonly InFlight[];
  /** Due entries that reached maxDeliveries: they go to the dead letters. */
  readonly dead: readonly InFlight[];
  /** How many new offsets (from `dispatched`) may be read. */
  readonly newLimit: number;
}

/** Decides what a pull may take from one partition; `budget` is how many messages the caller still wants. */
export function planPull(progress: PartitionProgress, now: number, settings: PullSettings, budget: number): PullPlan {
  const due = progress.entries.filter((e) => e.until <= now).sort((a, b) => a.offset - b.offset);
  if (settings.ordered && progress.entries.some((e) => e.until > now)) {
    // An ordered partition is blocked while anything of it is leased or waiting for its retry time.
    return { redeliver: [], dead: [], newLimit: 0 };
  }
  const dead = due.filter((e) => e.deliveries >= settings.maxDeliveries).slice(0, LIMITS.maxDeadLettersPerPull);
  const deadSet = new Set(dead.map((e) => e.offset));
  const retry = due.filter((e) => e.deliveries < settings.maxDeliveries && !deadSet.has(e.offset));
  const redeliver = retry.slice(0, budget);
  const remainingEntries = progress.entries.length - dead.length;
  let newLimit: number;
  if (settings.ordered) {
    newLimit = remainingEntries === 0 ? budget : 0;
  } else {
    const window = (settings.maxInFlight ?? LIMITS.maxInFlightPerPartition) - (progress.dispatched - ackFloorAfter(progress, deadSet));
    newLimit = Math.max(0, Math.min(budget - redeliver.length, window));
  }
  return { redeliver, dead, newLimit };
}

function ackFloorAfter(progress: PartitionProgress, removed: ReadonlySet<number>): number {
  let floor = progress.dispatched;
  for (const e of progress.entries) if (!removed.has(e.offset) && e.offset < floor) floor = e.offset;
  return floor;
}

export interface Lease {
  readonly offset: number;
  readonly deliveries: number;
  readonly token: string;
}

export interface PullOutcome {
  /** Offsets to lease now: redeliveries and new matching messages. */
  readonly leased: readonly Lease[];
  readonly next: PartitionProgress;
}

/**
 * The progress after a pull: `redelivered` and `newMatching` offsets are leased until `leaseUntil`,
 * `removed` entries (dead-lettered, or whose segment is gone) are dropped, and `dispatched` moves to `nextDispatched`.
 */
export function applyPull(
  progress: PartitionProgress,
  change: {
    readonly redelivered: readonly InFlight[];
    readonly removed: ReadonlySet<number>;
    readonly newMatching: readonly number[];
    readonly nextDispatched: number;
    readonly nextSegmentHint: number;
    readonly leaseUntil: number;
    /** Offsets of `removed` that went to the dead letters (the rest were trimmed by retention). */
    readonly deadLettered?: readonly number[];
    readonly now?: number;
  },
): PullOutcome {
  const redeliveredOffsets = new Map(change.redelivered.map((e) => [e.offset, e]));
  const leased: Lease[] = [];
  const entries: InFlight[] = [];
  for (const e of progress.entries) {
    if (change.removed.has(e.offset)) continue;
    if (redeliveredOffsets.has(e.offset)) {
      const lease = { offset: e.offset, deliveries: e.deliveries + 1, token: newLeaseToken() };
      leased.push(lease);
      entries.push({ ...lease, until: change.leaseUntil });
    } else {
      entries.push(e);
    }
  }
  const present = new Set(progress.entries.map((e) => e.offset));
  for (const offset of change.newMatching) {
    // An offset that already has an entry (redriven after a reset moved `dispatched` back) is leased
    // through that entry only: one offset is never out twice.
    if (present.has(offset)) continue;
    const lease = { offset, deliveries: 1, token: newLeaseToken() };
    leased.push(lease);
    entries.push({ ...lease, until: change.leaseUntil });
  }
  entries.sort((a, b) => a.offset - b.offset);
  return {
    leased,
    next: {
      dispatched: change.nextDispatched,
      segmentHint: change.nextSegmentHint,
      entries,
      dead:
        change.deadLettered && change.deadLettered.length > 0
          ? rememberDead(progress.dead, change.deadLettered, change.now ?? Date.now())
          : progress.dead,
      version: progress.version + 1,
    },
  };
}

export type SettleResult = 'settled' | 'stale';

/**
 * Acknowledges deliveries. A receipt counts when its lease is current (token and delivery number match
 * and the lease has not expired). An offset below `dispatched` with no entry was already acknowledged,
 * so acking it again counts too: a client may retry an ack whose reply it lost.
 */
export function applyAcks(
  progress: PartitionProgress,
  receipts: readonly Receipt[],
  now: number,
): { next: PartitionProgress; results: SettleResult[] } {
  const byOffset = new Map(progress.entries.map((e) => [e.offset, e]));
  const deadOffsets = new Set(progress.dead.map((d) => d.offset));
  const remove = new Set<number>();
  const results = receipts.map((r): SettleResult => {
    const entry = byOffset.get(r.offset);
    if (!entry) return r.offset < progress.dispatched && !deadOffsets.has(r.offset) ? 'settled' : 'stale';
    if (entry.token === '' || entry.token !== r.token || entry.deliveries !== r.delivery || entry.until <= now) {
      return 'stale';
    }
    remove.add(r.offset);
    return 'settled';
  });
  if (remove.size === 0) return { next: progress, results };
  return {
    next: { ...progress, entries: progress.entries.filter((e) => !remove.has(e.offset)), version: progress.version + 1 },
    results,
  };
}

/** Exponential backoff for a nack without a retry delay: 1 s, 2 s, 4 s … capped. */
export const backoffSeconds = (deliveries: number) =>
  Math.min(LIMITS.maxBackoffSeconds, 2 ** Math.max(0, Math.min(deliveries - 1, 20)));

/** Nacks current deliveries: each becomes available again at now + retry delay (explicit or backoff). */
export function applyNacks(
  progress: PartitionProgress,
  receipts: readonly Receipt[],
  now: number,
  retryAfterSeconds: number | undefined,
  /** Raise the delivery count to this (maxDeliveries): the next pull dead-letters the message (push: unprocessable). */
  deliveriesAtLeast = 0,
): { next: PartitionProgress; results: SettleResult[] } {
  const byOffset = new Map(progress.entries.map((e) => [e.offset, e]));
  const changed = new Map<number, InFlight>();
  const results = receipts.map((r): SettleResult => {
    const entry = changed.has(r.offset) ? undefined : byOffset.get(r.offset);
    if (!entry || entry.token === '' || entry.token !== r.token || entry.deliveries !== r.delivery || entry.until <= now) {
      return 'stale';
    }
    const delay = retryAfterSeconds ?? backoffSeconds(entry.deliveries);
    changed.set(r.offset, { ...entry, token: '', until: now + delay * 1000, deliveries: Math.max(entry.deliveries, deliveriesAtLeast) });
    return 'settled';
  });
  if (changed.size === 0) return { next: progress, results };
  return {
    next: {
      ...progress,
      entries: progress.entries.map((e) => changed.get(e.offset) ?? e),
      version: progress.version + 1,
    },
    results,
  };
}

export interface RedrivePlan {
  readonly next: PartitionProgress;
  /** Offsets that come back as waiting entries (their dead letter's copy is kept for them). */
  readonly accepted: readonly number[];
  /** Offsets at or past `dispatched` (a reset moved it back): they come again from the log, as new. */
  readonly fromLog: readonly number[];
  /** Offsets left in the dead letters: the partition's in-flight window is full. */
  readonly deferred: readonly number[];
}

/**
 * Redrive: dead-lettered offsets come back as waiting entries with a fresh delivery count, as many as
 * the in-flight window has room for (the progress item holds every entry and must stay far below
 * DynamoDB's 400 KB item limit); the rest stay dead letters for a later redrive.
 */
export function applyRedrive(
  progress: PartitionProgress,
  offsets: readonly number[],
  now: number,
  maxEntries: number = LIMITS.maxInFlightPerPartition,
): RedrivePlan {
  const present = new Set(progress.entries.map((e) => e.offset));
  const accepted: number[] = [];
  const fromLog: number[] = [];
  const deferred: number[] = [];
  let room = maxEntries - progress.entries.length;
  for (const offset of [...new Set(offsets)].sort((a, b) => a - b)) {
    if (offset >= progress.dispatched || present.has(offset)) fromLog.push(offset);
    else if (room > 0) {
      accepted.push(offset);
      room--;
    } else deferred.push(offset);
  }
  const added = accepted.map((offset): InFlight => ({ offset, until: now, deliveries: 0, token: '', copy: true }));
  const back = new Set([...accepted, ...fromLog]);
  return {
    next: {
      ...progress,
      entries: [...progress.entries, ...added].sort((a, b) => a.offset - b.offset),
      dead: progress.dead.filter((d) => !back.has(d.offset)),
      version: progress.version + 1,
    },
    accepted,
    fromLog,
    deferred,
  };
}

/** Reset: the partition restarts at `offset`; every lease is dropped (its receipts become stale). */
export const applyReset = (progress: PartitionProgress, offset: number, segmentHint = -1): PartitionProgress => ({
  dispatched: offset,
  segmentHint,
  entries: [],
  dead: progress.dead,
  version: progress.version + 1,
});
