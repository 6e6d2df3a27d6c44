import { SQSClient } from '@aws-sdk/client-sqs';
import type { DelayQueue, DelayQueueMessage } from '../domain/ports.js';
import { instrument } from './instrument.js';
import { sendInBatches } from './sqsBatch.js';

let client: SQSClient | undefined;

/** One SQS client per process; the endpoint comes from AWS_ENDPOINT_URL(_SQS), as for DynamoDB. */
export function sqs(): SQSClient {
  if (client) return client;
  client = new SQSClient({ maxAttempts: 5 });
  instrument(client.middlewareStack, { meter: false });
  return client;
}

/** The wire form of a delay-queue message; read back by parseDelayQueueBody. */
export const delayQueueBody = (m: DelayQueueMessage) => JSON.stringify({ t: m.topicKey, ids: m.ids });

export function parseDelayQueueBody(body: string): { topicKey: string; ids: string[] } | undefined {
  try {
    const parsed = JSON.parse(body) as { t?: unknown; ids?: unknown };
    if (typeof parsed.t !== 'string' || !Array.isArray(parsed.ids) || !parsed.ids.every((id) => typeof id === 'string')) return undefined;
    return { topicKey: parsed.t, ids: parsed.ids as string[] };
  } catch {
    return undefined;
  }
}

/**
 * The delay queue on SQS. A retried send (lost reply) may enqueue a message twice; that is harmless,
 * because a landing is conditional on the pending record's version (functions/domain/delay/land.ts).
 */
export class SqsDelayQueue implements DelayQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    readonly maxDelaySeconds: number,
  ) {}

  async send(messages: readonly DelayQueueMessage[]) {
    // Whole seconds, rounded down (the landing waits out the rest): sendInBatches rounds up, so floor here.
    await sendInBatches(this.client, this.queueUrl, messages.map((m) => ({ body: delayQueueBody(m), delaySeconds: Math.floor(m.delaySeconds) })));
  }
}
