import { LIMITS } from '../limits.js';
import { SluiceError } from '../errors.js';
import { serverMessageId } from '../ids.js';
import { IdsTaken, LandingsGone, OffsetTaken, topicKeyOf, type DedupEntry, type Stores, type Topic } from '../ports.js';
import { rememberedUntil, segmentExpiry } from './expiry.js';
import { groupLandings, landingCost, MAX_GROUP_BYTES_PER_TRANSACTION, type GroupLandingPlan, type Pending } from './landings.js';
import { sleep } from '../time.js';

export interface AppendedResult {
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
  readonly duplicate?: true;
}

/**
 * Where each partition's log ends, as last seen by this process. Only a hint: appends are conditional
 * on the offset being free, so a stale hint costs one failed write and a re-read, never a gap.
 */
const tailHints = new Map<string, number>();
/** Partitions whose hint is the end of a segment that beat this process to an offset (see tryAppend). */
const hintsFromWinners = new Set<string>();

/**
 * Appends under way in this process, per partition. Concurrent requests of one process (the local
 * runtime, or a Lambda with several in flight) queue per partition instead of racing each other for
 * the same tail, and movable messages pick a partition nobody here is appending to.
 */
const appendQueues = new Map<string, Promise<unknown>>();

let queueAppends = true;

/** For tests: let this process's appends race like separate Lambda instances' do. */
export function raceAppendsLikeSeparateProcesses(race: boolean) {
  queueAppends = !race;
}

async function serialized<T>(key: string, work: () => Promise<T>): Promise<T> {
  if (!queueAppends) return work();
  const previous = appendQueues.get(key) ?? Promise.resolve();
  const run = previous.then(work, work);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  appendQueues.set(key, settled);
  try {
    return await run;
  } finally {
    if (appendQueues.get(key) === settled) appendQueues.delete(key);
  }
}

/** A partition that no append of this process is using, starting at `preferred`. */
export function idlePartition(topicKey: string, preferred: number, partitions: number): number {
  for (let i = 0; i < partitions; i++) {
    const p = (preferred + i) % partitions;
    if (!appendQueues.has(`${topicKey}#${p}`)) return p;
  }
  return preferred;
}

/**
 * A lost append race is retried after a jittered exponential backoff ("full jitter": a random wait up
 * to 4 ms, 8 ms, … 256 ms), so racing writers spread out instead of re-colliding at once; the request
 * answers 429 (Throttled, retry-after) once the next wait would cross its deadline, which the handler
 * sets before the function's timeout. The attempt cap is a backstop for a deadline far away.
 */
const MAX_APPEND_ATTEMPTS = 100;
const BACKOFF_BASE_MS = 10;
const BACKOFF_CAP_MS = 1000;

/** Full jitter: a random wait up to BACKOFF_BASE_MS · 2^attempt, at most `capMs` (producer sessions wait at most 500 ms). */
export const backoffMs = (attempt: number, capMs = BACKOFF_CAP_MS) => Math.random() * Math.min(capMs, BACKOFF_BASE_MS * 2 ** attempt);

/** Set when one partition's append failed: the others stop before their next attempt. */
interface Abort {
  reason?: unknown;
}

class Aborted extends Error {}

export type { Pending } from './landings.js';

/**
 * Appends messages to their partitions, one conditional segment write per chunk, partitions in
 * parallel; fills `results` by message index. A landing whose pending record was cancelled or landed
 * meanwhile is left out, its result left undefined.
 */
export async function appendAll(
  stores: Stores,
  topic: Topic,
  toAppend: readonly Pending[],
  results: (AppendedResult | undefined)[],
  deadline: number,
): Promise<void> {
  const topicKey = topicKeyOf(topic);
  const byPartition = new Map<number, Pending[]>();
  // Movable messages are kept apart from keyed ones so a lost race can move them to another partition.
  const movable = toAppend.filter((p) => p.movable);
  for (const p of toAppend.filter((m) => !m.movable)) {
    const list = byPartition.get(p.partition) ?? [];
    list.push(p);
    byPartition.set(p.partition, list);
  }
  // Partitions append in parallel. When one fails, the others stop before their next attempt, and the
  // reply waits for all of them: no append may still be running (or land) after the request answered.
  const abort: Abort = {};
  const run = async (work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      abort.reason ??= error;
    }
  };
  const appends = [...byPartition.entries()].map(([partition, list]) =>
    run(async () => {
      for (const chunk of chunkForSegments(list)) await appendChunk(stores, topic, topicKey, partition, chunk, results, false, deadline, abort);
    }),
  );
  if (movable.length > 0) {
    appends.push(
      run(async () => {
        for (const chunk of chunkForSegments(movable)) {
          await appendChunk(stores, topic, topicKey, chunk[0]!.partition, chunk, results, true, deadline, abort);
        }
      }),
    );
  }
  await Promise.all(appends);
  if (abort.reason !== undefined) throw abort.reason;
}

/** Splits one partition's messages into segments that fit an item and a transaction. */
export function chunkForSegments(list: readonly Pending[]): Pending[][] {
  const chunks: Pending[][] = [];
  let current: Pending[] = [];
  let bytes = 0;
  let ids = 0;
  let groupBytes = 0;
  let groups = new Set<GroupLandingPlan>();
  for (const p of list) {
    // Transaction actions besides the segment: the producer-id record and the landing's pending record
    // (a delayed group's item and lookup record, once per group), and the group items' bytes.
    let cost = landingCost(p, groups);
    if (
      current.length > 0 &&
      (bytes + p.bytes > LIMITS.maxSegmentBytes ||
        ids + cost.actions > LIMITS.maxIdsPerSegment ||
        groupBytes + cost.bytes > MAX_GROUP_BYTES_PER_TRANSACTION)
    ) {
      chunks.push(current);
      current = [];
      bytes = 0;
      ids = 0;
      groupBytes = 0;
      groups = new Set();
      cost = landingCost(p, groups);
    }
    current.push(p);
    bytes += p.bytes + 1;
    ids += cost.actions;
    groupBytes += cost.bytes;
    if (p.member) groups.add(p.member.plan);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

async function appendChunk(
  stores: Stores,
  topic: Topic,
  topicKey: string,
  partition: number,
  chunk: Pending[],
  results: (AppendedResult | undefined)[],
  movable: boolean,
  deadline: number,
  abort: Abort,
): Promise<void> {
  let remaining = chunk;
  for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS && remaining.length > 0; attempt++) {
    if (abort.reason !== undefined) throw new Aborted();
    if (movable) partition = idlePartition(topicKey, partition, topic.partitions);
    const hintKey = `${topicKey}#${partition}`;
    const outcome = await serialized(hintKey, () => tryAppend(stores, topic, topicKey, partition, remaining, results));
    if (outcome === 'appended') return;
    if (outcome === 'offset-taken') {
      // Someone else is appending here right now: unkeyed messages try the next partition at once,
      // until they have been round every partition; then everyone waits before the next try.
      if (movable) partition = (partition + 1) % topic.partitions;
      if (movable && attempt < topic.partitions - 1) continue;
    } else {
      remaining = outcome.remaining;
      if (remaining.length === 0) return;
    }
    const wait = backoffMs(attempt);
    if (Date.now() + wait >= deadline) break;
    await sleep(wait);
  }
  if (remaining.length > 0) {
    throw new SluiceError('Throttled', `Partition ${partition} of '${topic.name}' is contended; retry the request.`);
  }
}

/** One conditional append of `remaining` at the partition's tail. */
async function tryAppend(
  stores: Stores,
  topic: Topic,
  topicKey: string,
  partition: number,
  remaining: Pending[],
  results: (AppendedResult | undefined)[],
): Promise<'appended' | 'offset-taken' | { remaining: Pending[] }> {
  const base = await tailOf(stores, topicKey, partition);
  const producedAt = Date.now();
  const ids: DedupEntry[] = [];
  remaining.forEach((p, i) => {
    // Members of delayed groups are found by id through their group's lookup record instead.
    if (p.record.i !== undefined && !p.member) ids.push({ id: p.record.i, partition, offset: base + i });
  });
  const idExpiresAt = rememberedUntil(producedAt, topic.retentionHours);
  const grouped = groupLandings(remaining, partition, base, idExpiresAt);
  const landings = [...remaining.flatMap((p) => (p.landing ? [p.landing] : [])), ...grouped.changes];
  try {
    const segment = { partition, base, producedAt, records: remaining.map((p) => p.record), expiresAt: segmentExpiry(producedAt, topic.retentionHours) };
    await stores.log.appendSegment(topicKey, segment, ids, idExpiresAt, landings);
  } catch (error) {
    if (error instanceof LandingsGone) {
      // Cancelled (or landed by a duplicate delivery) meanwhile: those stay out, the rest go on. A group
      // changed meanwhile (one member cancelled, say) leaves the append whole: the landing reads it again.
      const gone = new Set(error.ids);
      return { remaining: remaining.filter((p) => !(p.landing && gone.has(p.landing.id)) && !(p.member && gone.has(p.member.plan.id))) };
    }
    if (error instanceof OffsetTaken) {
      offsetTaken(topicKey, partition, error.endOfWinner);
      return 'offset-taken';
    }
    if (error instanceof IdsTaken) {
      // Another request appended some of these ids meanwhile: answer with its offsets, append the rest.
      const found = await stores.dedup.getMany(topicKey, error.ids);
      return {
        remaining: remaining.filter((p) => {
          const seen = p.record.i !== undefined ? found.get(p.record.i) : undefined;
          if (seen) results[p.index] = { id: seen.id, partition: seen.partition, offset: seen.offset, duplicate: true };
          return !seen;
        }),
      };
    }
    throw error;
  }
  grouped.commit();
  rememberTail(topicKey, partition, base + remaining.length);
  remaining.forEach((p, i) => {
    const offset = base + i;
    results[p.index] = { id: p.record.i ?? serverMessageId(producedAt, partition, offset), partition, offset };
  });
  return 'appended';
}

/** Where a partition's log ends: this process's hint, or a strongly consistent read of the tail. */
export async function tailOf(stores: Stores, topicKey: string, partition: number): Promise<number> {
  const hint = tailHints.get(`${topicKey}#${partition}`);
  if (hint !== undefined) return hint;
  const tail = await stores.log.tail(topicKey, partition);
  return tail ? tail.base + tail.count : 0;
}

/** After this process appended up to `end`. */
export function rememberTail(topicKey: string, partition: number, end: number) {
  const hintKey = `${topicKey}#${partition}`;
  tailHints.set(hintKey, end);
  hintsFromWinners.delete(hintKey);
}

/**
 * After an append found its offset taken. The winner's segment came back with the failure: its end is
 * where to try next (no tail read). Unless this try was already at a winner's end: then the log has moved
 * on by more than one segment (writers this process never hears of, such as transaction commits), and
 * walking it one segment per failed write would take as many tries as segments; the next try reads the
 * tail instead.
 */
export function offsetTaken(topicKey: string, partition: number, endOfWinner: number | undefined) {
  const hintKey = `${topicKey}#${partition}`;
  if (endOfWinner !== undefined && !hintsFromWinners.has(hintKey)) {
    tailHints.set(hintKey, endOfWinner);
    hintsFromWinners.add(hintKey);
  } else {
    tailHints.delete(hintKey);
    hintsFromWinners.delete(hintKey);
  }
}

/**
 * Runs `work` once no other append of this process is under way on any of `partitions` (taken in order,
 * so two such waits never hold each other up), as appendAll's per-partition queues do.
 */
export async function exclusivelyOn<T>(topicKey: string, partitions: readonly number[], work: () => Promise<T>): Promise<T> {
  const keys = [...new Set(partitions)].sort((a, b) => a - b).map((p) => `${topicKey}#${p}`);
  const nest = (i: number): Promise<T> => (i === keys.length ? work() : serialized(keys[i]!, () => nest(i + 1)));
  return nest(0);
}

/** For tests: forget the tail hints, as a cold Lambda would. */
export const forgetTailHints = () => {
  tailHints.clear();
  hintsFromWinners.clear();
};
