import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

export interface QueueEntry {
  readonly body: string;
  readonly delaySeconds: number;
}

/**
 * Sends messages 10 at a time (SendMessageBatch's limit; our bodies are far below its 256 KB). Entries a
 * batch reports failed (throttling, an internal error) are sent again with a short backoff, then the
 * send fails. A send retried after a lost reply may enqueue a message twice: every consumer of Sluice's
 * queues is idempotent (landings and pushes go through conditional writes).
 */
export async function sendInBatches(client: SQSClient, queueUrl: string, messages: readonly QueueEntry[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    let entries = messages.slice(i, i + 10).map((m, k) => ({
      Id: String(k),
      MessageBody: m.body,
      // SQS DelaySeconds: whole seconds, 0..900.
      DelaySeconds: Math.max(0, Math.min(900, Math.ceil(m.delaySeconds))),
    }));
    for (let attempt = 0; entries.length > 0; attempt++) {
      const out = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      const failed = new Set((out.Failed ?? []).map((f) => f.Id));
      entries = entries.filter((e) => failed.has(e.Id));
      if (entries.length > 0 && attempt >= 3) throw new Error(`SQS refused ${entries.length} messages: ${JSON.stringify(out.Failed)}`);
      if (entries.length > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
}
