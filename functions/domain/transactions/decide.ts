import { SluiceError } from '../errors.js';
import { serverMessageId } from '../ids.js';
import { topicKeyOf, topicNameOf, type DedupEntry, type Stores } from '../ports.js';
import { rememberedUntil, segmentExpiry } from '../log/expiry.js';
import { sleep } from '../time.js';
import type { CommitResult, DecidedBy, Transaction } from './model.js';
import { CommitCancelled, type CommitDecision, type CommitSegment, type TransactionStore } from './ports.js';
import { segmentPlan } from './segments.js';

export const transactionNotFound = (id: string) => new SluiceError('TransactionNotFound', `Transaction '${id}' does not exist (or its record expired).`);

const conflict = (id: string, state: string) =>
  new SluiceError('Conflict', `Transaction '${id}' is ${state === 'rolledBack' ? 'rolled back' : state} already.`);

export async function requireTransaction(transactions: TransactionStore, id: string): Promise<Transaction> {
  const tx = await transactions.get(id);
  if (!tx) throw transactionNotFound(id);
  return tx;
}

/** Commit races (offsets taken by concurrent producers) back off with full jitter, as appends do. */
const BACKOFF_BASE_MS = 10;
const BACKOFF_CAP_MS = 500;
const MAX_ATTEMPTS = 100;

/**
 * Commits a prepared transaction: every message of every topic becomes visible in one DynamoDB
 * transaction (its segments, its producer-id records and the transaction's new state), or none does.
 * Idempotent: a committed transaction answers its stored results. Conflict when it was rolled back; when
 * one of its topics was deleted since prepare, it is rolled back (decidedBy topicDeleted) and Conflict.
 */
export async function commitTransaction(
  stores: Stores,
  transactions: TransactionStore,
  id: string,
  decidedBy: DecidedBy,
  deadline: number,
): Promise<Transaction> {
  let tx = await requireTransaction(transactions, id);
  const duplicates = new Map<number, CommitResult>();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (tx.state === 'committed') return tx;
    if (tx.state === 'rolledBack') throw conflict(id, tx.state);
    const { gone, retentionHours } = await topicsNow(stores, tx);
    if (gone) {
      const state = await transactions.rollback(id, 'topicDeleted', Date.now());
      if (state === 'committed') return requireTransaction(transactions, id);
      throw new SluiceError('Conflict', `Topic '${gone}' was deleted after transaction '${id}' was prepared: the transaction is rolled back.`);
    }
    const attemptResult = await tryCommit(stores, transactions, tx, decidedBy, duplicates, retentionHours);
    if (typeof attemptResult === 'object') {
      // What the commit wrote, without reading it back (the stored item drops the prepared messages too).
      return { ...tx, state: 'committed', messages: [], decidedBy, decidedAt: attemptResult.at, results: attemptResult.results };
    }
    if (attemptResult === 'decided') {
      tx = await requireTransaction(transactions, id);
      continue;
    }
    const wait = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
    if (Date.now() + wait >= deadline) break;
    await sleep(wait);
  }
  throw new SluiceError('Throttled', `The partitions of transaction '${id}' are contended; retry the commit.`);
}

/**
 * The name of a topic of the transaction that no longer exists in the incarnation it was prepared for; else
 * each topic's retention now (its segments' expiry, and how long the commit's producer ids are remembered).
 */
async function topicsNow(stores: Stores, tx: Transaction): Promise<{ gone?: string; retentionHours: Map<string, number> }> {
  const retentionHours = new Map<string, number>();
  for (const topicKey of new Set(tx.messages.map((m) => m.topicKey))) {
    const name = topicNameOf(topicKey);
    const topic = await stores.catalog.getTopic(name);
    if (!topic || topic.deletingSince !== undefined || topicKeyOf(topic) !== topicKey) return { gone: name, retentionHours };
    retentionHours.set(topicKey, topic.retentionHours);
  }
  return { retentionHours };
}

async function tryCommit(
  stores: Stores,
  transactions: TransactionStore,
  tx: Transaction,
  decidedBy: DecidedBy,
  duplicates: Map<number, CommitResult>,
  retentionHours: ReadonlyMap<string, number>,
): Promise<CommitDecision | 'decided' | 'raced'> {
  const plan = segmentPlan(tx.messages, new Set(duplicates.keys()));
  // Where each partition ends now (strongly consistent); the commit's conditions catch any later writer.
  const tails = new Map<string, number>();
  await Promise.all(
    [...new Set(plan.map((s) => `${s.topicKey}#${s.partition}`))].map(async (key) => {
      const at = key.lastIndexOf('#');
      const tail = await stores.log.tail(key.slice(0, at), Number(key.slice(at + 1)));
      tails.set(key, tail ? tail.base + tail.count : 0);
    }),
  );
  const producedAt = Date.now();
  const results: (CommitResult | undefined)[] = tx.messages.map((_, i) => duplicates.get(i));
  const segments: CommitSegment[] = plan.map((s) => {
    const key = `${s.topicKey}#${s.partition}`;
    const base = tails.get(key)!;
    tails.set(key, base + s.indexes.length);
    const ids: DedupEntry[] = [];
    s.indexes.forEach((index, i) => {
      const m = tx.messages[index]!;
      const offset = base + i;
      if (m.record.i !== undefined) ids.push({ id: m.record.i, partition: s.partition, offset });
      results[index] = { topic: m.topic, id: m.record.i ?? serverMessageId(producedAt, s.partition, offset), partition: s.partition, offset };
    });
    const expiresAt = segmentExpiry(producedAt, retentionHours.get(s.topicKey)!);
    return { topicKey: s.topicKey, segment: { partition: s.partition, base, producedAt, records: s.indexes.map((i) => tx.messages[i]!.record), expiresAt }, ids };
  });
  // As produce does: the dedup window, or the longest retention of the transaction's topics if longer.
  const idExpiresAt = rememberedUntil(producedAt, Math.max(...retentionHours.values()));
  try {
    const decision: CommitDecision = { decidedBy, at: producedAt, results: results.map((r) => r!) };
    await transactions.commit(tx.id, segments, idExpiresAt, decision);
    return decision;
  } catch (error) {
    if (!(error instanceof CommitCancelled)) throw error;
    if (error.decided) return 'decided';
    if (error.idsTaken.length > 0) await markDuplicates(stores, tx, error.idsTaken, duplicates);
    return 'raced';
  }
}

/** Producer ids appended outside the transaction meanwhile: those messages answer with the original place. */
async function markDuplicates(
  stores: Stores,
  tx: Transaction,
  taken: ReadonlyArray<{ topicKey: string; id: string }>,
  duplicates: Map<number, CommitResult>,
) {
  for (const topicKey of new Set(taken.map((t) => t.topicKey))) {
    const found = await stores.dedup.getMany(
      topicKey,
      taken.filter((t) => t.topicKey === topicKey).map((t) => t.id),
    );
    tx.messages.forEach((m, index) => {
      const seen = m.topicKey === topicKey && m.record.i !== undefined ? found.get(m.record.i) : undefined;
      if (seen) duplicates.set(index, { topic: m.topic, id: seen.id, partition: seen.partition, offset: seen.offset, duplicate: true });
    });
  }
}

/** Rolls a prepared transaction back; idempotent. Conflict when it was committed. */
export async function rollbackTransaction(transactions: TransactionStore, id: string, decidedBy: DecidedBy): Promise<Transaction> {
  const state = await transactions.rollback(id, decidedBy, Date.now());
  if (state === 'missing') throw transactionNotFound(id);
  if (state === 'committed') throw conflict(id, state);
  return requireTransaction(transactions, id);
}
