import type { SQSClient } from '@aws-sdk/client-sqs';
import type { PushQueue, PushWork } from '../domain/ports.js';
import { sendInBatches } from './sqsBatch.js';

/** The wire form of push work; read back by parsePushWork. */
export const pushWorkBody = (w: PushWork) => JSON.stringify({ t: w.topic, g: w.group, p: w.partition });

export function parsePushWork(body: string): PushWork | undefined {
  try {
    const parsed = JSON.parse(body) as { t?: unknown; g?: unknown; p?: unknown };
    if (typeof parsed.t !== 'string' || typeof parsed.g !== 'string' || !Number.isInteger(parsed.p)) return undefined;
    return { topic: parsed.t, group: parsed.g, partition: parsed.p as number };
  } catch {
    return undefined;
  }
}

/**
 * The push work queue on SQS (standard: work may arrive twice or out of order, which is harmless — the
 * worker leases through the group's progress model).
 */
export class SqsPushQueue implements PushQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(work: readonly PushWork[], delaySeconds: number) {
    const unique = [...new Map(work.map((w) => [pushWorkBody(w), w])).keys()];
    await sendInBatches(this.client, this.queueUrl, unique.map((body) => ({ body, delaySeconds })));
  }
}
