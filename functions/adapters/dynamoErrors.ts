import { randomBytes } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

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

/**
 * Write tokens make every conditional write recognisable as the caller's own on a retry (DESIGN.md
 * invariant 5): the item carries `w`, and a condition failure asked with ReturnValuesOnConditionCheckFailure
 * ALL_OLD returns the stored item, whose `w` says whether the "conflicting" write was this one.
 */
export const newWriteToken = () => randomBytes(8).toString('base64url');

type RawItem = Record<string, AttributeValue> | undefined;

/** The stored item a ConditionalCheckFailedException carries (ALL_OLD), in wire form. */
export const failedItem = (error: unknown): RawItem => (error as { Item?: RawItem }).Item;

/** The stored item of one action of a cancelled transaction (ALL_OLD on that action), in wire form. */
export const cancellationItem = (error: unknown, index: number): RawItem =>
  (error as { CancellationReasons?: Array<{ Item?: RawItem }> }).CancellationReasons?.[index]?.Item;

export const writtenBy = (item: RawItem, token: string) => item?.w?.S === token;
