import type { Transaction } from '../domain/transactions/model.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** GET /v1/transactions/{id} (API.md "Transactions"): state, checks and who decided. */
export function transactionView(tx: Transaction) {
  return {
    id: tx.id,
    state: tx.state,
    createdAt: iso(tx.createdAt),
    expiresAt: iso(tx.expiresAt),
    ...(tx.checkBack ? { checkBack: tx.checkBack } : {}),
    maxChecks: tx.maxChecks,
    checkIntervalSeconds: tx.checkIntervalSeconds,
    checks: tx.checks.map((c) => ({ check: c.check, at: iso(c.at), answer: c.answer, ...(c.reason !== undefined ? { reason: c.reason } : {}) })),
    ...(tx.state === 'prepared' ? { messages: tx.messages.map((m) => ({ topic: m.topic, partition: m.partition, ...(m.record.i !== undefined ? { id: m.record.i } : {}), ...(m.record.k !== undefined ? { key: m.record.k } : {}) })) } : {}),
    ...(tx.decidedBy ? { decidedBy: tx.decidedBy } : {}),
    ...(tx.decidedAt !== undefined ? { decidedAt: iso(tx.decidedAt) } : {}),
    ...(tx.results ? { results: tx.results } : {}),
  };
}
