import { topicKeyOf, type LogStore, type Stores, type Topic } from '../ports.js';

/**
 * Retention (docs/retention.md): deletes whole segments older than their topic's retention, oldest
 * first, never the newest segment of a partition (the next append learns its offset there, so offsets
 * never restart), and the whole log of a deleted ("buried") topic incarnation.
 *
 * A pass probes each partition's oldest segment, pages through the expired ones by key (no records),
 * deletes them 25 to a BatchWriteItem call, works on several partitions at once, and starts no
 * trimming call after its deadline (only the resume point is written after it).
 * A pass that stops early records the topic it started last; the next pass starts with the topic after
 * it, so every topic gets its turn however far behind one of them is. Within a partition nothing needs
 * remembering: deleted segments are gone, and the next pass starts again at the partition's oldest one.
 *
 * Every write is idempotent, so a retry of a call whose reply was lost (by the SDK, or by the next pass
 * after the handler died) changes nothing: a delete of a deleted key succeeds and does nothing, and the
 * key cannot come back (a partition's offsets only grow, and an incarnation's key is never reused).
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
  /** Reached the first segment to keep (or the end of the log) before the deadline. */
  readonly finished: boolean;
  /** Saw any segment at all. */
  readonly found: boolean;
}

const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Deletes the oldest segments of a partition while `doomed` says so, stopping at the first it refuses:
 * a partition's start offset is the base of its oldest segment, so trimming never leaves a hole.
 * Checks the deadline before every call.
 */
async function clearOldest(
  log: LogStore,
  key: string,
  partition: number,
  from: number,
  doomed: (segment: { base: number; producedAt: number }) => boolean,
  late: () => boolean,
): Promise<PartitionOutcome> {
  let deleted = 0;
  let found = false;
  for (;;) {
    if (late()) return { deleted, finished: false, found };
    const page = await log.segmentKeysFrom(key, partition, from, KEY_PAGE);
    found ||= page.length > 0;
    let expired = page.findIndex((s) => !doomed(s));
    if (expired < 0) expired = page.length;
    for (let i = 0; i < expired; i += DELETE_BATCH) {
      if (late()) return { deleted, finished: false, found };
      const bases = page.slice(i, Math.min(expired, i + DELETE_BATCH)).map((s) => s.base);
      await log.deleteSegments(key, partition, bases);
      deleted += bases.length;
    }
    if (expired < page.length || page.length < KEY_PAGE) return { deleted, finished: true, found };
    from = page[page.length - 1]!.base + 1;
  }
}

async function trimPartition(stores: Stores, work: Work, partition: number, now: number, late: () => boolean): Promise<PartitionOutcome> {
  const key = topicKeyOf(work.topic);
  if (work.buried) return clearOldest(stores.log, key, partition, 0, () => true, late);
  const unfinished = { deleted: 0, finished: false, found: false };
  if (late()) return unfinished;
  // A partition with nothing to trim (most of them, most of the time) costs one Query reading one item.
  const cutoff = now - work.topic.retentionHours * 3600 * 1000;
  const [oldest] = await stores.log.segmentKeysFrom(key, partition, 0, 1);
  if (!oldest || oldest.producedAt >= cutoff) return { deleted: 0, finished: true, found: oldest !== undefined };
  if (late()) return unfinished;
  // Strongly consistent: everything below the newest segment's base is surely not the newest.
  const tail = await stores.log.tail(key, partition);
  if (!tail) return { deleted: 0, finished: true, found: false };
  return clearOldest(stores.log, key, partition, oldest.base, (s) => s.base < tail.base && s.producedAt < cutoff, late);
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
  const result = { deleted, complete, topics: works.length, started: lastStarted + 1, forgotten };
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
