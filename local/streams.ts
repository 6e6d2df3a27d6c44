import { STREAMS } from '../lib/streams.js';
import { TABLES, type TableId, type TableSpec } from '../lib/tables.js';
import { STREAM_HANDLERS } from './handlers.js';
import { startStreamPoller, type StartingPosition, type StreamFailureRecord, type StreamHandler, type StreamPoller } from './streamPoller.js';
import { localTableName } from './tables.js';
import type { DynamoDBRecord } from 'aws-lambda';

/**
 * A function that consumes a table's DynamoDB stream: what the stack's event source mapping would say
 * (CDK's DynamoEventSource props, by their API names).
 */
export interface StreamConsumerSpec {
  /** A table of lib/tables.ts declared with a `stream`. */
  readonly table: TableId;
  /** The function's handler name: its timeout (lib/routes.ts) and its module (local/handlers.ts STREAM_HANDLERS). */
  readonly handler: string;
  readonly startingPosition?: StartingPosition;
  readonly batchSize?: number;
  readonly maxBatchingWindowSeconds?: number;
  readonly maximumRetryAttempts?: number;
  readonly maximumRecordAgeSeconds?: number;
  readonly reportBatchItemFailures?: boolean;
}

/** The stream consumers `npm start` runs: the same list the stack builds its event source mappings from. */
export const STREAM_CONSUMERS: readonly StreamConsumerSpec[] = STREAMS;

export interface StreamConsumerOptions {
  /** Handlers to run instead of the consumers' own modules, by handler name (tests). */
  readonly handlers?: Partial<Record<string, StreamHandler>>;
  /** Seconds, instead of the timeouts lib/routes.ts declares, by handler name. */
  readonly timeoutSeconds?: Partial<Record<string, number>>;
  /** Ms a shard's reader sleeps after an empty read (local/streamPoller.ts DEFAULT_STREAM_IDLE_POLL_MS). */
  readonly idlePollMs?: number;
  /** Ms between retries of a failed batch. */
  readonly retryDelayMs?: number;
  /** The on-failure destination of every consumer (logged by default). */
  readonly onFailure?: (failure: StreamFailureRecord, records: readonly DynamoDBRecord[]) => void | Promise<void>;
  readonly log?: (line: string) => void;
}

/**
 * Starts a stream poller per consumer, on the local table of its `table` (prefix "<prefix>-<Id>"), invoking its
 * handler (loaded from STREAM_HANDLERS unless given) with the consumer's event source settings.
 */
export async function startStreamConsumers(
  prefix: string,
  consumers: readonly StreamConsumerSpec[] = STREAM_CONSUMERS,
  options: StreamConsumerOptions = {},
): Promise<StreamPoller[]> {
  const pollers: StreamPoller[] = [];
  try {
    for (const consumer of consumers) {
      const table = (TABLES as readonly TableSpec[]).find((t) => t.id === consumer.table);
      if (!table?.stream) throw new Error(`Stream consumer ${consumer.handler}: table ${consumer.table} is not declared with a stream in lib/tables.ts.`);
      const name = consumer.handler;
      const own = options.handlers?.[name];
      const module = STREAM_HANDLERS[name];
      if (!own && !module) throw new Error(`Stream consumer ${name} has no entry in local/handlers.ts STREAM_HANDLERS.`);
      const { table: _table, handler: _handler, ...settings } = consumer;
      pollers.push(
        await startStreamPoller({
          tableName: localTableName(prefix, table),
          functionName: name,
          ...(own ? { handler: own } : { load: async () => (await module!()).handler }),
          ...settings,
          ...(options.timeoutSeconds?.[name] !== undefined ? { timeoutSeconds: options.timeoutSeconds[name] } : {}),
          ...(options.idlePollMs !== undefined ? { idlePollMs: options.idlePollMs } : {}),
          ...(options.retryDelayMs !== undefined ? { retryDelayMs: options.retryDelayMs } : {}),
          ...(options.onFailure ? { onFailure: options.onFailure } : {}),
          ...(options.log ? { log: options.log } : {}),
        }),
      );
    }
  } catch (error) {
    for (const poller of pollers) await poller.stop();
    throw error;
  }
  return pollers;
}
