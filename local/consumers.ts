import { QUEUES, type QueueId, type QueueSpec } from '../lib/queues.js';
import { QUEUE_HANDLERS } from './handlers.js';
import type { QueueUrls } from './queues.js';
import { startSqsPoller, type SqsHandler, type SqsPoller } from './sqsPoller.js';

export interface QueueConsumerOptions {
  /** Concurrent batches per queue; SLUICE_SQS_POLLERS, else 2. */
  readonly concurrency?: number;
  /** Handlers to run instead of the consumers' own modules, by handler name (tests). */
  readonly handlers?: Partial<Record<string, SqsHandler>>;
  /** Seconds, instead of the timeouts lib/routes.ts declares, by handler name. */
  readonly timeoutSeconds?: Partial<Record<string, number>>;
  /** ReceiveMessage's WaitTimeSeconds; 20 by default. */
  readonly waitTimeSeconds?: number;
  readonly log?: (line: string) => void;
}

/** Concurrent batches per queue when nothing says otherwise. */
export const DEFAULT_POLLERS = 2;

export function pollersFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SLUICE_SQS_POLLERS;
  if (raw === undefined || raw === '') return DEFAULT_POLLERS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error(`SLUICE_SQS_POLLERS must be an integer 1..100, not '${raw}'.`);
  return n;
}

/**
 * Starts the event source of every queue of lib/queues.ts: a poller that invokes the queue's consumer
 * (`consumer.handler`, loaded from local/handlers.ts QUEUE_HANDLERS) with the batch size and window the
 * stack gives its event source mapping.
 */
export async function startQueueConsumers(urls: QueueUrls, options: QueueConsumerOptions = {}): Promise<SqsPoller[]> {
  const pollers: SqsPoller[] = [];
  try {
    for (const spec of QUEUES as readonly QueueSpec[]) {
      const name = spec.consumer.handler;
      const own = options.handlers?.[name];
      const module = QUEUE_HANDLERS[name];
      if (!own && !module) throw new Error(`Queue ${spec.id}: its consumer ${name} has no entry in local/handlers.ts QUEUE_HANDLERS.`);
      pollers.push(
        await startSqsPoller({
          queueUrl: urls[spec.id as QueueId].url,
          functionName: name,
          ...(own ? { handler: own } : { load: async () => (await module!()).handler }),
          batchSize: spec.consumer.batchSize,
          maxBatchingWindowSeconds: spec.consumer.maxBatchingWindowSeconds,
          concurrency: options.concurrency ?? pollersFromEnvironment(),
          ...(options.timeoutSeconds?.[name] !== undefined ? { timeoutSeconds: options.timeoutSeconds[name] } : {}),
          ...(options.waitTimeSeconds !== undefined ? { waitTimeSeconds: options.waitTimeSeconds } : {}),
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
