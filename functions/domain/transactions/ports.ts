/**
 * What transactions need from the outside (functions/adapters/ implements each): the transactions'
 * storage, the timeout queue, the check-back state machine and the producer's check-back endpoint.
 */
import type { DedupEntry, SegmentWrite } from '../ports.js';
import type { CheckBackTarget, CheckRecord, CommitResult, DecidedBy, Transaction } from './model.js';

/** One partition's segment of a commit, with the producer-id records of its messages. */
export interface CommitSegment {
  readonly topicKey: string;
  readonly segment: SegmentWrite;
  readonly ids: readonly DedupEntry[];
}

export interface CommitDecision {
  readonly decidedBy: DecidedBy;
  readonly at: number;
  readonly results: readonly CommitResult[];
}

/** Thrown by TransactionStore.commit when the one DynamoDB transaction was cancelled. */
export class CommitCancelled extends Error {
  constructor(
    /** Another writer took one of the offsets: re-read the tails and try again. */
    readonly offsetTaken: boolean,
    /** Producer ids appended meanwhile by someone else, by topic key. */
    readonly idsTaken: ReadonlyArray<{ topicKey: string; id: string }>,
    /** The transaction was no longer prepared (decided by someone else). */
    readonly decided: boolean,
  ) {
    super('transaction commit cancelled');
  }
}

export interface TransactionStore {
  /** Stores a new prepared transaction (a retry after a lost reply is recognised as the same write). */
  create(tx: Transaction): Promise<void>;
  /** Strongly consistent. */
  get(id: string): Promise<Transaction | undefined>;
  /**
   * Writes every segment and producer-id record and marks the transaction committed, in one DynamoDB
   * transaction, only if it is still prepared and every offset and id is free. A retry of a commit that
   * was applied before its reply was lost counts as applied.
   */
  commit(id: string, segments: readonly CommitSegment[], idExpiresAt: number, decision: CommitDecision): Promise<void>;
  /** Marks a prepared transaction rolled back; returns the state it is in afterwards. */
  rollback(id: string, decidedBy: DecidedBy, at: number): Promise<'rolledBack' | 'committed' | 'missing'>;
  /** Records check `check.check` while the transaction is prepared (idempotent per check number). */
  recordCheck(id: string, check: CheckRecord): Promise<void>;
  /** The deployment's check-back signing secret, made on first use. */
  checkBackSecret(): Promise<string>;
}

/** Delays the start of check-back until a transaction's timeout (an SQS delay queue). */
export interface TimeoutQueue {
  /** The longest delay one message takes (SQS DelaySeconds: 900). */
  readonly maxDelaySeconds: number;
  send(id: string, delaySeconds: number): Promise<void>;
}

/** The check-back state machine (Step Functions). */
export interface CheckBackMachine {
  /** Starts the check-back of a transaction; idempotent (the execution is named after the transaction). */
  start(input: CheckBackInput): Promise<void>;
  /** Hands a check's outcome back to the waiting state (SendTaskSuccess); a token already answered is fine. */
  answer(taskToken: string, outcome: CheckOutcome): Promise<void>;
}

/** The state machine's input (lib/checkBack.ts reads these fields). */
export interface CheckBackInput {
  readonly id: string;
  readonly check: number;
  readonly maxChecks: number;
  readonly waitSeconds: number;
}

/** What a check hands back to the state machine: the transaction's state after it. */
export interface CheckOutcome {
  readonly state: 'prepared' | 'committed' | 'rolledBack';
}

export type CheckAnswer = { readonly answer: 'commit' | 'rollback' | 'unknown' } | { readonly answer: 'error'; readonly reason: string };

/** Asks the producer's check-back endpoint (signed HTTPS POST or Lambda invoke). */
export interface CheckBackCaller {
  ask(target: CheckBackTarget, signingSecret: string, requestId: string, payload: string): Promise<CheckAnswer>;
}

export interface TransactionPorts {
  readonly transactions: TransactionStore;
  readonly timeouts: TimeoutQueue;
  readonly machine: CheckBackMachine;
  readonly caller: CheckBackCaller;
}
