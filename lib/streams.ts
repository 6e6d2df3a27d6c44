/**
 * The functions that consume a table's DynamoDB stream, declared once: the stack creates each event
 * source mapping from this list, and the local runtime runs a stream poller per entry.
 */
import type { TableId } from './tables.js';

export interface StreamConsumerSpec {
  /** A table of lib/tables.ts declared with a `stream`. */
  readonly table: TableId;
  /** The consuming function's handler name (lib/routes.ts). */
  readonly handler: string;
  readonly startingPosition: 'TRIM_HORIZON' | 'LATEST';
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  /** A batch that keeps failing is retried this often, then skipped (its records reach the consumer's failure log). */
  readonly maximumRetryAttempts: number;
  readonly reportBatchItemFailures: boolean;
}

export const STREAMS = [
  {
    table: 'Log',
    handler: 'dispatchPush',
    startingPosition: 'LATEST',
    batchSize: 100,
    maxBatchingWindowSeconds: 0,
    maximumRetryAttempts: 10,
    reportBatchItemFailures: true,
  },
] as const satisfies readonly StreamConsumerSpec[];
