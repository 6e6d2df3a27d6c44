import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { DelayQueue, DelayQueueMessage } from '../domain/ports.js';
import { instrument } from './instrument.js';

let client: SQSClient | undefined;

/** One SQS client per process; the endpoint comes from AWS_ENDPOINT_URL(_SQS), as for DynamoDB. */
export function sqs(): SQSClient {
  if (client) return client;
  client = new SQSClient({ maxAttempts: 5 });
  instrument(client.middlewareStack, { meter: false });
  return client;
}

/** SendMessageBatch takes 10 entries (and 256 KB; our bodies are ~15 KB at most). */
const BATCH = 10;

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
    for (let i = 0; i < messages.length; i += BATCH) {
      let entries = messages.slice(i, i + BATCH).map((m, k) => ({
        Id: String(k),
        MessageBody: delayQueueBody(m),
        DelaySeconds: Math.max(0, Math.min(900, Math.floor(m.delaySeconds))),
      }));
      // A batch may succeed partly (throttling, an internal error): the failed entries are sent again.
      for (let attempt = 0; entries.length > 0; attempt++) {
        const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
        const failed = new Set((out.Failed ?? []).map((f) => f.Id));
        entries = entries.filter((e) => failed.has(e.Id));
        if (entries.length > 0 && attempt >= 3) {
          throw new Error(`SQS refused ${entries.length} delay-queue messages: ${JSON.stringify(out.Failed)}`);
        }
        if (entries.length > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }
}
