import { inspect } from 'node:util';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { currentInvocation, functionTimeoutMs, invokeWithin, type InvocationOutcome } from './invocation.js';
import { localContext } from './lambdaContext.js';
import type { LocalService } from './periodic.js';

/** An SQS-triggered handler: it may answer with a partial batch response (`batchItemFailures`). */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<unknown>;

/** SQS's limits that the event source mapping works within. */
const MAX_MESSAGES_PER_RECEIVE = 10;
const MAX_WAIT_SECONDS = 20;
const RECEIVE_RETRY_MS = 1000;

export interface SqsPollerOptions {
  readonly queueUrl: string;
  /** The consumer function's handler name (lib/routes.ts): its declared timeout, and the name in logs. */
  readonly functionName: string;
  /** Loads the handler module once, on the first batch, as Lambda's first invocation would. */
  readonly load?: () => Promise<SqsHandler>;
  /** A handler to run instead of the function's own module (tests). */
  readonly handler?: SqsHandler;
  /** Records per invocation (the event source's BatchSize); 10 by default. */
  readonly batchSize?: number;
  /** Seconds the event source gathers a batch (MaximumBatchingWindowInSeconds); 0 by default. */
  readonly maxBatchingWindowSeconds?: number;
  /** Batches in flight at once (each its own long-poll loop); 2 by default. */
  readonly concurrency?: number;
  /** Seconds, instead of the timeout lib/routes.ts declares for the function. */
  readonly timeoutSeconds?: number;
  /** ReceiveMessage's WaitTimeSeconds (0..20); 20 by default. */
  readonly waitTimeSeconds?: number;
  readonly client?: SQSClient;
  /** Where failed batches are reported (stderr by default). */
  readonly log?: (line: string) => void;
}

/** What the poller's invocations came to. Every batch ends in exactly one of succeeded / partial / failed. */
export interface PollerCounts {
  readonly batches: number;
  readonly succeeded: number;
  /** Batches whose handler reported some of their messages as failed. */
  readonly partial: number;
  /** Batches left whole for the visibility timeout: the handler threw, timed out, could not load, or answered an invalid response. */
  readonly failed: number;
  readonly timedOut: number;
  readonly invalidResponses: number;
  readonly received: number;
  readonly deleted: number;
  /** Messages left on the queue (failed batches and reported failures); they come back after the visibility timeout. */
  readonly returned: number;
}

export interface SqsPoller extends LocalService {
  readonly queueArn: string;
  readonly counts: PollerCounts;
}

/** The outcome of a partial batch response: which messages failed, or why the whole batch fails. */
export type BatchVerdict = { readonly ok: true; readonly failed: ReadonlySet<string> } | { readonly ok: false; readonly reason: string };

/**
 * Reads a handler's result as Lambda's SQS event source does with ReportBatchItemFailures: a null or empty
 * response, or a null or empty `batchItemFailures`, is complete success; an itemIdentifier that is empty,
 * null, under another key, or not a message of the batch fails the whole batch (Lambda developer guide,
 * "Handling errors for an SQS event source", success and failure conditions). The result is taken through
 * JSON first, as Lambda serializes it; a result that is not a JSON object also fails the batch here.
 */
export function judgeBatchResponse(messageIds: readonly string[], result: unknown): BatchVerdict {
  if (result === undefined || result === null) return { ok: true, failed: new Set() };
  let response: unknown;
  try {
    response = JSON.parse(JSON.stringify(result) ?? 'null');
  } catch (error) {
    return { ok: false, reason: `the response cannot be serialized as JSON (${(error as Error).message})` };
  }
  if (response === null) return { ok: true, failed: new Set() };
  if (typeof response !== 'object' || Array.isArray(response)) return { ok: false, reason: 'the response is not a JSON object' };
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { ok: true, failed: new Set() };
  if (!Array.isArray(failures)) return { ok: false, reason: 'batchItemFailures is not a list' };
  const ids = new Set(messageIds);
  const failed = new Set<string>();
  for (const failure of failures) {
    if (typeof failure !== 'object' || failure === null || !('itemIdentifier' in failure)) {
      return { ok: false, reason: `a batchItemFailures entry has no itemIdentifier: ${JSON.stringify(failure)}` };
    }
    const id = (failure as { itemIdentifier: unknown }).itemIdentifier;
    if (typeof id !== 'string' || id === '') return { ok: false, reason: `an itemIdentifier is empty or not a string: ${JSON.stringify(id)}` };
    if (!ids.has(id)) return { ok: false, reason: `itemIdentifier ${id} is not the messageId of a message in the batch` };
    failed.add(id);
  }
  return { ok: true, failed };
}

function toLambdaAttributes(attributes: Record<string, MessageAttributeValue> | undefined): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    out[name] = {
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') } : {}),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
      dataType: value.DataType ?? 'String',
    };
  }
  return out;
}

/** The record Lambda's SQS event source hands a function for one received message. */
export function toSqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const a = message.Attributes ?? {};
  const attributes: SQSRecord['attributes'] = {
    ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
    SentTimestamp: a.SentTimestamp ?? String(Date.now()),
    SenderId: a.SenderId ?? '000000000000',
    ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    ...(a.AWSTraceHeader !== undefined ? { AWSTraceHeader: a.AWSTraceHeader } : {}),
    ...(a.SequenceNumber !== undefined ? { SequenceNumber: a.SequenceNumber } : {}),
    ...(a.MessageGroupId !== undefined ? { MessageGroupId: a.MessageGroupId } : {}),
    ...(a.MessageDeduplicationId !== undefined ? { MessageDeduplicationId: a.MessageDeduplicationId } : {}),
  };
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes,
    messageAttributes: toLambdaAttributes(message.MessageAttributes),
    md5OfBody: message.MD5OfBody ?? '',
    ...(message.MD5OfMessageAttributes !== undefined ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * What Lambda's SQS event source mapping does for a function, in this process: long-polls the queue,
 * invokes the handler with a real SQS event and a Lambda context, within the function's timeout, and
 * deletes the messages that succeeded. A partial batch response (ReportBatchItemFailures, as the stack
 * configures it) leaves only the reported messages; a thrown error, a timeout or an invalid response leaves
 * the whole batch. Left messages come back after the queue's visibility timeout, and SQS itself moves a
 * message to the dead-letter queue after maxReceiveCount receives. docs/local-runtime.md lists what differs.
 */
export async function startSqsPoller(options: SqsPollerOptions): Promise<SqsPoller> {
  const client = options.client ?? new SQSClient({});
  const name = options.functionName;
  const log = options.log ?? ((line: string) => console.error(line));
  const timeoutMs = options.timeoutSeconds !== undefined ? options.timeoutSeconds * 1000 : functionTimeoutMs(name);
  const batchSize = options.batchSize ?? MAX_MESSAGES_PER_RECEIVE;
  const windowMs = (options.maxBatchingWindowSeconds ?? 0) * 1000;
  const waitTimeSeconds = Math.min(MAX_WAIT_SECONDS, Math.max(0, options.waitTimeSeconds ?? MAX_WAIT_SECONDS));
  const concurrency = Math.max(1, options.concurrency ?? 2);
  if (!options.handler && !options.load) throw new Error(`SQS poller for ${name}: give it a handler or a loader.`);

  const attributes = (
    await client.send(new GetQueueAttributesCommand({ QueueUrl: options.queueUrl, AttributeNames: ['QueueArn', 'VisibilityTimeout'] }))
  ).Attributes;
  const queueArn = attributes?.QueueArn ?? options.queueUrl;
  const visibilitySeconds = Number(attributes?.VisibilityTimeout ?? 30);
  // CreateEventSourceMapping refuses this: a message would come back while its function may still run.
  if (visibilitySeconds * 1000 < timeoutMs) {
    throw new Error(
      `SQS poller for ${name}: queue visibility timeout ${visibilitySeconds} s is less than the function timeout ${timeoutMs / 1000} s ` +
        '(Lambda refuses such an event source).',
    );
  }
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const queueName = queueArn.split(':').pop();
  const counts = { batches: 0, succeeded: 0, partial: 0, failed: 0, timedOut: 0, invalidResponses: 0, received: 0, deleted: 0, returned: 0 };
  const stopping = new AbortController();

  let loaded: Promise<SqsHandler> | undefined;
  const handlerOf = (): Promise<SqsHandler> => {
    if (options.handler) return Promise.resolve(options.handler);
    loaded ??= options.load!().catch((error: unknown) => {
      loaded = undefined; // try again with the next batch, as a new Lambda instance would
      throw error;
    });
    return loaded;
  };

  const receive = async (max: number, wait: number): Promise<Message[]> => {
    const out = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: options.queueUrl,
        MaxNumberOfMessages: Math.min(MAX_MESSAGES_PER_RECEIVE, max),
        WaitTimeSeconds: wait,
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: stopping.signal },
    );
    return out.Messages ?? [];
  };

  /** One batch: a long poll, then (with a batching window, or a batch size over 10) more receives until full or the window closes. */
  const collect = async (): Promise<Message[]> => {
    const batch = await receive(batchSize, waitTimeSeconds);
    if (batch.length === 0) return batch;
    const closes = Date.now() + windowMs;
    while (batch.length < batchSize && Date.now() < closes && !stopping.signal.aborted) {
      const left = closes - Date.now();
      try {
        batch.push(...(await receive(batchSize - batch.length, Math.min(MAX_WAIT_SECONDS, Math.floor(left / 1000)))));
      } catch (error) {
        if (stopping.signal.aborted) break;
        throw error;
      }
      if (left < 1000) await sleep(Math.min(left, 100), stopping.signal);
    }
    return batch;
  };

  const deleteMessages = async (messages: readonly Message[]) => {
    for (let i = 0; i < messages.length; i += MAX_MESSAGES_PER_RECEIVE) {
      const chunk = messages.slice(i, i + MAX_MESSAGES_PER_RECEIVE);
      try {
        const out = await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
        counts.deleted += out.Successful?.length ?? 0;
        counts.returned += out.Failed?.length ?? 0;
        for (const failure of out.Failed ?? []) log(`[sluice] ${name}: could not delete a message from ${queueName}: ${failure.Code} ${failure.Message ?? ''}`);
      } catch (error) {
        counts.returned += chunk.length;
        log(`[sluice] ${name}: DeleteMessageBatch on ${queueName} failed; those messages come back after the visibility timeout: ${inspect(error)}`);
      }
    }
  };

  const handleBatch = async (messages: Message[]) => {
    counts.batches++;
    counts.received += messages.length;
    const what = `${name} (batch of ${messages.length} from ${queueName})`;
    const leave = (why: string) => {
      counts.failed++;
      counts.returned += messages.length;
      log(`[sluice] ${what} ${why}; the whole batch comes back after the visibility timeout (${visibilitySeconds} s).`);
    };
    let handler: SqsHandler;
    try {
      handler = await handlerOf();
    } catch (error) {
      return leave(`could not be loaded: ${inspect(error)}`);
    }
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, queueArn, region)) };
    const context = localContext(`sluice-${name}`, timeoutMs);
    const invocation = invokeWithin(
      timeoutMs,
      () => currentInvocation.run({ functionName: name }, () => handler(event, context)),
      (lateByMs, late: InvocationOutcome<unknown>) =>
        log(
          `[sluice] ${what} ${late.kind === 'threw' ? 'failed' : 'finished'} ${lateByMs} ms after its timeout; its result was dropped. ` +
            'On AWS Lambda stops a function at its timeout.',
        ),
    );
    const outcome = await invocation.outcome;
    if (outcome.kind === 'threw') return leave(`failed: ${inspect(outcome.error)}`);
    if (outcome.kind === 'timedOut') {
      counts.timedOut++;
      return leave(
        `SQS FUNCTION TIMEOUT: did not finish within its ${timeoutMs / 1000} s timeout (request ${context.awsRequestId}). ` +
          'On AWS Lambda stops it there; here its work goes on in the background',
      );
    }
    const verdict = judgeBatchResponse(
      messages.map((m) => m.MessageId!),
      outcome.value,
    );
    if (!verdict.ok) {
      counts.invalidResponses++;
      return leave(`INVALID BATCH RESPONSE — a bug in ${name}: ${verdict.reason}`);
    }
    if (verdict.failed.size > 0) {
      counts.partial++;
      counts.returned += verdict.failed.size;
    } else counts.succeeded++;
    await deleteMessages(messages.filter((m) => !verdict.failed.has(m.MessageId!)));
  };

  const loop = async () => {
    while (!stopping.signal.aborted) {
      let batch: Message[];
      try {
        batch = await collect();
      } catch (error) {
        if (stopping.signal.aborted) break;
        log(`[sluice] ${name}: ReceiveMessage on ${queueName} failed; retrying in ${RECEIVE_RETRY_MS / 1000} s: ${inspect(error)}`);
        await sleep(RECEIVE_RETRY_MS, stopping.signal);
        continue;
      }
      // A batch received before stop() is still handed over, so no message waits out a visibility timeout for nothing.
      if (batch.length > 0) await handleBatch(batch);
    }
  };
  const loops = Array.from({ length: concurrency }, loop);

  return {
    name: `sqs:${queueName}→${name}`,
    queueArn,
    counts,
    stop: async () => {
      // Ends the long polls (a receive the emulator answers after this is lost until its visibility
      // timeout) and waits for the batches in flight: their outcome, at most their timeout away.
      stopping.abort();
      await Promise.all(loops);
      if (!options.client) client.destroy();
    },
  };
}
