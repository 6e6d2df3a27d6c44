import { LIMITS } from '../limits.js';

/**
 * Transaction limits (docs/transactions.md, "Limits"), each with the AWS limit behind it.
 *
 * - A commit is one TransactWriteItems: 100 actions at most (the transaction's own item, one segment per
 *   300 KB of each partition touched, one record per producer id) and 4 MB in all.
 * - The prepared messages live in the transaction's own item until the decision, and a DynamoDB item
 *   holds 400 KB: 350 KB of encoded messages leaves room for the check history and the commit results.
 *   That item limit binds long before the 4 MB transaction limit does.
 */
export const TX = {
  maxMessages: 100,
  maxPreparedBytes: 350 * 1024,
  /** TransactWriteItems' action limit. */
  maxActions: 100,
  minTimeoutSeconds: 1,
  maxTimeoutSeconds: 86_400,
  defaultTimeoutSeconds: 60,
  minMaxChecks: 1,
  maxMaxChecks: 100,
  /** RocketMQ's default check count. */
  defaultMaxChecks: 15,
  minCheckIntervalSeconds: 1,
  /** Waits between checks double up to this (API.md). */
  maxCheckIntervalSeconds: 3600,
  defaultCheckIntervalSeconds: 10,
  /** Seconds the check-back endpoint has to answer one check. */
  checkTimeoutSeconds: 10,
  /** Decided transactions are kept this long for GET and idempotent commit / rollback answers. */
  keepDecidedSeconds: 7 * 24 * 3600,
  maxSegmentBytes: LIMITS.maxSegmentBytes,
} as const;
