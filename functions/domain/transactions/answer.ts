import type { CheckAnswer } from './ports.js';

const DECISIONS = new Set(['commit', 'rollback', 'unknown']);

/** Longest reason kept from a check-back's failure (it is shown by GET /v1/transactions/{id}). */
const MAX_REASON = 200;

const error = (reason: string): CheckAnswer => ({ answer: 'error', reason: reason.slice(0, MAX_REASON) });

/** The decision in a check-back reply's JSON: `{"decision": "commit" | "rollback" | "unknown"}` (API.md). */
export function decisionOf(reply: unknown): CheckAnswer {
  const decision = reply !== null && typeof reply === 'object' ? (reply as { decision?: unknown }).decision : undefined;
  if (typeof decision === 'string' && DECISIONS.has(decision)) return { answer: decision as 'commit' | 'rollback' | 'unknown' };
  return error(`the reply has no "decision" of commit, rollback or unknown`);
}

/** An HTTP check-back reply: a 2xx whose JSON body carries the decision; anything else is an error (asked again). */
export function httpCheckAnswer(status: number, text: string): CheckAnswer {
  if (status < 200 || status > 299) return error(`endpoint answered ${status}`);
  try {
    return decisionOf(JSON.parse(text));
  } catch {
    return error('the reply is not JSON');
  }
}

/** A Lambda check-back reply: the function's result, unless it failed (FunctionError). */
export function lambdaCheckAnswer(functionError: string | undefined, payload: unknown): CheckAnswer {
  if (functionError) return error(`function error: ${functionError}`);
  return decisionOf(payload);
}
