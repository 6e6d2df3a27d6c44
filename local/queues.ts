import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueNameExists,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { QUEUES, type QueueId, type QueueSpec } from '../lib/queues.js';

/** Queue names for a local deployment: "<prefix>-<Id>" and its dead-letter queue "<prefix>-<Id>-dlq". */
export const localQueueName = (prefix: string, spec: QueueSpec) => `${prefix}-${spec.id}`;
export const localDeadLetterQueueName = (prefix: string, spec: QueueSpec) => `${prefix}-${spec.id}-dlq`;

export interface LocalQueue {
  readonly url: string;
  readonly arn: string;
  readonly deadLetterUrl: string;
  readonly deadLetterArn: string;
}

/** The URLs of the queues of lib/queues.ts as created by createQueues, by queue id. */
export type QueueUrls = Record<QueueId, LocalQueue>;

/** The environment the handlers read their queue URLs from (the same variables the CDK stack sets). */
export function queueEnvironment(urls: QueueUrls): Record<string, string> {
  return Object.fromEntries((QUEUES as readonly QueueSpec[]).map((spec) => [spec.envVar, urls[spec.id as QueueId].url]));
}

const DAY_SECONDS = 86_400;

/**
 * Creates a queue with these attributes, or brings an existing one of that name to them (CreateQueue
 * refuses a name that exists with other attributes). Returns its URL and ARN.
 */
export async function ensureQueue(client: SQSClient, name: string, attributes: Record<string, string>): Promise<{ url: string; arn: string }> {
  let url: string;
  try {
    url = (await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl!;
  } catch (error) {
    if (!(error instanceof QueueNameExists)) throw error;
    url = (await client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
    await client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  }
  const arn = (await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  if (!arn) throw new Error(`Queue ${name} has no ARN.`);
  return { url, arn };
}

/**
 * Creates every queue of lib/queues.ts that does not exist yet, each with its dead-letter queue and the
 * redrive policy the stack gives it (idempotent). Returns the URLs by queue id.
 */
export async function createQueues(client: SQSClient, prefix: string): Promise<QueueUrls> {
  const urls: Partial<QueueUrls> = {};
  for (const spec of QUEUES as readonly QueueSpec[]) {
    const dlq = await ensureQueue(client, localDeadLetterQueueName(prefix, spec), {
      MessageRetentionPeriod: String(spec.deadLetterRetentionDays * DAY_SECONDS),
    });
    const queue = await ensureQueue(client, localQueueName(prefix, spec), {
      VisibilityTimeout: String(spec.visibilityTimeoutSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: spec.maxReceiveCount }),
    });
    urls[spec.id as QueueId] = { url: queue.url, arn: queue.arn, deadLetterUrl: dlq.url, deadLetterArn: dlq.arn };
  }
  return urls as QueueUrls;
}
