import { LIMITS } from '../limits.js';
import { topicKeyOf, type LogStore, type SegmentKey, type Stores, type Topic } from '../ports.js';
import { SEGMENT_EXPIRY_GRACE_SECONDS, segmentExpiry, TAIL_PROTECTION_SECONDS } from './expiry.js';

/**
 * Retention (docs/retention.md). Segments carry a TTL attribute (log/expiry.ts): DynamoDB TTL deletes
 * them, free, a day or more after their retention. The pass does what TTL cannot be trusted with:
 * - it keeps the newest segment of each partition: the next append learns its offset there, so offsets
 *   never restart. Before TTL could take it, the pass removes its expiry;
 * - it deletes (billed) the segments TTL will not take: written without expiry (before TTL was used, or a
 *   protected newest segment that a newer one overtook) or with a longer one (the retention was
 *   shortened), once they are past retention, oldest first; and moves expiry on when the retention was
 *   lengthened;
 * - it deletes the whole log of a deleted ("buried") topic incarnation.
 *
 * A pass probes each partition's oldest segment and its newest, pages through keys only as far as there
 * is work (never through what TTL will take), deletes 25 segments per BatchWriteItem call, works on
 * several partitions at once, and starts no call after its deadline (only the resume point is written
 * after it). A pass that stops early records the topic it started last; the next pass starts with the
 * topic after it, so every topic gets its turn however far behind one of them is.
 *
 * Every write is idempotent, so a retry of a call whose reply was lost (by the SDK, or by the next pass
 * after the handler died) changes nothing: a delete of a deleted key succeeds and does nothing, and the
 * key cannot come back (a partition's offsets only grow, and an incarnation's key is never reused); an
 * expiry set or removed twice is the same item, and never creates one that is gone.
 */

/** Keys listed per round in one partition; DynamoDB still pages them at 1 MB of whole items read. */
const KEY_PAGE = 100;
/** BatchWriteItem's limit: one call deletes up to 25 segments. */
const DELETE_BATCH = 25;
/** Partitions a pass works on at once (each with one call in flight); see docs/retention.md. */
export const RETENTION_CONCURRENCY = 8;

export interface PassOptions {
  /** Wall-clock epoch ms after which the pass starts no trimming call (default: none, run to the end). */
  readonly deadline?: number;
  /** Partitions worked on at once (default RETENTION_CONCURRENCY). */
  readonly concurrency?: number;
  /** The clock the deadline is checked against (default Date.now; tests stop a pass at an exact point). */
  readonly clock?: () => number;
}

export interface PassResult {
  readonly deleted: number;
  /** Newest segments whose expiry the pass removed, so that TTL never deletes them. */
  readonly protected: number;
  /** Segments whose expiry moved on to a topic's longer retention. */
  readonly extended: number;
  /** Every topic and grave was worked through to its end; false when the deadline or an error stopped the pass. */
  readonly complete: boolean;
  /** Topics and graves in this pass, and how many of them it started. */
  readonly topics: number;
  readonly started: number;
  /** Graves whose log was found empty and which were forgotten. */
  readonly forgotten: number;
}

interface Work {
  readonly topic: Topic;
  readonly buried: boolean;
}

interface PartitionOutcome {
  readonly deleted: number;
  readonly protected: number;
  readonly extended: number;
  /** Reached the first segment to keep (or the end of the log) before the deadline. */
  readonly finished: boolean;
  /** Saw any segment at all. */
  readonly found: boolean;
}

/**
 * What the pass does with a segment, oldest first: delete it (billed), move its expiry on (a longer
 * retention), leave it to TTL and look further, or stop (it and everything newer are TTL's or still kept).
 */
type Action = 'delete' | 'extend' | 'skip' | 'stop';

const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * What retention does with a segment of a live topic kept `retentionHours`, `cutoff` being the oldest
 * produce time still within retention:
 * - no expiry (written before TTL was used, or a protected newest segment a newer one overtook), or a later
 *   one than this retention gives (the retention was shortened): deleted once past retention, else stop;
 * - an earlier expiry than this retention gives (the retention was lengthened): within retention, its
 *   expiry moves on; past it, TTL takes it as written;
 * - the expiry this retention gives: TTL takes it, and everything after it, in time: stop.
 * Segments are in produce order, so where the pass stops the ones after need nothing sooner.
 */
export function retentionAction(segment: SegmentKey, retentionHours: number, cutoff: number): Action {
  const expected = segmentExpiry(segment.producedAt, retentionHours);
  const past = segment.producedAt < cutoff;
  if (segment.expiresAt === undefined || segment.expiresAt > expected) return past ? 'delete' : 'stop';
  if (segment.expiresAt < expected) return past ? 'skip' : 'extend';
  return 'stop';
}

/**
 * Works through a partition's segments oldest first, from `from`, doing what `actionOf` says until it says
 * stop (or the partition ends). Checks the deadline before every call. Deletes leave no hole a reader
 * could mistake: readers confirm a gap with a strongly consistent read and skip it (log/logReader.ts).
 */
async function walkOldest(
  log: LogStore,
  key: string,
  partition: number,
  from: number,
  actionOf: (segment: SegmentKey) => Action,
  extendTo: (segment: SegmentKey) => number,
  late: () => boolean,
): Promise<PartitionOutcome> {
  let deleted = 0;
  let extended = 0;
  let found = false;
  const outcome = (finished: boolean) => ({ deleted, extended, protected: 0, finished, found });
  for (;;) {
    if (late()) return outcome(false);
    const page = await log.segmentKeysFrom(key, partition, from, KEY_PAGE);
    found ||= page.length > 0;
    const actions = page.map(actionOf);
    const stop = actions.indexOf('stop');
    const worked = stop < 0 ? page : page.slice(0, stop);
    const doomed = worked.filter((_, i) => actions[i] === 'delete').map((s) => s.base);
    for (let i = 0; i < doomed.length; i += DELETE_BATCH) {
      if (late()) return outcome(false);
      const bases = doomed.slice(i, i + DELETE_BATCH);
      await log.deleteSegments(key, partition, bases);
      deleted += bases.length;
    }
    for (const [i, segment] of worked.entries()) {
      if (actions[i] !== 'extend') continue;
      if (late()) return outcome(false);
      // False when TTL deleted it meanwhile: nothing to move on then.
      if (await log.setSegmentExpiry(key, partition, segment.base, extendTo(segment))) extended++;
    }
    if (stop >= 0 || page.length < KEY_PAGE) return outcome(true);
    from = page[page.length - 1]!.base + 1;
  }
}

/**
 * A partition whose oldest segment needs nothing ('stop') and is younger than this needs nothing at all: no
 * segment of it can be within TAIL_PROTECTION_SECONDS of expiring (a segment with an expiry expires at least
 * the shortest retention and the grace after it was produced, none is older than the oldest, and one without
 * an expiry never does).
 */
const untouchable = (oldest: SegmentKey, action: Action, nowSeconds: number) =>
  action === 'stop' &&
  Math.floor(oldest.producedAt / 1000) + LIMITS.minRetentionHours * 3600 + SEGMENT_EXPIRY_GRACE_SECONDS >= nowSeconds + TAIL_PROTECTION_SECONDS;

async function trimPartition(stores: Stores, work: Work, partition: number, now: number, late: () => boolean): Promise<PartitionOutcome> {
  const key = topicKeyOf(work.topic);
  const log = stores.log;
  if (work.buried) return walkOldest(log, key, partition, 0, () => 'delete', () => 0, late);
  const nothing = (finished: boolean, found: boolean) => ({ deleted: 0, protected: 0, extended: 0, finished, found });
  if (late()) return nothing(false, false);
  const { retentionHours } = work.topic;
  const cutoff = now - retentionHours * 3600 * 1000;
  const nowSeconds = Math.floor(now / 1000);
  // Most partitions, most of the time, cost one Query reading one item here, and one more for the tail.
  const [oldest] = await log.segmentKeysFrom(key, partition, 0, 1);
  if (!oldest) return nothing(true, false);
  if (untouchable(oldest, retentionAction(oldest, retentionHours, cutoff), nowSeconds)) return nothing(true, true);
  if (late()) return nothing(false, true);
  // Strongly consistent: everything below the newest segment's base is surely not the newest.
  const tail = await log.tail(key, partition);
  if (!tail) return nothing(true, false);
  let protectedTails = 0;
  if (tail.expiresAt !== undefined && tail.expiresAt < nowSeconds + TAIL_PROTECTION_SECONDS) {
    // The next append learns its offset from the newest segment: TTL must never take it. Once a newer
    // segment exists, this one has no expiry and is deleted by a pass when past retention ('delete').
    if (late()) return nothing(false, true);
    if (await log.setSegmentExpiry(key, partition, tail.base, undefined)) protectedTails++;
  }
  const actionOf = (s: SegmentKey): Action => (s.base >= tail.base ? 'stop' : retentionAction(s, retentionHours, cutoff));
  // The steady state: the oldest segment is TTL's (or still kept), and so is everything after it.
  if (actionOf(oldest) === 'stop') return { ...nothing(true, true), protected: protectedTails };
  const walked = await walkOldest(
    log,
    key,
    partition,
    oldest.base,
    actionOf,
    (s) => segmentExpiry(s.producedAt, retentionHours),
    late,
  );
  return { ...walked, protected: protectedTails };
}

/**
 * Forgets a grave whose pass found no segment in any partition, after a strongly consistent look
 * (the listing is eventually consistent). A produce from a cached copy of the topic that wrote during
 * the pass that emptied the log is found by the next pass, which then deletes it instead.
 */
async function forgetIfEmpty(stores: Stores, topic: Topic): Promise<boolean> {
  const key = topicKeyOf(topic);
  for (let p = 0; p < topic.partitions; p++) if (await stores.log.head(key, p)) return false;
  await stores.catalog.forgetBuriedTopic(topic);
  return true;
}

/**
 * Runs the partitions of `works`, in order, `concurrency` at a time, until done or the deadline.
 * An error in one partition does not stop the others; the first is thrown at the end (after `settle`).
 */
async function runPass(
  stores: Stores,
  works: readonly Work[],
  now: number,
  options: PassOptions,
  settle: (result: PassResult, lastStarted: Work | undefined) => Promise<void> = async () => {},
): Promise<PassResult> {
  const deadline = options.deadline ?? Infinity;
  const clock = options.clock ?? Date.now;
  const late = () => clock() >= deadline;
  const units = works.flatMap((work, index) => Array.from({ length: work.topic.partitions }, (_, partition) => ({ index, partition })));
  const state = works.map((work) => ({ left: work.topic.partitions, finished: true, found: false }));
  const errors: unknown[] = [];
  let next = 0;
  let lastStarted = -1;
  let deleted = 0;
  let protectedTails = 0;
  let extended = 0;
  let forgotten = 0;

  const worker = async () => {
    while (next < units.length && !late()) {
      const { index, partition } = units[next++]!;
      const work = works[index]!;
      const s = state[index]!;
      lastStarted = Math.max(lastStarted, index);
      try {
        const out = await trimPartition(stores, work, partition, now, late);
        deleted += out.deleted;
        protectedTails += out.protected;
        extended += out.extended;
        s.found ||= out.found;
        if (!out.finished) s.finished = false;
        if (--s.left === 0 && work.buried && s.finished && !s.found && (await forgetIfEmpty(stores, work.topic))) forgotten++;
      } catch (error) {
        s.finished = false;
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? RETENTION_CONCURRENCY) }, worker));

  const complete = next === units.length && errors.length === 0 && state.every((s) => s.finished);
  const result = { deleted, protected: protectedTails, extended, complete, topics: works.length, started: lastStarted + 1, forgotten };
  try {
    await settle(result, lastStarted >= 0 ? works[lastStarted] : undefined);
  } catch (error) {
    errors.push(error);
  }
  if (errors.length > 0) throw errors[0];
  return result;
}

/** Trims one live topic to its retention (no deadline); returns the number of segments deleted. */
export async function trimTopic(stores: Stores, topicName: string, now = Date.now()): Promise<number> {
  const topic = await stores.catalog.getTopic(topicName);
  if (!topic) return 0;
  return (await runPass(stores, [{ topic, buried: false }], now, {})).deleted;
}

/**
 * Deletes the log of a deleted topic incarnation, and forgets the incarnation once a pass finds
 * nothing of its log left. Segments a produce still wrote from a cached copy of the topic (up to 1 s
 * after the delete began) go the same way.
 */
export async function clearBuriedTopic(stores: Stores, topic: Topic, options: PassOptions = {}): Promise<number> {
  return (await runPass(stores, [{ topic, buried: true }], Date.now(), options)).deleted;
}

/**
 * One retention pass over every topic and grave, starting after the one the last unfinished pass
 * started last, until done or `options.deadline`. `now` is the retention clock (tests move it on);
 * the deadline is wall-clock time.
 */
export async function trimAllTopics(stores: Stores, now = Date.now(), options: PassOptions = {}): Promise<PassResult> {
  const [topics, graves, cursor] = await Promise.all([
    stores.catalog.listTopics(),
    stores.catalog.listBuriedTopics(),
    stores.catalog.getRetentionCursor(),
  ]);
  const all: Work[] = [...topics.map((topic) => ({ topic, buried: false })), ...graves.map((topic) => ({ topic, buried: true }))];
  all.sort((a, b) => compareKeys(topicKeyOf(a.topic), topicKeyOf(b.topic)));
  // Rotate: start with the first topic after the cursor (wrapping), so an unfinished pass hands on.
  let start = cursor === undefined ? 0 : all.findIndex((w) => compareKeys(topicKeyOf(w.topic), cursor) > 0);
  if (start < 0) start = 0;
  const works = [...all.slice(start), ...all.slice(0, start)];
  return runPass(stores, works, now, options, async (result, lastStarted) => {
    // A complete pass leaves the cursor: where the next one starts does not matter then.
    if (!result.complete && lastStarted) await stores.catalog.putRetentionCursor(topicKeyOf(lastStarted.topic));
  });
}
