import { SluiceError } from '../errors.js';
import type { Stores } from '../ports.js';
import { sleep } from '../time.js';
import { commitTransaction, rollbackTransaction } from './decide.js';
import type { CheckRecord, Transaction } from './model.js';
import type { CheckAnswer, CheckOutcome, TransactionPorts } from './ports.js';

/** A timeout message may arrive this much early (SQS delays are whole seconds): it waits out the rest. */
const EARLY_MS = 1000;

export type TimeoutOutcome = 'missing' | 'decided' | 'requeued' | 'started' | 'rolledBack';

/**
 * The timeout queue's consumer. A transaction still prepared at its timeout gets its check-back started
 * (one state machine execution, named after the transaction, so a duplicate timeout message starts
 * nothing new); one without a check-back is rolled back. A timeout further out than one queue delay
 * (SQS: 15 minutes) comes back here in hops until it is due.
 */
export async function onTransactionTimeout(ports: TransactionPorts, id: string, now = Date.now()): Promise<TimeoutOutcome> {
  const tx = await ports.transactions.get(id);
  if (!tx) return 'missing';
  if (tx.state !== 'prepared') return 'decided';
  const remainingMs = tx.expiresAt - now;
  if (remainingMs > EARLY_MS) {
    await ports.timeouts.send(id, Math.min(Math.ceil(remainingMs / 1000), ports.timeouts.maxDelaySeconds));
    return 'requeued';
  }
  if (remainingMs > 0) await sleep(remainingMs);
  if (!tx.checkBack) {
    await ports.transactions.rollback(id, 'timeout', Date.now());
    return 'rolledBack';
  }
  await ports.machine.start({ id, check: 1, maxChecks: tx.maxChecks, waitSeconds: tx.checkIntervalSeconds });
  return 'started';
}

/** A request of the check-back state machine: ask the producer (check n), or give up after maxChecks. */
export interface CheckRequest {
  readonly id: string;
  readonly check: number;
  readonly taskToken: string;
  readonly giveUp?: boolean;
}

/** What the producer's endpoint receives (API.md "Transactions"). */
export function checkPayload(tx: Transaction, check: number): string {
  return JSON.stringify({
    id: tx.id,
    check,
    messages: tx.messages.map((m) => ({ topic: m.topic, ...(m.record.i !== undefined ? { id: m.record.i } : {}), ...(m.record.k !== undefined ? { key: m.record.k } : {}) })),
  });
}

/**
 * One step of the check-back loop, for the state machine's waiting task: asks the producer and applies
 * its decision (or, on `giveUp`, rolls back: decidedBy checkLimit), records the check, and hands the
 * transaction's state back to the state machine. Safe to run twice for one request (SQS delivers at least
 * once): the check is recorded by number, commit and rollback are idempotent, and a task token answered
 * already is ignored. A failure before the answer leaves the request on the queue to be tried again.
 */
export async function runCheck(stores: Stores, ports: TransactionPorts, request: CheckRequest, deadline: number): Promise<CheckOutcome> {
  const tx = await ports.transactions.get(request.id);
  let state: CheckOutcome['state'] = tx?.state ?? 'rolledBack';
  if (tx && tx.state === 'prepared') {
    if (request.giveUp || !tx.checkBack) {
      state = await settled(() => rollbackTransaction(ports.transactions, tx.id, request.giveUp ? 'checkLimit' : 'timeout'));
    } else {
      const secret = 'url' in tx.checkBack ? await ports.transactions.checkBackSecret() : '';
      const answer: CheckAnswer = await ports.caller.ask(tx.checkBack, secret, `${tx.id}.${request.check}`, checkPayload(tx, request.check));
      const check: CheckRecord = { check: request.check, at: Date.now(), answer: answer.answer, ...('reason' in answer ? { reason: answer.reason } : {}) };
      await ports.transactions.recordCheck(tx.id, check);
      if (answer.answer === 'commit') state = await settled(() => commitTransaction(stores, ports.transactions, tx.id, 'checkBack', deadline));
      else if (answer.answer === 'rollback') state = await settled(() => rollbackTransaction(ports.transactions, tx.id, 'checkBack'));
      else state = 'prepared';
    }
  }
  const outcome: CheckOutcome = { state };
  await ports.machine.answer(request.taskToken, outcome);
  return outcome;

  /** The state after a decision; when someone else decided first (Conflict), the state they left. */
  async function settled(decide: () => Promise<Transaction>): Promise<CheckOutcome['state']> {
    try {
      return (await decide()).state;
    } catch (error) {
      if (error instanceof SluiceError && error.code === 'Conflict') return (await ports.transactions.get(request.id))?.state ?? 'rolledBack';
      throw error;
    }
  }
}
