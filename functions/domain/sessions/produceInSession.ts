import { rememberedUntil, segmentExpiry } from '../log/expiry.js';
import { LIMITS } from '../limits.js';
import { SluiceError } from '../errors.js';
import { serverMessageId } from '../ids.js';
import { SessionAppendCancelled, topicKeyOf, type SessionHead, type SegmentWrite, type Stores, type Topic } from '../ports.js';
import { sleep } from '../time.js';
import { backoffMs as appendBackoffMs, chunkForSegments, exclusivelyOn, idlePartition, offsetTaken, rememberTail, tailOf, type AppendedResult, type Pending } from '../log/append.js';
import { positionsOf, runsOf, type Position } from './runs.js';

/** A produce request's place in a producer session: the sequence number of its first message. */
export interface ProducerSession {
  readonly session: string;
  readonly sequence: number;
}

/**
 * A request whose first sequence is ahead of the session waits for the earlier requests of a pipelining
 * producer to land — as long as the session moves on at least once per this long (under contention the
 * earlier ones may take a while), within the request's deadline — then answers OutOfOrderSequence.
 */
const GAP_WAIT_MS = 5000;
/** The append's jittered backoff, capped at 500 ms: a session's requests follow each other, so a long wait delays every later one. */
const backoffMs = (attempt: number) => appendBackoffMs(attempt, 500);

/**
 * Produces the messages of one request of a producer session (docs/sessions.md). The messages carry
 * sequences `sequence` .. `sequence + n - 1`; the session's head says which sequence comes next. Those
 * below it landed before (a retry after a lost reply or a crash): they answer their original places,
 * `duplicate: true`, from the session's records. The rest are appended in ONE transaction with the
 * request's record and the head's move, so a crash or a lost reply can never leave messages without the
 * record that a retry finds them by — and a message costs its share of a segment and of two small items,
 * instead of an item per producer id.
 */
export async function produceInSession(
  stores: Stores,
  topic: Topic,
  pending: readonly Pending[],
  producer: ProducerSession,
  deadline: number,
): Promise<AppendedResult[]> {
  const topicKey = topicKeyOf(topic);
  const results: AppendedResult[] = new Array(pending.length);
  let waitForGapUntil = Math.min(deadline, Date.now() + GAP_WAIT_MS);
  // Optimistic: a producer's next request starts where the session is, so the first try reads nothing and
  // makes the head's move conditional on it; a failed condition returns the head, and the next try knows.
  let next = producer.sequence;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (producer.sequence > next) {
      // A session starts at sequence 0: a request ahead of it waits for the earlier ones (pipelining).
      const wait = backoffMs(attempt);
      if (Date.now() + wait >= waitForGapUntil) {
        throw new SluiceError(
          'OutOfOrderSequence',
          `Producer session '${producer.session}' expects sequence ${next} next, not ${producer.sequence}: send the messages from ${next} first (or start a new session).`,
        );
      }
      await sleep(wait);
      const moved = (await stores.sessions.head(topicKey, producer.session))?.next ?? 0;
      if (moved !== next) waitForGapUntil = Math.min(deadline, Date.now() + GAP_WAIT_MS);
      next = moved;
      continue;
    }
    const known = Math.min(pending.length, next - producer.sequence);
    if (known > 0) await answerLanded(stores, topicKey, producer, known, next, results);
    if (known === pending.length) return results;
    const outcome = await tryAppend(stores, topic, topicKey, producer, pending, known, results);
    if (outcome === 'appended') return results;
    if (outcome.headMoved) {
      next = outcome.head?.next ?? 0;
      continue;
    }
    const wait = backoffMs(attempt);
    if (Date.now() + wait >= deadline) break;
    await sleep(wait);
  }
  throw new SluiceError('Throttled', `Producer session '${producer.session}' of '${topic.name}' is contended; retry the request.`);
}

/** The first `known` messages landed before: their original places, from the session's records. */
async function answerLanded(stores: Stores, topicKey: string, producer: ProducerSession, known: number, next: number, results: AppendedResult[]) {
  const last = producer.sequence + known - 1;
  // A record covers at most one request's messages, so one that covers `sequence` starts at most that far back.
  const records = await stores.sessions.records(topicKey, producer.session, Math.max(0, producer.sequence - LIMITS.maxMessagesPerProduce + 1), last);
  const places = new Map<number, { position: Position; producedAt: number }>();
  for (const record of records) {
    for (const [sequence, position] of positionsOf(record)) places.set(sequence, { position, producedAt: record.producedAt });
  }
  for (let i = 0; i < known; i++) {
    const place = places.get(producer.sequence + i);
    if (!place) {
      throw new SluiceError(
        'OutOfOrderSequence',
        `Producer session '${producer.session}' no longer remembers sequence ${producer.sequence + i} (sessions remember their requests ${LIMITS.dedupWindowSeconds / 3600} h at least); its next sequence is ${next}.`,
      );
    }
    const [partition, offset] = place.position;
    results[i] = { id: serverMessageId(place.producedAt, partition, offset), partition, offset, duplicate: true };
  }
}

/** One try at appending messages `known` .. end at the partitions' tails, with the head at their first sequence. */
async function tryAppend(
  stores: Stores,
  topic: Topic,
  topicKey: string,
  producer: ProducerSession,
  pending: readonly Pending[],
  known: number,
  results: AppendedResult[],
): Promise<'appended' | { headMoved: boolean; head?: SessionHead }> {
  // Unkeyed messages go where no other request of this process is appending (as appendAll's do), and the
  // request waits for the partitions it writes instead of racing this process's other appends for their tails.
  const movable = pending.find((p) => p.movable);
  const quiet = movable ? idlePartition(topicKey, movable.partition, topic.partitions) : 0;
  const fresh = pending.slice(known).map((p) => (p.movable ? { ...p, partition: quiet } : p));
  return exclusivelyOn(topicKey, [...new Set(fresh.map((p) => p.partition))], () => appendFresh(stores, topic, topicKey, producer, fresh, known, results));
}

async function appendFresh(
  stores: Stores,
  topic: Topic,
  topicKey: string,
  producer: ProducerSession,
  fresh: readonly Pending[],
  known: number,
  results: AppendedResult[],
): Promise<'appended' | { headMoved: boolean; head?: SessionHead }> {
  const byPartition = new Map<number, Pending[]>();
  for (const p of fresh) byPartition.set(p.partition, [...(byPartition.get(p.partition) ?? []), p]);
  const partitions = [...byPartition.keys()];
  const bases = await Promise.all(partitions.map((partition) => tailOf(stores, topicKey, partition)));
  const producedAt = Date.now();
  const segments: SegmentWrite[] = [];
  const positionOf = new Map<number, Position>();
  const ends = new Map<number, number>();
  partitions.forEach((partition, i) => {
    let base = bases[i]!;
    for (const chunk of chunkForSegments(byPartition.get(partition)!)) {
      segments.push({ partition, base, producedAt, records: chunk.map((p) => p.record), expiresAt: segmentExpiry(producedAt, topic.retentionHours) });
      chunk.forEach((p, k) => positionOf.set(p.index, [partition, base + k]));
      base += chunk.length;
    }
    ends.set(partition, base);
  });
  const positions = fresh.map((p) => positionOf.get(p.index)!);
  try {
    await stores.sessions.append({
      topicKey,
      session: producer.session,
      segments,
      record: { first: producer.sequence + known, count: fresh.length, producedAt, runs: runsOf(positions) },
      expiresAt: rememberedUntil(producedAt, topic.retentionHours),
    });
  } catch (error) {
    if (!(error instanceof SessionAppendCancelled)) throw error;
    for (const [partition, endOfWinner] of error.offsetsTaken) offsetTaken(topicKey, partition, endOfWinner);
    return error.headMoved ? { headMoved: true, ...(error.head ? { head: error.head } : {}) } : { headMoved: false };
  }
  for (const [partition, end] of ends) rememberTail(topicKey, partition, end);
  fresh.forEach((_, i) => {
    const [partition, offset] = positions[i]!;
    results[known + i] = { id: serverMessageId(producedAt, partition, offset), partition, offset };
  });
  return 'appended';
}
