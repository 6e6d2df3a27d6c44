/**
 * In-memory implementations of the transaction ports (functions/domain/transactions/ports.ts), for the fast
 * tests of transactions (test/unit/domain/transactions.test.ts) and for mutation testing. The store keeps the
 * DynamoDB adapter's conditional semantics (functions/adapters/transactionStore.ts):
 * - commit is one all-or-nothing step over the transaction (only while prepared), its segments (each only at a
 *   free base) and its producer-id records (each only when none is remembered, or the remembered one expired);
 *   any failed condition cancels all of it with CommitCancelled(offsetTaken, idsTaken, decided). The segments
 *   and ids land in the log and dedup maps of test/memory/stores.ts, so reads and produces see them;
 * - rollback marks a prepared transaction rolled back and answers the state it is in afterwards;
 * - recordCheck sets check n while the transaction is prepared (a second record of n replaces the first);
 * - a decided transaction no longer carries its messages (the adapter removes them at the decision);
 * - the check-back secret is made once.
 * The timeout queue and the state machine record what they were asked; the caller answers from a script.
 */
import { newSigningSecret } from '../../functions/domain/ids.js';
import type { CheckBackTarget, CheckRecord, DecidedBy, Transaction } from '../../functions/domain/transactions/model.js';
import {
  CommitCancelled,
  type CheckAnswer,
  type CheckBackCaller,
  type CheckBackInput,
  type CheckBackMachine,
  type CheckOutcome,
  type CommitDecision,
  type CommitSegment,
  type TimeoutQueue,
  type TransactionPorts,
  type TransactionStore,
} from '../../functions/domain/transactions/ports.js';
import type { MemoryStores } from './stores.js';

const copy = <T>(value: T): T => structuredClone(value);

/** Every call the transaction ports received, in order ("timeouts.send", "transactions.create", …). */
export type TxCallLog = string[];

export class MemoryTransactionStore implements TransactionStore {
  /** Stored transactions by id, as the table holds them (checks kept in order of their number). */
  readonly items = new Map<string, Transaction>();
  secret: string | undefined;
  /** How many secrets were made (once per deployment). */
  secretsMade = 0;
  /**
   * Runs at the start of each commit, before its conditions are checked: a test makes a concurrent writer
   * (a produce, a rollback) take its place here. `attempt` counts the commits of this store from 0.
   */
  beforeCommit: ((attempt: number) => void | Promise<void>) | undefined;
  /** Runs after each read, before the reader gets its copy: what another process does meanwhile. */
  afterGet: ((tx: Transaction | undefined) => void | Promise<void>) | undefined;
  private commits = 0;

  constructor(
    private readonly stores: MemoryStores,
    private readonly calls: TxCallLog,
  ) {}

  async create(tx: Transaction) {
    this.calls.push('transactions.create');
    const stored = this.items.get(tx.id);
    if (stored) {
      // attribute_not_exists(pk): only a retry of the same write is accepted.
      if (JSON.stringify(stored) === JSON.stringify(tx)) return;
      throw new Error(`ConditionalCheckFailed: transaction ${tx.id} exists`);
    }
    this.items.set(tx.id, copy(tx));
  }

  async get(id: string) {
    this.calls.push('transactions.get');
    const tx = this.items.get(id);
    const read = tx ? copy(tx) : undefined;
    await this.afterGet?.(read);
    return read;
  }

  async commit(id: string, segments: readonly CommitSegment[], idExpiresAt: number, decision: CommitDecision) {
    this.calls.push('transactions.commit');
    await this.beforeCommit?.(this.commits++);
    const nowSeconds = Math.floor(decision.at / 1000);
    // One DynamoDB transaction may not touch an item twice.
    const segmentKeys = segments.map((s) => `${s.topicKey}#${s.segment.partition}#${s.segment.base}`);
    const idKeys = segments.flatMap((s) => s.ids.map((e) => `${s.topicKey}#${e.id}`));
    if (new Set(segmentKeys).size !== segmentKeys.length || new Set(idKeys).size !== idKeys.length) {
      throw new Error('ValidationException: Transaction request cannot include multiple operations on one item');
    }
    // Every condition is checked before anything is written.
    const tx = this.items.get(id);
    const decided = tx?.state !== 'prepared';
    const offsetTaken = segments.some((s) => (this.stores.log.partitions.get(`${s.topicKey}#${s.segment.partition}`) ?? []).some((x) => x.base === s.segment.base));
    const idsTaken = segments.flatMap((s) =>
      s.ids
        .filter((e) => {
          const stored = this.stores.dedup.ids.get(`${s.topicKey}#${e.id}`);
          return stored !== undefined && !(stored.exp < nowSeconds);
        })
        .map((e) => ({ topicKey: s.topicKey, id: e.id })),
    );
    if (decided || offsetTaken || idsTaken.length > 0) throw new CommitCancelled(offsetTaken, idsTaken, decided);
    for (const s of segments) {
      this.stores.log.store(s.topicKey, s.segment);
      for (const e of s.ids) this.stores.dedup.ids.set(`${s.topicKey}#${e.id}`, { ...copy(e), exp: idExpiresAt });
    }
    this.items.set(id, { ...tx!, state: 'committed', messages: [], decidedBy: decision.decidedBy, decidedAt: decision.at, results: copy(decision.results) });
  }

  async rollback(id: string, decidedBy: DecidedBy, at: number): Promise<'rolledBack' | 'committed' | 'missing'> {
    this.calls.push('transactions.rollback');
    const tx = this.items.get(id);
    if (!tx) return 'missing';
    if (tx.state !== 'prepared') return tx.state;
    this.items.set(id, { ...tx, state: 'rolledBack', messages: [], decidedBy, decidedAt: at });
    return 'rolledBack';
  }

  async recordCheck(id: string, check: CheckRecord) {
    this.calls.push('transactions.recordCheck');
    const tx = this.items.get(id);
    // Decided (or gone) meanwhile: its checks no longer change.
    if (tx?.state !== 'prepared') return;
    const checks = [...tx.checks.filter((c) => c.check !== check.check), copy(check)].sort((a, b) => a.check - b.check);
    this.items.set(id, { ...tx, checks });
  }

  async checkBackSecret() {
    this.calls.push('transactions.checkBackSecret');
    if (this.secret === undefined) {
      this.secret = newSigningSecret();
      this.secretsMade++;
    }
    return this.secret;
  }
}

export class MemoryTimeoutQueue implements TimeoutQueue {
  readonly sent: Array<{ id: string; delaySeconds: number }> = [];
  /** Set to make the next sends fail (a queue outage). */
  failing: Error | undefined;

  constructor(
    private readonly calls: TxCallLog,
    readonly maxDelaySeconds = 900,
  ) {}

  async send(id: string, delaySeconds: number) {
    this.calls.push('timeouts.send');
    if (this.failing) throw this.failing;
    this.sent.push({ id, delaySeconds });
  }
}

export class MemoryCheckBackMachine implements CheckBackMachine {
  /** Executions by transaction id (the execution is named after it: a second start is the same execution). */
  readonly executions = new Map<string, CheckBackInput>();
  /** Every start call, new or not. */
  readonly starts: CheckBackInput[] = [];
  /** The first outcome handed back per task token (a token answered already ignores later answers). */
  readonly answers = new Map<string, CheckOutcome>();

  constructor(private readonly calls: TxCallLog) {}

  async start(input: CheckBackInput) {
    this.calls.push('machine.start');
    this.starts.push(copy(input));
    if (!this.executions.has(input.id)) this.executions.set(input.id, copy(input));
  }

  async answer(taskToken: string, outcome: CheckOutcome) {
    this.calls.push('machine.answer');
    if (!this.answers.has(taskToken)) this.answers.set(taskToken, copy(outcome));
  }
}

export interface Ask {
  readonly target: CheckBackTarget;
  readonly secret: string;
  readonly requestId: string;
  readonly payload: string;
}

/** Answers each ask with the next scripted answer (or throws it, for an Error); fails when the script is empty. */
export class ScriptedCaller implements CheckBackCaller {
  readonly asks: Ask[] = [];
  readonly script: Array<CheckAnswer | Error | ((ask: Ask) => Promise<CheckAnswer>)> = [];

  constructor(private readonly calls: TxCallLog) {}

  answer(...answers: Array<CheckAnswer | Error | ((ask: Ask) => Promise<CheckAnswer>)>) {
    this.script.push(...answers);
    return this;
  }

  async ask(target: CheckBackTarget, signingSecret: string, requestId: string, payload: string): Promise<CheckAnswer> {
    this.calls.push('caller.ask');
    const ask = { target: copy(target), secret: signingSecret, requestId, payload };
    this.asks.push(ask);
    const next = this.script.shift();
    if (next === undefined) throw new Error(`no scripted answer for ${requestId}`);
    if (next instanceof Error) throw next;
    return typeof next === 'function' ? next(ask) : next;
  }
}

export interface MemoryTransactionPorts extends TransactionPorts {
  readonly transactions: MemoryTransactionStore;
  readonly timeouts: MemoryTimeoutQueue;
  readonly machine: MemoryCheckBackMachine;
  readonly caller: ScriptedCaller;
  readonly calls: TxCallLog;
}

/** Transaction ports over `stores` (commits land in its log and dedup maps). */
export function memoryTransactionPorts(stores: MemoryStores, options: { timeoutMaxDelaySeconds?: number } = {}): MemoryTransactionPorts {
  const calls: TxCallLog = [];
  return {
    transactions: new MemoryTransactionStore(stores, calls),
    timeouts: new MemoryTimeoutQueue(calls, options.timeoutMaxDelaySeconds),
    machine: new MemoryCheckBackMachine(calls),
    caller: new ScriptedCaller(calls),
    calls,
  };
}
