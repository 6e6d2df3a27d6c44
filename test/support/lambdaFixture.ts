/**
 * A user's subscriber module, as a functions file (sluice.functions.json, SLUICE_LOCAL_FUNCTIONS) registers it:
 * test/integration/localLambda.test.ts loads it through the local Lambda endpoint with a dynamic import.
 */
import type { Context } from 'aws-lambda';

export const loadedAt = Date.now();

/** Answers what it got and what its context said, and fails the records whose body says so (SQS-style batchItemFailures). */
export async function handler(event: { records?: Array<{ id: string; fail?: boolean }> }, context: Context) {
  return {
    got: event,
    loadedAt,
    functionName: context.functionName,
    invokedFunctionArn: context.invokedFunctionArn,
    remainingMs: context.getRemainingTimeInMillis(),
    batchItemFailures: (event.records ?? []).filter((r) => r.fail).map((r) => ({ itemIdentifier: r.id })),
  };
}

export async function broken(): Promise<never> {
  throw new RangeError('the subscriber broke');
}

export const notAFunction = 42;
