/**
 * The SQS queues of Sluice, declared once: the CDK stack creates each (with its own dead-letter queue
 * and an alarm on it), and the local runtime creates them on the emulator and polls them with the
 * consumer function named here, so local and cloud cannot drift. `envVar` is how the queue URL
 * reaches the Lambda code (functions/config.ts).
 */
export interface QueueSpec {
  /** Logical id in the stack and suffix of the local queue name. */
  readonly id: string;
  readonly envVar: string;
  /** Seconds a received message stays hidden: at least the consumer's timeout (AWS requires it for event sources). */
  readonly visibilityTimeoutSeconds: number;
  /** Receives before SQS moves a message to the queue's dead-letter queue. */
  readonly maxReceiveCount: number;
  /** Days the dead-letter queue keeps a message (SQS allows 1..14). */
  readonly deadLetterRetentionDays: number;
  /** The function that consumes the queue (an event source mapping with partial batch responses). */
  readonly consumer: { readonly handler: string; readonly batchSize: number; readonly maxBatchingWindowSeconds: number };
  readonly purpose: string;
}

export const QUEUES = [
  {
    id: 'Delay',
    envVar: 'DELAY_QUEUE_URL',
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 10,
    deadLetterRetentionDays: 14,
    consumer: { handler: 'landDelayed', batchSize: 10, maxBatchingWindowSeconds: 0 },
    purpose: 'Delayed messages due within SLUICE_DELAY_QUEUE_MAX_SECONDS (SQS DelaySeconds, at most 900): each SQS message names up to 100 pending messages of one topic due in the same second; its consumer lands them in the topic.',
  },
  {
    id: 'Push',
    envVar: 'PUSH_QUEUE_URL',
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 10,
    deadLetterRetentionDays: 14,
    consumer: { handler: 'pushWorker', batchSize: 1, maxBatchingWindowSeconds: 0 },
    purpose: 'Push work: one message per (push group, partition) with messages to deliver, from the log stream\'s dispatcher or the worker\'s own wake-ups (retries after backoff, slow-downs); its consumer delivers that partition.',
  },
  {
    id: 'TransactionTimeout',
    envVar: 'TRANSACTION_TIMEOUT_QUEUE_URL',
    visibilityTimeoutSeconds: 60,
    maxReceiveCount: 10,
    deadLetterRetentionDays: 14,
    consumer: { handler: 'transactionTimeout', batchSize: 10, maxBatchingWindowSeconds: 0 },
    purpose: 'One message per prepared transaction, delayed to its timeout (hops of at most 900 s for longer ones): its consumer starts the check-back state machine if the transaction is still prepared.',
  },
  {
    id: 'CheckBack',
    envVar: 'CHECK_BACK_QUEUE_URL',
    // The consumer asks the producer (10 s) and may commit: its timeout is 60 s.
    visibilityTimeoutSeconds: 90,
    maxReceiveCount: 5,
    deadLetterRetentionDays: 14,
    // Up to 10 requests per invocation, asked in parallel: Lambda's SQS event source starts with 5 concurrent
    // batches, and a burst of timeouts must not queue behind them (bench/transactions.ts, check-back delay).
    consumer: { handler: 'checkBackWorker', batchSize: 10, maxBatchingWindowSeconds: 0 },
    purpose: 'Requests of the check-back state machine (SendMessage with a task token): ask the producer whether to commit a transaction, or give up after maxChecks; the consumer answers the token.',
  },
] as const satisfies readonly QueueSpec[];

export type QueueId = (typeof QUEUES)[number]['id'];
