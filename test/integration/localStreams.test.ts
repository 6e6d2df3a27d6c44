/**
 * The local DynamoDB Streams poller (local/streamPoller.ts), standing in for Lambda's DynamoDB event source
 * mapping: it reads the Log table's stream on the emulator and invokes a handler with real event shapes, in
 * order, checkpointing after success, retrying failures (whole batches, or from the first reported item),
 * skipping a batch after maximumRetryAttempts, within the function's timeout. A fake Streams client covers
 * what moto never does (several shards, a closed parent and its child).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { IdsTaken } from '../../functions/domain/ports.js';
import {
  judgeStreamBatchResponse,
  startStreamPoller,
  toEventAttributeValue,
  type StreamFailureRecord,
  type StreamHandler,
  type StreamPoller,
  type StreamPollerOptions,
} from '../../local/streamPoller.js';
import { startStreamConsumers, STREAM_CONSUMERS } from '../../local/streams.js';
import { sleep, uniqueName } from '../support/api.js';

const stores = () => dynamoStores(loadConfig());
const logTable = () => loadConfig().tables.log;

/** A partition log of its own on the shared Log table: other files append to it too, so records are told apart by pk. */
function ownLog() {
  const topicKey = `${uniqueName('streams')}@1`;
  const pk = `${topicKey}#0`;
  let next = 0;
  return {
    pk,
    /** Appends a one-record segment at the next offset, through the log store as produce does; returns when DynamoDB answered. */
    append: async (body: unknown = `m${next}`) => {
      const base = next++;
      await stores().log.appendSegment(topicKey, { partition: 0, base, producedAt: Date.now(), records: [{ b: body }] }, [], 0);
      return base;
    },
    appendWithId: async (id: string, body: unknown, base: number) =>
      stores().log.appendSegment(topicKey, { partition: 0, base, producedAt: Date.now(), records: [{ b: body, i: id }] }, [{ id, partition: 0, offset: base }], Math.floor(Date.now() / 1000) + 3600),
    skip: (n: number) => (next += n),
    mine: (records: readonly DynamoDBRecord[]) => records.filter((r) => r.dynamodb?.Keys?.pk?.S === pk),
  };
}

const pollers: StreamPoller[] = [];
afterEach(async () => {
  for (const p of pollers.splice(0)) await p.stop();
});

async function poll(options: Partial<StreamPollerOptions> & { handler: StreamHandler }) {
  const poller = await startStreamPoller({
    tableName: logTable(),
    functionName: 'testStreamConsumer',
    timeoutSeconds: 5,
    idlePollMs: 50,
    retryDelayMs: 50,
    log: () => undefined,
    ...options,
  });
  pollers.push(poller);
  return poller;
}

async function until(condition: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(20);
  }
}

const seq = (r: DynamoDBRecord) => BigInt(r.dynamodb!.SequenceNumber!);
const sk = (r: DynamoDBRecord) => Number(r.dynamodb!.Keys!.sk!.N);

describe('DynamoDB Streams poller on the Log table', () => {
  it('delivers appended segments in order, as Lambda events with the NewImage in wire format', async () => {
    const log = ownLog();
    const events: DynamoDBStreamEvent[] = [];
    const poller = await poll({ batchSize: 10, handler: async (event) => void events.push(event) });
    expect(poller.streamArn).toMatch(/^arn:aws:dynamodb:[a-z0-9-]+:\d{12}:table\/.+-Log\/stream\/.+$/);
    for (let i = 0; i < 25; i++) await log.append({ n: i });
    const mine = () => log.mine(events.flatMap((e) => e.Records));
    await until(() => mine().length >= 25);
    await sleep(200);
    const records = mine();
    expect(records.map(sk)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    for (let i = 1; i < records.length; i++) expect(seq(records[i]!) > seq(records[i - 1]!)).toBe(true);
    for (const e of events) expect(e.Records.length).toBeLessThanOrEqual(10);

    const r = records[3]!;
    expect(r).toMatchObject({
      eventName: 'INSERT',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: process.env.AWS_REGION,
      eventSourceARN: poller.streamArn,
      dynamodb: { Keys: { pk: { S: log.pk }, sk: { N: '3' } }, StreamViewType: 'NEW_IMAGE' },
    });
    expect(typeof r.eventID).toBe('string');
    expect(r.dynamodb!.SizeBytes).toBeGreaterThan(0);
    // Epoch seconds, as Lambda delivers it (the Streams API rounds down to the second).
    expect(Number.isInteger(r.dynamodb!.ApproximateCreationDateTime)).toBe(true);
    expect(Math.abs(r.dynamodb!.ApproximateCreationDateTime! - Date.now() / 1000)).toBeLessThan(60);
    const image = r.dynamodb!.NewImage!;
    expect(image.pk).toEqual({ S: log.pk });
    expect(image.sk).toEqual({ N: '3' });
    expect(image.n).toEqual({ N: '1' });
    const item = unmarshall(image as Parameters<typeof unmarshall>[0]);
    expect(JSON.parse(item.m as string)).toEqual([{ b: { n: 3 } }]);
    expect(poller.shards()).toHaveLength(1); // moto serves one shard per stream, never closed
    expect(poller.shards()[0]).toMatchObject({ state: 'reading' });
    expect(poller.counts.failed).toBe(0);
  });

  it('reaches the handler quickly after the write (latency PutItem → handler, idle poller)', async () => {
    const log = ownLog();
    const received = new Map<number, number>();
    await poll({ batchSize: 100, handler: async (event) => void log.mine(event.Records).forEach((r) => received.set(sk(r), Date.now())) });
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      await sleep(30 + Math.random() * 70); // land at random points of the idle poll cycle
      const before = Date.now();
      const base = await log.append();
      await until(() => received.has(base), 5000);
      latencies.push(received.get(base)! - before);
    }
    latencies.sort((a, b) => a - b);
    const p50 = latencies[Math.floor(latencies.length / 2)]!;
    const max = latencies[latencies.length - 1]!;
    console.log(`[localStreams] append → handler latency over ${latencies.length} appends: p50 ${p50} ms, max ${max} ms`);
    expect(max).toBeLessThan(1000);
  });

  it('retries a failed batch until it succeeds (Lambda default), holding back what follows it, and enforces the timeout', async () => {
    const log = ownLog();
    const seen: number[][] = [];
    let calls = 0;
    const poller = await poll({
      timeoutSeconds: 0.3,
      handler: async (event) => {
        const mine = log.mine(event.Records).map(sk);
        if (mine.length === 0) return;
        seen.push(mine);
        calls++;
        if (calls === 1) throw new Error('first attempt fails');
        if (calls === 2) await sleep(1000); // past the 0.3 s timeout: a failure too
      },
    });
    await log.append();
    await until(() => seen.length >= 1);
    await log.append();
    await until(() => seen.flat().includes(1));
    expect(seen[0]).toEqual([0]);
    expect(seen[1]).toEqual([0]);
    expect(seen[2]).toEqual([0]);
    expect(seen.flat().filter((x) => x === 1)).toHaveLength(1);
    expect(poller.counts.timedOut).toBe(1);
    expect(poller.counts.failed).toBe(2);
  });

  it('with ReportBatchItemFailures, resumes from the lowest reported sequence number and does not redeliver what came before', async () => {
    const log = ownLog();
    const deliveries: number[][] = [];
    let failedOnce = false;
    const poller = await poll({
      reportBatchItemFailures: true,
      maxBatchingWindowSeconds: 1,
      handler: async (event) => {
        const mine = log.mine(event.Records);
        if (mine.length === 0) return;
        deliveries.push(mine.map(sk));
        const third = mine.find((r) => sk(r) === 2);
        const fourth = mine.find((r) => sk(r) === 3);
        if (third && fourth && !failedOnce) {
          failedOnce = true;
          // Both reported: Lambda checkpoints before the lowest and retries everything from it.
          return { batchItemFailures: [{ itemIdentifier: fourth.dynamodb!.SequenceNumber }, { itemIdentifier: third.dynamodb!.SequenceNumber }] };
        }
        return { batchItemFailures: [] };
      },
    });
    for (let i = 0; i < 5; i++) await log.append();
    await until(() => deliveries.flat().filter((x) => x === 4).length > 0 && deliveries.length >= 2);
    expect(deliveries[0]).toEqual([0, 1, 2, 3, 4]);
    expect(deliveries[1]).toEqual([2, 3, 4]);
    expect(poller.counts.partial).toBe(1);
    const checkpoint = poller.shards()[0]!.checkpoint!;
    expect(BigInt(checkpoint) >= 0n).toBe(true);
  });

  it('an invalid batch response fails the whole batch', async () => {
    const log = ownLog();
    const deliveries: number[][] = [];
    const poller = await poll({
      reportBatchItemFailures: true,
      handler: async (event) => {
        const mine = log.mine(event.Records);
        if (mine.length === 0) return;
        deliveries.push(mine.map(sk));
        return deliveries.length === 1 ? { batchItemFailures: [{ itemIdentifier: '' }] } : undefined;
      },
    });
    await log.append();
    await until(() => deliveries.length >= 2);
    expect(deliveries.slice(0, 2)).toEqual([[0], [0]]);
    expect(poller.counts.invalidResponses).toBe(1);
  });

  it('after maximumRetryAttempts skips the batch, reports it like an on-failure destination, and goes on', async () => {
    const log = ownLog();
    const failures: Array<{ failure: StreamFailureRecord; records: readonly DynamoDBRecord[] }> = [];
    const delivered: number[] = [];
    const poller = await poll({
      batchSize: 1,
      maximumRetryAttempts: 2,
      onFailure: (failure, records) => void failures.push({ failure, records }),
      handler: async (event) => {
        const mine = log.mine(event.Records);
        if (mine.some((r) => (unmarshall(r.dynamodb!.NewImage as Parameters<typeof unmarshall>[0]).m as string).includes('poison'))) {
          throw new Error('cannot handle poison');
        }
        delivered.push(...mine.map(sk));
      },
    });
    await log.append('ok');
    await log.append('poison');
    await log.append('ok again');
    await until(() => delivered.includes(2));
    const own = failures.filter((f) => log.mine(f.records).length > 0);
    expect(own).toHaveLength(1);
    const { failure, records } = own[0]!;
    expect(records.map(sk)).toEqual([1]);
    expect(failure).toMatchObject({
      version: '1.0',
      requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      DDBStreamBatchInfo: {
        shardId: poller.shards()[0]!.shardId,
        startSequenceNumber: records[0]!.dynamodb!.SequenceNumber,
        endSequenceNumber: records[0]!.dynamodb!.SequenceNumber,
        batchSize: 1,
        streamArn: poller.streamArn,
      },
    });
    expect(failure.requestContext.functionArn).toMatch(/^arn:aws:lambda:/);
    expect(delivered).toEqual([0, 2]);
  });

  it('gathers a batch for maxBatchingWindowSeconds before invoking', async () => {
    const log = ownLog();
    const batches: Array<{ at: number; sks: number[] }> = [];
    await poll({
      maxBatchingWindowSeconds: 1,
      handler: async (event) => {
        const mine = log.mine(event.Records).map(sk);
        if (mine.length > 0) batches.push({ at: Date.now(), sks: mine });
      },
    });
    const started = Date.now();
    for (let i = 0; i < 5; i++) await log.append();
    await until(() => batches.flatMap((b) => b.sks).length >= 5);
    expect(batches.map((b) => b.sks)).toEqual([[0, 1, 2, 3, 4]]);
    expect(batches[0]!.at - started).toBeGreaterThanOrEqual(900);
  });

  it('reads from TRIM_HORIZON when asked: records written before it started arrive too', async () => {
    const log = ownLog();
    await log.append();
    await log.append();
    const got: number[] = [];
    await poll({ startingPosition: 'TRIM_HORIZON', batchSize: 1000, handler: async (event) => void got.push(...log.mine(event.Records).map(sk)) });
    await until(() => got.length >= 2, 20_000);
    expect(got).toEqual([0, 1]);
  });

  it('never delivers a write of a failed transaction, and keeps reading after one (moto patched: local/moto_streams.py)', async () => {
    const log = ownLog();
    const got: Array<{ sk: number; m: string }> = [];
    await poll({
      handler: async (event) =>
        void got.push(...log.mine(event.Records).map((r) => ({ sk: sk(r), m: unmarshall(r.dynamodb!.NewImage as Parameters<typeof unmarshall>[0]).m as string }))),
    });
    await log.appendWithId('dup', 'first', 0);
    await until(() => got.length >= 1);
    // Same producer id again: the transaction (segment + id) is cancelled and the emulator rolls the Log table back.
    await expect(log.appendWithId('dup', 'phantom', 1)).rejects.toBeInstanceOf(IdsTaken);
    log.skip(1);
    await log.append('real');
    await until(() => got.length >= 2);
    await sleep(300);
    expect(got).toEqual([
      { sk: 0, m: JSON.stringify([{ b: 'first', i: 'dup' }]) },
      { sk: 1, m: JSON.stringify([{ b: 'real' }]) },
    ]);
  });

  it('startStreamConsumers runs what lib/streams.ts declares, and refuses a table without a stream', async () => {
    expect(STREAM_CONSUMERS.map((c) => [c.table, c.handler])).toEqual([['Log', 'dispatchPush']]);
    expect(await startStreamConsumers(inject('tablePrefix'), [])).toEqual([]);
    await expect(startStreamConsumers(inject('tablePrefix'), [{ table: 'Catalog', handler: 'x' }])).rejects.toThrow(/not declared with a stream/);
    await expect(startStreamConsumers(inject('tablePrefix'), [{ table: 'Log', handler: 'nobody' }])).rejects.toThrow(/STREAM_HANDLERS/);
    const got: DynamoDBRecord[] = [];
    const log = ownLog();
    const started = await startStreamConsumers(inject('tablePrefix'), [{ table: 'Log', handler: 'pushDispatcher', batchSize: 5 }], {
      handlers: { pushDispatcher: async (event) => void got.push(...log.mine(event.Records)) },
      timeoutSeconds: { pushDispatcher: 5 },
      idlePollMs: 50,
      log: () => undefined,
    });
    pollers.push(...started);
    expect(started.map((p) => p.name)).toEqual([`dynamodb-stream:${logTable()}→pushDispatcher`]);
    await log.append();
    await until(() => got.length === 1);
  });
});

describe('stream event shapes and batch responses', () => {
  it('converts attribute values to the wire format Lambda delivers (binary as base64)', () => {
    expect(
      toEventAttributeValue({
        M: {
          s: { S: 'x' },
          n: { N: '1' },
          b: { B: new Uint8Array([1, 2, 255]) },
          bs: { BS: [new Uint8Array([0])] },
          l: { L: [{ BOOL: true }, { NULL: true }, { SS: ['a'] }, { NS: ['2'] }] },
        },
      }),
    ).toEqual({
      M: {
        s: { S: 'x' },
        n: { N: '1' },
        b: { B: 'AQL/' },
        bs: { BS: ['AA=='] },
        l: { L: [{ BOOL: true }, { NULL: true }, { SS: ['a'] }, { NS: ['2'] }] },
      },
    });
  });

  it('judges batch responses as Lambda does for streams', () => {
    const seqs = ['100', '101', '102'];
    expect(judgeStreamBatchResponse(seqs, undefined)).toEqual({ ok: true });
    expect(judgeStreamBatchResponse(seqs, null)).toEqual({ ok: true });
    expect(judgeStreamBatchResponse(seqs, {})).toEqual({ ok: true });
    expect(judgeStreamBatchResponse(seqs, { batchItemFailures: [] })).toEqual({ ok: true });
    expect(judgeStreamBatchResponse(seqs, { batchItemFailures: null })).toEqual({ ok: true });
    expect(judgeStreamBatchResponse(seqs, { batchItemFailures: [{ itemIdentifier: '102' }, { itemIdentifier: '101' }] })).toEqual({ ok: true, resumeAt: 1 });
    expect(judgeStreamBatchResponse(seqs, { batchItemFailures: [{ itemIdentifier: '' }] }).ok).toBe(false);
    expect(judgeStreamBatchResponse(seqs, { batchItemFailures: [{ itemIdentifier: null }] }).ok).toBe(false);
    expect(judgeStreamBatchResponse(seqs, { batchItemFailures: [{ itemId: '101' }] }).ok).toBe(false);
    expect(judgeStreamBatchResponse(seqs, { batchItemFailures: [{ itemIdentifier: '999' }] }).ok).toBe(false);
    expect(judgeStreamBatchResponse(seqs, 'done').ok).toBe(false);
  });
});

/** A Streams API of two shards: a closed parent and its open child, as DynamoDB has after a shard rolls over. */
function fakeStreams(arn: string) {
  const record = (n: number, created: Date) => ({
    eventID: `e${n}`,
    eventName: 'INSERT' as const,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: { ApproximateCreationDateTime: created, Keys: { pk: { S: 'k' }, sk: { N: String(n) } }, SequenceNumber: String(1000 + n), SizeBytes: 10, StreamViewType: 'NEW_IMAGE' as const },
  });
  const now = new Date();
  const shards: Record<string, { records: ReturnType<typeof record>[]; closed: boolean; parent?: string }> = {
    child: { records: [record(4, now), record(5, now)], closed: false, parent: 'parent' },
    parent: { records: [1, 2, 3].map((n) => record(n, now)), closed: true },
  };
  const reads: string[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, string | number> }) => {
      const input = command.input;
      switch (command.constructor.name) {
        case 'DescribeTableCommand':
          return { Table: { LatestStreamArn: arn, StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' } } };
        case 'DescribeStreamCommand': {
          // One shard a page, children first: the poller must page, and still read the parent to its end before the child.
          const ids = Object.keys(shards);
          const id = ids[input.ExclusiveStartShardId === undefined ? 0 : ids.indexOf(input.ExclusiveStartShardId as string) + 1]!;
          const s = shards[id]!;
          const shard = {
            ShardId: id,
            ...(s.parent ? { ParentShardId: s.parent } : {}),
            SequenceNumberRange: { StartingSequenceNumber: s.records[0]!.dynamodb.SequenceNumber, ...(s.closed ? { EndingSequenceNumber: '1003' } : {}) },
          };
          return { StreamDescription: { Shards: [shard], ...(id !== ids[ids.length - 1] ? { LastEvaluatedShardId: id } : {}) } };
        }
        case 'GetShardIteratorCommand': {
          const s = shards[input.ShardId as string]!;
          const at =
            input.ShardIteratorType === 'TRIM_HORIZON'
              ? 0
              : input.ShardIteratorType === 'LATEST'
                ? s.records.length
                : s.records.findIndex((r) => r.dynamodb.SequenceNumber === input.SequenceNumber) + 1;
          return { ShardIterator: `${input.ShardId}:${at}` };
        }
        case 'GetRecordsCommand': {
          const [id, at] = (input.ShardIterator as string).split(':');
          const s = shards[id!]!;
          const from = Number(at);
          const out = s.records.slice(from, from + Number(input.Limit));
          reads.push(`${id}:${out.map((r) => r.dynamodb.Keys.sk.N).join(',')}`);
          const next = from + out.length;
          return { Records: out, ...(s.closed && next >= s.records.length ? {} : { NextShardIterator: `${id}:${next}` }) };
        }
      }
      throw new Error(`unexpected ${command.constructor.name}`);
    },
    destroy: () => undefined,
  };
  return { client, reads };
}

describe('stream shards (a fake Streams API: moto has one shard that never closes)', () => {
  it('reads a closed parent shard to its end before its child, and hands the records over in order', async () => {
    const arn = 'arn:aws:dynamodb:us-east-1:123456789012:table/fake/stream/2024-01-01T00:00:00.000';
    const { client, reads } = fakeStreams(arn);
    const got: number[] = [];
    const poller = await startStreamPoller({
      tableName: 'fake',
      functionName: 'fakeConsumer',
      timeoutSeconds: 1,
      idlePollMs: 20,
      startingPosition: 'TRIM_HORIZON',
      batchSize: 2,
      client: client as unknown as DynamoDBStreamsClient,
      dynamodb: client as unknown as DynamoDBClient,
      handler: async (event) => {
        await sleep(5);
        got.push(...event.Records.map(sk));
      },
      log: () => undefined,
    });
    pollers.push(poller);
    await until(() => got.length >= 5);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    expect(reads.findIndex((r) => r.startsWith('child'))).toBeGreaterThan(reads.findIndex((r) => r === 'parent:3'));
    expect(poller.shards()).toEqual([
      { shardId: 'child', parentShardId: 'parent', state: 'reading', checkpoint: '1005' },
      { shardId: 'parent', state: 'finished', checkpoint: '1003' },
    ]);
  });

  it('from LATEST, skips a shard closed at start and reads its open child from its tip', async () => {
    const arn = 'arn:aws:dynamodb:us-east-1:123456789012:table/fake/stream/2024-01-01T00:00:00.000';
    const { client, reads } = fakeStreams(arn);
    const poller = await startStreamPoller({
      tableName: 'fake',
      functionName: 'fakeConsumer',
      timeoutSeconds: 1,
      idlePollMs: 20,
      client: client as unknown as DynamoDBStreamsClient,
      dynamodb: client as unknown as DynamoDBClient,
      handler: async () => undefined,
      log: () => undefined,
    });
    pollers.push(poller);
    await until(() => reads.length >= 2);
    expect(reads.every((r) => r === 'child:')).toBe(true);
    expect(poller.shards().find((s) => s.shardId === 'parent')!.state).toBe('finished');
  });
});
