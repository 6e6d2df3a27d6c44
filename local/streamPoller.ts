import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type AttributeValue as SdkAttributeValue,
  type Shard,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import type { AttributeValue, Context, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { currentInvocation, functionTimeoutMs, invokeWithin, type InvocationOutcome } from './invocation.js';
import { localContext } from './lambdaContext.js';
import type { LocalService } from './periodic.js';

/** A DynamoDB Streams-triggered handler: with ReportBatchItemFailures it may answer `batchItemFailures` (sequence numbers). */
export type StreamHandler = (event: DynamoDBStreamEvent, context: Context) => Promise<unknown>;

export type StartingPosition = 'TRIM_HORIZON' | 'LATEST';

/** GetRecords returns at most 1,000 records a call. */
const MAX_RECORDS_PER_GET = 1000;
/** The event source mapping's defaults and bounds for DynamoDB Streams (CreateEventSourceMapping). */
const DEFAULT_BATCH_SIZE = 100;
const MAX_BATCH_SIZE = 10_000;
const MAX_BATCHING_WINDOW_SECONDS = 300;
const MAX_RETRY_ATTEMPTS = 10_000;
const MIN_RECORD_AGE_SECONDS = 60;
const MAX_RECORD_AGE_SECONDS = 604_800;
/**
 * Lambda's limit on a synchronous invocation's request (its event): 6 MB. The event source cuts a batch
 * before its event would pass it, as it does for the batch size.
 */
export const LAMBDA_MAX_REQUEST_BYTES = 6_291_456;
/** How long a shard's reader sleeps after a GetRecords that returned nothing (docs/local-runtime.md has the measurements). */
export const DEFAULT_STREAM_IDLE_POLL_MS = 100;
const DEFAULT_RETRY_DELAY_MS = 500;
const DEFAULT_SHARD_REFRESH_SECONDS = 10;
const ERROR_RETRY_MS = 1000;

export interface StreamPollerOptions {
  /** The table whose stream is read (its LatestStreamArn, from DescribeTable). */
  readonly tableName: string;
  /** The consumer function's handler name: its declared timeout (lib/routes.ts) unless `timeoutSeconds`, and the name in logs. */
  readonly functionName: string;
  /** Loads the handler module once, on the first batch, as Lambda's first invocation would. */
  readonly load?: () => Promise<StreamHandler>;
  /** A handler to run instead of the function's own module (tests). */
  readonly handler?: StreamHandler;
  /** Where a shard present at start is read from (the mapping's StartingPosition); LATEST by default. Shards that appear later are read from their start. */
  readonly startingPosition?: StartingPosition;
  /** Records per invocation (BatchSize, 1..10,000); 100 by default, as Lambda's. */
  readonly batchSize?: number;
  /** Seconds records are gathered before an invocation with fewer than batchSize (MaximumBatchingWindowInSeconds, 0..300); 0 by default. */
  readonly maxBatchingWindowSeconds?: number;
  /** Retries of a failed batch before it is skipped and reported (MaximumRetryAttempts, -1..10,000); -1 (until it succeeds) by default, as Lambda's. */
  readonly maximumRetryAttempts?: number;
  /** Records older than this many seconds are skipped and reported instead of invoked (MaximumRecordAgeInSeconds, -1 or 60..604,800); -1 by default. */
  readonly maximumRecordAgeSeconds?: number;
  /** Honour `batchItemFailures` in the handler's response (FunctionResponseTypes: ReportBatchItemFailures); false by default, as Lambda's. */
  readonly reportBatchItemFailures?: boolean;
  /** The on-failure destination: hears of every batch skipped after its retries or for its records' age. Logged by default. */
  readonly onFailure?: (failure: StreamFailureRecord, records: readonly DynamoDBRecord[]) => void | Promise<void>;
  /** Seconds, instead of the timeout lib/routes.ts declares for the function. */
  readonly timeoutSeconds?: number;
  /** Ms a shard's reader sleeps after an empty GetRecords; DEFAULT_STREAM_IDLE_POLL_MS by default. */
  readonly idlePollMs?: number;
  /** Ms between retries of a failed batch; 500 by default. */
  readonly retryDelayMs?: number;
  /** Seconds between DescribeStream calls looking for new shards; 10 by default (and whenever a shard ends). */
  readonly shardRefreshSeconds?: number;
  readonly client?: DynamoDBStreamsClient;
  readonly dynamodb?: DynamoDBClient;
  /** Where failed batches and stream errors are reported (stderr by default). */
  readonly log?: (line: string) => void;
}

/**
 * What an event source's on-failure destination receives for a DynamoDB stream batch it gave up on: the
 * batch's position in the stream, not its records (Lambda developer guide, "Retaining discarded records").
 */
export interface StreamFailureRecord {
  readonly requestContext: {
    readonly requestId: string;
    readonly functionArn: string;
    readonly condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded';
    readonly approximateInvokeCount: number;
  };
  /** Absent when the records were skipped for their age before any invocation. */
  readonly responseContext?: { readonly statusCode: number; readonly executedVersion: string; readonly functionError?: 'Unhandled' };
  readonly version: '1.0';
  readonly timestamp: string;
  readonly DDBStreamBatchInfo: {
    readonly shardId: string;
    readonly startSequenceNumber: string;
    readonly endSequenceNumber: string;
    readonly approximateArrivalOfFirstRecord: string;
    readonly approximateArrivalOfLastRecord: string;
    readonly batchSize: number;
    readonly streamArn: string;
  };
}

/** What the poller's invocations came to. */
export interface StreamPollerCounts {
  /** Invocations (a retry is another one). */
  readonly invocations: number;
  readonly succeeded: number;
  /** Invocations whose handler reported batch item failures (with reportBatchItemFailures). */
  readonly partial: number;
  /** Invocations that threw, timed out, could not load the handler, or answered an invalid batch response. */
  readonly failed: number;
  readonly timedOut: number;
  readonly invalidResponses: number;
  /** Records read from the stream. */
  readonly received: number;
  /** Records checkpointed after a successful invocation. */
  readonly delivered: number;
  /** Batches given up on (retries exhausted or records too old) and reported to onFailure. */
  readonly skippedBatches: number;
  readonly skippedRecords: number;
}

export interface ShardProgress {
  readonly shardId: string;
  readonly parentShardId?: string;
  readonly state: 'waiting' | 'reading' | 'finished';
  /** The sequence number of the last record checkpointed (succeeded or skipped). */
  readonly checkpoint?: string;
}

export interface StreamPoller extends LocalService {
  readonly streamArn: string;
  readonly counts: StreamPollerCounts;
  shards(): ShardProgress[];
}

/** An attribute value as the Streams API's SDK returns it (binary as bytes) → as Lambda's event carries it (binary as base64). */
export function toEventAttributeValue(value: SdkAttributeValue): AttributeValue {
  if (value.S !== undefined) return { S: value.S };
  if (value.N !== undefined) return { N: value.N };
  if (value.B !== undefined) return { B: Buffer.from(value.B).toString('base64') };
  if (value.SS !== undefined) return { SS: value.SS };
  if (value.NS !== undefined) return { NS: value.NS };
  if (value.BS !== undefined) return { BS: value.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (value.BOOL !== undefined) return { BOOL: value.BOOL };
  if (value.NULL !== undefined) return { NULL: value.NULL };
  if (value.L !== undefined) return { L: value.L.map(toEventAttributeValue) };
  if (value.M !== undefined) return { M: toEventImage(value.M) };
  throw new Error(`Unknown attribute value type: ${Object.keys(value).join(', ')}`);
}

function toEventImage(image: Record<string, SdkAttributeValue>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(image).map(([name, value]) => [name, toEventAttributeValue(value)]));
}

/**
 * The record Lambda's DynamoDB event source hands a function for one stream record: the wire-format
 * attribute values, ApproximateCreationDateTime in epoch seconds, eventVersion "1.1", and the stream's ARN.
 */
export function toDynamoDBRecord(record: _Record, streamArn: string, region: string): DynamoDBRecord {
  const d = record.dynamodb ?? {};
  const created = d.ApproximateCreationDateTime;
  return {
    eventID: record.eventID ?? randomUUID().replaceAll('-', ''),
    eventName: record.eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: record.awsRegion ?? region,
    dynamodb: {
      ...(created !== undefined ? { ApproximateCreationDateTime: Math.floor(created.getTime() / 1000) } : {}),
      ...(d.Keys ? { Keys: toEventImage(d.Keys) } : {}),
      ...(d.NewImage ? { NewImage: toEventImage(d.NewImage) } : {}),
      ...(d.OldImage ? { OldImage: toEventImage(d.OldImage) } : {}),
      SequenceNumber: d.SequenceNumber!,
      SizeBytes: d.SizeBytes ?? 0,
      ...(d.StreamViewType ? { StreamViewType: d.StreamViewType } : {}),
    },
    eventSourceARN: streamArn,
    ...(record.userIdentity ? { userIdentity: { type: record.userIdentity.Type, principalId: record.userIdentity.PrincipalId } } : {}),
  };
}

/** The outcome of a stream handler's response under ReportBatchItemFailures: where to resume, or why the whole batch fails. */
export type StreamBatchVerdict =
  | { readonly ok: true; /** Index of the first record to retry (the lowest reported sequence number); absent: all succeeded. */ readonly resumeAt?: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads a handler's result as Lambda's stream event source does with ReportBatchItemFailures: a null or empty
 * response or `batchItemFailures` is complete success; an itemIdentifier that is empty, null, or under another
 * key fails the whole batch; of several failures the lowest sequence number is the checkpoint, and every record
 * from it on is retried (Lambda developer guide, "Configuring partial batch response with DynamoDB and Lambda").
 * An itemIdentifier that is not the sequence number of a record in the batch also fails the whole batch here
 * (the guide does not say what Lambda does with one).
 */
export function judgeStreamBatchResponse(sequenceNumbers: readonly string[], result: unknown): StreamBatchVerdict {
  if (result === undefined || result === null) return { ok: true };
  let response: unknown;
  try {
    response = JSON.parse(JSON.stringify(result) ?? 'null');
  } catch (error) {
    return { ok: false, reason: `the response cannot be serialized as JSON (${(error as Error).message})` };
  }
  if (response === null) return { ok: true };
  if (typeof response !== 'object' || Array.isArray(response)) return { ok: false, reason: 'the response is not a JSON object' };
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { ok: true };
  if (!Array.isArray(failures)) return { ok: false, reason: 'batchItemFailures is not a list' };
  let resumeAt: number | undefined;
  for (const failure of failures) {
    if (typeof failure !== 'object' || failure === null || !('itemIdentifier' in failure)) {
      return { ok: false, reason: `a batchItemFailures entry has no itemIdentifier: ${JSON.stringify(failure)}` };
    }
    const id = (failure as { itemIdentifier: unknown }).itemIdentifier;
    if (typeof id !== 'string' || id === '') return { ok: false, reason: `an itemIdentifier is empty or not a string: ${JSON.stringify(id)}` };
    const index = sequenceNumbers.indexOf(id);
    if (index < 0) return { ok: false, reason: `itemIdentifier ${id} is not the SequenceNumber of a record in the batch` };
    resumeAt = resumeAt === undefined ? index : Math.min(resumeAt, index);
  }
  return resumeAt === undefined ? { ok: true } : { ok: true, resumeAt };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const wake = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    signal.addEventListener('abort', wake, { once: true });
  });

function checkRange(name: string, value: number, min: number, max: number, extra?: number) {
  if (!Number.isInteger(value) || ((value < min || value > max) && value !== extra)) {
    throw new Error(`${name} must be an integer ${extra !== undefined ? `${extra} or ` : ''}${min}..${max}, not ${value}.`);
  }
}

interface ShardState {
  readonly shardId: string;
  readonly parentShardId?: string;
  /** The shard was listed when the poller started (read from startingPosition); later shards are read from their start. */
  readonly initial: boolean;
  /** Closed when first listed: no record will ever be added to it. */
  readonly closedWhenListed: boolean;
  state: 'waiting' | 'reading' | 'finished';
  checkpoint?: string;
  run?: Promise<void>;
  /** Settles once the reader holds its first shard iterator: from then on LATEST means "after this". */
  positioned?: Promise<void>;
}

const eventBytes = (record: DynamoDBRecord) => Buffer.byteLength(JSON.stringify(record)) + 1;

/**
 * What Lambda's DynamoDB Streams event source mapping does for a function, in this process: finds the table's
 * stream, lists its shards, reads each (a child only after its parent is finished) with GetShardIterator /
 * GetRecords, and invokes the handler with real DynamoDB stream events within the function's timeout, one
 * batch at a time per shard, in order, checkpointing after each success. A failed batch is retried (until it
 * succeeds, by default); with reportBatchItemFailures the retry resumes from the lowest reported sequence
 * number; after maximumRetryAttempts, or when its records are older than maximumRecordAgeSeconds, a batch is
 * skipped and reported to onFailure. Checkpoints live in memory. docs/local-runtime.md lists what differs.
 */
export async function startStreamPoller(options: StreamPollerOptions): Promise<StreamPoller> {
  const name = options.functionName;
  const log = options.log ?? ((line: string) => console.error(line));
  if (!options.handler && !options.load) throw new Error(`Stream poller for ${name}: give it a handler or a loader.`);
  const timeoutMs = options.timeoutSeconds !== undefined ? options.timeoutSeconds * 1000 : functionTimeoutMs(name);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  checkRange('batchSize', batchSize, 1, MAX_BATCH_SIZE);
  const windowSeconds = options.maxBatchingWindowSeconds ?? 0;
  if (!(windowSeconds >= 0 && windowSeconds <= MAX_BATCHING_WINDOW_SECONDS)) throw new Error(`maxBatchingWindowSeconds must be 0..300, not ${windowSeconds}.`);
  const windowMs = windowSeconds * 1000;
  const maxRetries = options.maximumRetryAttempts ?? -1;
  checkRange('maximumRetryAttempts', maxRetries, 0, MAX_RETRY_ATTEMPTS, -1);
  const maxAgeSeconds = options.maximumRecordAgeSeconds ?? -1;
  checkRange('maximumRecordAgeSeconds', maxAgeSeconds, MIN_RECORD_AGE_SECONDS, MAX_RECORD_AGE_SECONDS, -1);
  const startingPosition = options.startingPosition ?? 'LATEST';
  const idlePollMs = options.idlePollMs ?? DEFAULT_STREAM_IDLE_POLL_MS;
  const retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const refreshMs = (options.shardRefreshSeconds ?? DEFAULT_SHARD_REFRESH_SECONDS) * 1000;
  const region = process.env.AWS_REGION ?? 'us-east-1';

  const dynamodb = options.dynamodb ?? new DynamoDBClient({});
  const streams = options.client ?? new DynamoDBStreamsClient({});
  const destroyClients = () => {
    if (!options.dynamodb) dynamodb.destroy();
    if (!options.client) streams.destroy();
  };
  let streamArn: string | undefined;
  try {
    const table = (await dynamodb.send(new DescribeTableCommand({ TableName: options.tableName }))).Table;
    streamArn = table?.LatestStreamArn;
    if (!streamArn || table?.StreamSpecification?.StreamEnabled === false) {
      throw new Error(`Stream poller for ${name}: table ${options.tableName} has no stream enabled.`);
    }
  } catch (error) {
    destroyClients();
    throw error;
  }
  const arn = streamArn;
  const tableName = options.tableName;
  const functionArn = localContext(`sluice-${name}`).invokedFunctionArn;

  const counts = {
    invocations: 0,
    succeeded: 0,
    partial: 0,
    failed: 0,
    timedOut: 0,
    invalidResponses: 0,
    received: 0,
    delivered: 0,
    skippedBatches: 0,
    skippedRecords: 0,
  };
  const stopping = new AbortController();
  const shards = new Map<string, ShardState>();

  let loaded: Promise<StreamHandler> | undefined;
  const handlerOf = (): Promise<StreamHandler> => {
    if (options.handler) return Promise.resolve(options.handler);
    loaded ??= options.load!().catch((error: unknown) => {
      loaded = undefined; // try again with the next batch, as a new Lambda instance would
      throw error;
    });
    return loaded;
  };

  const arrival = (record: DynamoDBRecord) => new Date((record.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000).toISOString();
  const report = async (
    shard: ShardState,
    records: readonly DynamoDBRecord[],
    condition: StreamFailureRecord['requestContext']['condition'],
    invokeCount: number,
    functionError: boolean | undefined,
  ) => {
    counts.skippedBatches++;
    counts.skippedRecords += records.length;
    const first = records[0]!;
    const last = records[records.length - 1]!;
    const failure: StreamFailureRecord = {
      requestContext: { requestId: randomUUID(), functionArn, condition, approximateInvokeCount: invokeCount },
      ...(functionError === undefined
        ? {}
        : { responseContext: { statusCode: 200, executedVersion: '$LATEST', ...(functionError ? { functionError: 'Unhandled' as const } : {}) } }),
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId: shard.shardId,
        startSequenceNumber: first.dynamodb!.SequenceNumber!,
        endSequenceNumber: last.dynamodb!.SequenceNumber!,
        approximateArrivalOfFirstRecord: arrival(first),
        approximateArrivalOfLastRecord: arrival(last),
        batchSize: records.length,
        streamArn: arn,
      },
    };
    const what = `${name}: skipped ${records.length} records of ${tableName}'s stream (shard ${shard.shardId}, ${failure.DDBStreamBatchInfo.startSequenceNumber}..${failure.DDBStreamBatchInfo.endSequenceNumber})`;
    if (!options.onFailure) {
      log(`[sluice] STREAM BATCH SKIPPED — ${what}: ${condition} after ${invokeCount} invocations. On AWS this goes to the on-failure destination: ${JSON.stringify(failure)}`);
      return;
    }
    try {
      await options.onFailure(failure, records);
    } catch (error) {
      log(`[sluice] ${what}: the on-failure destination failed: ${inspect(error)}`);
    }
  };

  type Attempt = { kind: 'succeeded' } | { kind: 'partial'; resumeAt: number } | { kind: 'failed'; functionError: boolean };

  const invoke = async (records: readonly DynamoDBRecord[], what: string): Promise<Attempt> => {
    counts.invocations++;
    let handler: StreamHandler;
    try {
      handler = await handlerOf();
    } catch (error) {
      counts.failed++;
      log(`[sluice] ${what} could not be loaded: ${inspect(error)}`);
      return { kind: 'failed', functionError: true };
    }
    const event: DynamoDBStreamEvent = { Records: records.map((r) => structuredClone(r)) };
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
    if (outcome.kind === 'threw') {
      counts.failed++;
      log(`[sluice] ${what} failed: ${inspect(outcome.error)}`);
      return { kind: 'failed', functionError: true };
    }
    if (outcome.kind === 'timedOut') {
      counts.failed++;
      counts.timedOut++;
      log(
        `[sluice] ${what} STREAM FUNCTION TIMEOUT: did not finish within its ${timeoutMs / 1000} s timeout (request ${context.awsRequestId}). ` +
          'On AWS Lambda stops it there; here its work goes on in the background.',
      );
      return { kind: 'failed', functionError: true };
    }
    if (!options.reportBatchItemFailures) {
      counts.succeeded++;
      return { kind: 'succeeded' };
    }
    const verdict = judgeStreamBatchResponse(
      records.map((r) => r.dynamodb!.SequenceNumber!),
      outcome.value,
    );
    if (!verdict.ok) {
      counts.failed++;
      counts.invalidResponses++;
      log(`[sluice] ${what} INVALID BATCH RESPONSE — a bug in ${name}: ${verdict.reason}; the whole batch fails.`);
      return { kind: 'failed', functionError: false };
    }
    if (verdict.resumeAt === undefined) {
      counts.succeeded++;
      return { kind: 'succeeded' };
    }
    counts.partial++;
    return { kind: 'partial', resumeAt: verdict.resumeAt };
  };

  /** Invokes the handler with one batch until it succeeds or is skipped; false when stop() came first (no checkpoint). */
  const deliver = async (shard: ShardState, batch: DynamoDBRecord[]): Promise<boolean> => {
    let records = batch;
    let invoked = 0;
    let last: Attempt | undefined;
    /** The responseContext's functionError of the last invocation; undefined: there was none. */
    const functionError = () => (last === undefined ? undefined : last.kind === 'failed' && last.functionError);
    const done = (upTo: readonly DynamoDBRecord[]) => {
      if (upTo.length > 0) shard.checkpoint = upTo[upTo.length - 1]!.dynamodb!.SequenceNumber!;
    };
    for (;;) {
      if (maxAgeSeconds >= 0) {
        const oldestAllowed = Date.now() / 1000 - maxAgeSeconds;
        const expired = records.findIndex((r) => (r.dynamodb?.ApproximateCreationDateTime ?? Infinity) >= oldestAllowed);
        const count = expired < 0 ? records.length : expired;
        if (count > 0) {
          const old = records.slice(0, count);
          await report(shard, old, 'RecordAgeExceeded', invoked, functionError());
          done(old);
          records = records.slice(count);
          if (records.length === 0) return true;
        }
      }
      if (stopping.signal.aborted) return false;
      invoked++;
      const what = `${name} (batch of ${records.length} from ${tableName}'s stream, shard ${shard.shardId}${invoked > 1 ? `, attempt ${invoked}` : ''})`;
      const attempt = await invoke(records, what);
      last = attempt;
      if (attempt.kind === 'succeeded') {
        counts.delivered += records.length;
        done(records);
        return true;
      }
      if (attempt.kind === 'partial') {
        const ok = records.slice(0, attempt.resumeAt);
        counts.delivered += ok.length;
        done(ok);
        records = records.slice(attempt.resumeAt);
      }
      if (maxRetries >= 0 && invoked > maxRetries) {
        await report(shard, records, 'RetryAttemptsExhausted', invoked, functionError());
        done(records);
        return true;
      }
      await sleep(retryDelayMs, stopping.signal);
    }
  };

  /** The next batch from the front of the buffer: up to batchSize records, and an event within Lambda's request limit. */
  const takeBatch = (buffer: Array<{ record: DynamoDBRecord; bytes: number }>): DynamoDBRecord[] => {
    let bytes = '{"Records":[]}'.length;
    let n = 0;
    while (n < buffer.length && n < batchSize && (n === 0 || bytes + buffer[n]!.bytes <= LAMBDA_MAX_REQUEST_BYTES)) {
      bytes += buffer[n]!.bytes;
      n++;
    }
    return buffer.splice(0, n).map((b) => b.record);
  };

  const readShard = async (shard: ShardState, positioned: () => void) => {
    let position: StartingPosition = shard.initial ? startingPosition : 'TRIM_HORIZON';
    let iterator: string | undefined;
    /** The sequence number of the last record read; a new iterator starts after it. */
    let readUpTo: string | undefined;
    let open = true;
    const buffer: Array<{ record: DynamoDBRecord; bytes: number }> = [];
    let windowOpenedAt = 0;
    while (!stopping.signal.aborted) {
      let got = 0;
      if (open && buffer.length < batchSize) {
        try {
          if (iterator === undefined) {
            iterator = (
              await streams.send(
                new GetShardIteratorCommand({
                  StreamArn: arn,
                  ShardId: shard.shardId,
                  ...(readUpTo !== undefined
                    ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: readUpTo }
                    : { ShardIteratorType: position }),
                }),
                { abortSignal: stopping.signal },
              )
            ).ShardIterator;
            positioned();
          }
          if (iterator === undefined) {
            open = false; // the shard is closed and there is nothing after the position
          } else {
            const out = await streams.send(
              new GetRecordsCommand({ ShardIterator: iterator, Limit: Math.min(MAX_RECORDS_PER_GET, batchSize - buffer.length) }),
              { abortSignal: stopping.signal },
            );
            const records = out.Records ?? [];
            got = records.length;
            counts.received += got;
            if (got > 0) {
              readUpTo = records[got - 1]!.dynamodb!.SequenceNumber!;
              if (buffer.length === 0) windowOpenedAt = Date.now();
              for (const r of records) {
                const record = toDynamoDBRecord(r, arn, region);
                buffer.push({ record, bytes: eventBytes(record) });
              }
            }
            iterator = out.NextShardIterator;
            if (iterator === undefined) open = false;
          }
        } catch (error) {
          positioned(); // startStreamPoller does not wait for a reader that cannot get going; it goes on trying
          if (stopping.signal.aborted) break;
          iterator = undefined;
          if (error instanceof ExpiredIteratorException) continue; // a new one, after what was read
          if (error instanceof TrimmedDataAccessException) {
            log(`[sluice] ${name}: records of ${tableName}'s stream (shard ${shard.shardId}) were trimmed before they were read; reading on from the oldest left.`);
            readUpTo = undefined;
            position = 'TRIM_HORIZON';
            continue;
          }
          log(`[sluice] ${name}: reading ${tableName}'s stream (shard ${shard.shardId}) failed; retrying in ${ERROR_RETRY_MS / 1000} s: ${inspect(error)}`);
          await sleep(ERROR_RETRY_MS, stopping.signal);
          continue;
        }
      }
      const windowLeft = windowMs - (Date.now() - windowOpenedAt);
      if (buffer.length > 0 && (buffer.length >= batchSize || windowLeft <= 0 || !open)) {
        if (!(await deliver(shard, takeBatch(buffer)))) break;
        if (buffer.length > 0) windowOpenedAt = Date.now() - windowMs; // what is left waited already: it goes next
        continue;
      }
      if (!open && buffer.length === 0) {
        shard.state = 'finished';
        return;
      }
      if (got === 0) await sleep(buffer.length > 0 ? Math.min(idlePollMs, windowLeft) : idlePollMs, stopping.signal);
    }
  };

  const startReady = () => {
    for (const shard of shards.values()) {
      if (shard.state !== 'waiting' || stopping.signal.aborted) continue;
      const parent = shard.parentShardId !== undefined ? shards.get(shard.parentShardId) : undefined;
      if (parent && parent.state !== 'finished') continue; // Lambda finishes a parent shard before its children
      if (shard.initial && startingPosition === 'LATEST' && shard.closedWhenListed) {
        shard.state = 'finished'; // nothing will come after LATEST on a closed shard
        return startReady(); // its children may start now
      }
      shard.state = 'reading';
      let positioned!: () => void;
      shard.positioned = new Promise<void>((resolve) => (positioned = resolve));
      shard.run = readShard(shard, positioned).then(
        () => {
          positioned();
          if (shard.state === 'finished') void discover(false);
        },
        (error: unknown) => {
          positioned();
          log(`[sluice] ${name}: the reader of ${tableName}'s stream shard ${shard.shardId} stopped: ${inspect(error)}`);
        },
      );
    }
  };

  const listShards = async (): Promise<Shard[]> => {
    const all: Shard[] = [];
    let after: string | undefined;
    do {
      const out = await streams.send(
        new DescribeStreamCommand({ StreamArn: arn, ...(after !== undefined ? { ExclusiveStartShardId: after } : {}) }),
        { abortSignal: stopping.signal },
      );
      all.push(...(out.StreamDescription?.Shards ?? []));
      after = out.StreamDescription?.LastEvaluatedShardId;
    } while (after !== undefined);
    return all;
  };

  let discovering: Promise<void> | undefined;
  const discover = (initial: boolean): Promise<void> => {
    discovering ??= (async () => {
      try {
        for (const s of await listShards()) {
          if (!s.ShardId || shards.has(s.ShardId)) continue;
          shards.set(s.ShardId, {
            shardId: s.ShardId,
            ...(s.ParentShardId ? { parentShardId: s.ParentShardId } : {}),
            initial,
            closedWhenListed: s.SequenceNumberRange?.EndingSequenceNumber !== undefined,
            state: 'waiting',
          });
        }
        startReady();
      } catch (error) {
        if (initial) throw error;
        if (!stopping.signal.aborted) log(`[sluice] ${name}: DescribeStream on ${tableName}'s stream failed: ${inspect(error)}`);
      } finally {
        discovering = undefined;
      }
    })();
    return discovering;
  };

  try {
    await discover(true);
    // Resolve only once every reader has its position, so a record written after this is delivered from LATEST.
    await Promise.all([...shards.values()].map((s) => s.positioned));
  } catch (error) {
    destroyClients();
    throw error;
  }
  const refresher = setInterval(() => void discover(false), refreshMs);
  refresher.unref();

  return {
    name: `dynamodb-stream:${tableName}→${name}`,
    streamArn: arn,
    counts,
    shards: () =>
      [...shards.values()].map((s) => ({
        shardId: s.shardId,
        ...(s.parentShardId !== undefined ? { parentShardId: s.parentShardId } : {}),
        state: s.state,
        ...(s.checkpoint !== undefined ? { checkpoint: s.checkpoint } : {}),
      })),
    stop: async () => {
      // Ends the reads at once and waits for the batches in flight (at most their timeout); a batch that
      // has not succeeded is not checkpointed.
      stopping.abort();
      clearInterval(refresher);
      await discovering;
      await Promise.all([...shards.values()].map((s) => s.run));
      destroyClients();
    },
  };
}
