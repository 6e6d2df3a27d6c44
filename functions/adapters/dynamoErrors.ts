/** Classifies DynamoDB condition failures, so stores can turn them into domain errors. */
export const isConditionFailure = (error: unknown) =>
  error instanceof Error && error.name === 'ConditionalCheckFailedException';

/** Cancellation reason codes of a TransactWriteItems, in action order; undefined for other errors. */
export function cancellationCodes(error: unknown): string[] | undefined {
  if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') return undefined;
  const reasons = (error as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons ?? [];
  return reasons.map((r) => r.Code ?? 'None');
}

/** A transaction that lost to a concurrent one is safe to retry from a fresh read. */
export const isTransactionConflict = (error: unknown) =>
  error instanceof Error && (error.name === 'TransactionConflictException' || (cancellationCodes(error) ?? []).includes('TransactionConflict'));
