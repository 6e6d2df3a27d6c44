import type { StoredRecord } from '../messages.js';

/** API.md "Transactions": a transaction is prepared, then committed or rolled back, once. */
export type TransactionState = 'prepared' | 'committed' | 'rolledBack';

/**
 * Who decided: the producer (commit / rollback calls), its check-back endpoint, the check limit
 * (`maxChecks` answers without a decision), the timeout of a transaction without a check-back, or a
 * topic deleted while the transaction was prepared.
 */
export type DecidedBy = 'producer' | 'checkBack' | 'checkLimit' | 'timeout' | 'topicDeleted';

export type CheckBackTarget = { readonly url: string } | { readonly functionArn: string };

/** A prepared message: where it will go, decided at prepare so the commit's size is known up front. */
export interface PreparedMessage {
  readonly topic: string;
  /** The topic's incarnation at prepare: a topic deleted (and maybe re-created) since never gets it. */
  readonly topicKey: string;
  readonly partition: number;
  readonly record: StoredRecord;
}

/** One check-back: its number, when it was asked, and the answer (or why there was none). */
export interface CheckRecord {
  readonly check: number;
  readonly at: number;
  readonly answer: 'commit' | 'rollback' | 'unknown' | 'error';
  readonly reason?: string;
}

export interface CommitResult {
  readonly topic: string;
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
  readonly duplicate?: true;
}

export interface Transaction {
  readonly id: string;
  readonly state: TransactionState;
  readonly messages: readonly PreparedMessage[];
  readonly createdAt: number;
  /** When check-back starts if the producer has not decided (createdAt + timeoutSeconds). */
  readonly expiresAt: number;
  readonly checkBack?: CheckBackTarget;
  readonly maxChecks: number;
  readonly checkIntervalSeconds: number;
  readonly checks: readonly CheckRecord[];
  readonly decidedBy?: DecidedBy;
  readonly decidedAt?: number;
  /** Where each message landed, in prepare order (committed transactions). */
  readonly results?: readonly CommitResult[];
}
