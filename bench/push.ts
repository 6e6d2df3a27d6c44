/**
 * Push bench (`npm run bench:push`; `npm run bench` runs it after its own table and the delay bench): how
 * fast and how soon push groups deliver to an HTTP endpoint, and what each pushed message costs, on the
 * local runtime as `npm start` runs it — API gateway and handlers, the Log table's DynamoDB Streams poller
 * running the dispatcher (`dispatchPush`), the Push queue's SQS poller running `pushWorker` (5 concurrent
 * batches, as Lambda's SQS event source starts with; SLUICE_SQS_POLLERS) — and a sink on 127.0.0.1 (loopback
 * only) that answers 200 at once. In one run:
 *
 * 1. throughput, batch 1 and batch 10: a 4-partition topic with one push group (`batchSize` 1 or 10,
 *    `maxConcurrency` 8, `timeoutSeconds` 5); 2,000 messages produced in requests of 100 (4 at a time); the
 *    rate is messages delivered between the sink's first and last receipt;
 * 2. light load, batch 1 and batch 10: 100 messages produced one per request, 50 ms apart — the load the
 *    target (p99 ≤ 1 s from produce to the endpoint) is about.
 *
 * Latency is the sink's receipt time minus the message's `producedAt` (set by the produce handler just before
 * its append; same clock, same process). Request units: functions/adapters/metering.ts's rules (moto reports a
 * flat 1), attributed to the function that made each call, plus what metering.ts leaves out and AWS bills:
 * conditional writes whose condition failed (delivery slots taken, wake-ups already planned, racing progress
 * writes), each billed as a write of the larger of the new and the existing item. metering.ts's own total over
 * the same calls is printed beside it as a check. SQS sends are counted; receives and deletes are what Lambda's
 * event source makes for a queue of batch size 1: one ReceiveMessage and one delete per worker invocation.
 * Lambda: one request per stream batch (dispatcher) and per worker invocation, GB-seconds from the measured
 * durations at 512 MB. DynamoDB Streams reads by a Lambda event source are free.
 *
 * Knobs: BENCH_PUSH_MESSAGES (2000), BENCH_PUSH_LIGHT (100), BENCH_PUSH_CAP_SECONDS (90: how long to wait for
 * deliveries after producing ends), SLUICE_SQS_POLLERS (5), BENCH_DETAIL=1 (units per function and command),
 * AWS_ENDPOINT_URL (run against that endpoint instead of a moto of its own).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBStreamEvent, SQSEvent } from 'aws-lambda';
import { sqs } from '../functions/adapters/delayQueue.js';
import { dynamo } from '../functions/adapters/dynamoClient.js';
import { itemSize, readMeter, startMetering } from '../functions/adapters/metering.js';
import { MOTO_VERSION } from '../local/emulator.js';
import { QUEUE_HANDLERS, STREAM_HANDLERS } from '../local/handlers.js';
import { currentInvocation } from '../local/invocation.js';
import { startLocalRuntime } from '../local/runtime.js';

/** As given to this process (the runtime sets AWS_ENDPOINT_URL to the emulator it starts). */
const givenEndpoint = process.env.AWS_ENDPOINT_URL;
const MESSAGES = Number(process.env.BENCH_PUSH_MESSAGES ?? 2000);
const LIGHT_MESSAGES = Number(process.env.BENCH_PUSH_LIGHT ?? 100);
const LIGHT_GAP_MS = 50;
const REQUEST_SIZE = 100;
const PARTITIONS = 4;
const PRODUCERS = 4;
const BODY_BYTES = 200;
const MAX_CONCURRENCY = 8;
const TIMEOUT_SECONDS = 5;
/** Concurrent worker batches: Lambda's SQS event source starts with five. */
const POLLERS = Number(process.env.SLUICE_SQS_POLLERS ?? 5);
/** Give up waiting for deliveries this long after producing ended. */
const CAP_MS = Number(process.env.BENCH_PUSH_CAP_SECONDS ?? 90) * 1000;
/** A case is over when everything arrived and no dispatcher or worker ran for this long (late duplicate work, wake-ups). */
const QUIET_MS = 2500;
const SINK_PATH = '/push-sink';

/** AWS us-east-1 list prices (docs/deploy.md, "Cost"). */
const PRICE = {
  wru: 0.625 / 1e6,
  rru: 0.125 / 1e6,
  sqsRequest: 0.4 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: 0.0000133334,
};
/** dispatchPush and pushWorker declare no memory (lib/routes.ts): the 512 MB default. */
const FUNCTION_GB = 0.5;
const PUSH_FUNCTIONS = ['dispatchPush', 'pushWorker'] as const;

const body = () => randomBytes(BODY_BYTES / 2).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const pct = (values: readonly number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};
const benchStart = Date.now();
/** Progress on stderr (the tables go to stdout). */
const progress = (line: string) => console.error(`[bench:push +${((Date.now() - benchStart) / 1000).toFixed(1)} s] ${line}`);

/* eslint-disable @typescript-eslint/no-explicit-any */
async function call(method: string, url: string, payload?: unknown): Promise<any> {
  const res = await fetch(url, {
    method,
    ...(payload !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : res.json();
}

// ---------------------------------------------------------------------------------------------------
// Tallies: request units and SQS sends by function, invocations of the dispatcher and the worker.

interface Units {
  calls: number;
  wru: number;
  rru: number;
  /** Conditional writes whose condition failed: billed by AWS, not counted by metering.ts. */
  failedConditionalWru: number;
  failedConditionalCalls: number;
  byCommand: Record<string, { calls: number; units: number }>;
}
interface SqsTally {
  sendRequests: number;
  /** SQS bills each 64 KB of a request's payload as one request. */
  sendBilled: number;
  entries: number;
}
interface Invocations {
  count: number;
  ms: number[];
  /** Stream records (dispatcher) or queue messages (worker), over all invocations. */
  records: number;
  /** Worker invocations that POSTed nothing (their partition was already drained by another). */
  empty: number;
  posts: number;
  /**
   * Per record, how long it waited before this invocation started: dispatcher, from the segment's producedAt
   * (the stream stage); worker, from the work message's SentTimestamp (the queue stage; a wake-up sent with
   * a delay counts its delay too).
   */
  waits: number[];
}
const newUnits = (): Units => ({ calls: 0, wru: 0, rru: 0, failedConditionalWru: 0, failedConditionalCalls: 0, byCommand: {} });
const newInvocations = (): Invocations => ({ count: 0, ms: [], records: 0, empty: 0, posts: 0, waits: [] });
let units: Record<string, Units> = {};
let sqsTally: Record<string, SqsTally> = {};
let invocations: Record<string, Invocations> = {};
let active = 0;
let lastActivity = 0;
/** Worker invocations running at once: now, and the most since the last reset. */
let workersRunning = 0;
let maxWorkersRunning = 0;
const fnName = () => currentInvocation.getStore()?.functionName ?? 'bench';

const wru = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const rru = (bytes: number, consistent: boolean | undefined) => Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);
const outSize = (item: any) => (item ? itemSize(marshall(item, { removeUndefinedValues: true })) : 0);

/** metering.ts's rules, per call (so that units can be attributed to the calling function). */
function unitsOf(name: string, input: any, output: any): { w: number; r: number } {
  let w = 0;
  let r = 0;
  switch (name) {
    case 'PutItemCommand':
      w = wru(itemSize(input.Item));
      break;
    case 'UpdateItemCommand':
    case 'DeleteItemCommand':
      w = 1;
      break;
    case 'GetItemCommand':
      r = rru(outSize(output.Item), input.ConsistentRead);
      break;
    case 'QueryCommand':
    case 'ScanCommand':
      r = rru((output.Items ?? []).reduce((s: number, i: any) => s + outSize(i), 0), input.ConsistentRead);
      break;
    case 'BatchGetItemCommand':
      for (const [table, items] of Object.entries<any[]>(output.Responses ?? {})) {
        for (const i of items) r += rru(outSize(i), input.RequestItems?.[table]?.ConsistentRead);
      }
      break;
    case 'BatchWriteItemCommand':
      for (const requests of Object.values<any[]>(input.RequestItems ?? {})) for (const q of requests) w += q.PutRequest ? wru(itemSize(q.PutRequest.Item)) : 1;
      break;
    case 'TransactWriteItemsCommand':
      for (const t of input.TransactItems ?? []) w += 2 * (t.Put ? wru(itemSize(t.Put.Item)) : 1);
      break;
    default:
      break;
  }
  return { w, r };
}

/** The worker invocation an HTTP request belongs to (counted through Node's http diagnostics channel). */
const workerScope = new AsyncLocalStorage<{ posts: number }>();

function installProbes() {
  dynamo().middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      const u = (units[fnName()] ??= newUnits());
      const c = (u.byCommand[name] ??= { calls: 0, units: 0 });
      u.calls++;
      c.calls++;
      let result;
      try {
        result = await next(args);
      } catch (error) {
        const input = args.input as any;
        if ((error as Error).name === 'ConditionalCheckFailedException') {
          // Billed as a write of the larger of the new and the existing item (at least 1 WRU).
          const old = (error as any).Item ? itemSize((error as any).Item) : 0;
          const units = Math.max(name === 'PutItemCommand' ? wru(itemSize(input.Item)) : 1, old > 0 ? wru(old) : 1);
          u.failedConditionalWru += units;
          u.failedConditionalCalls++;
          c.units += units;
        }
        throw error;
      }
      const { w, r } = unitsOf(name, args.input, result.output);
      u.wru += w;
      u.rru += r;
      c.units += w + r;
      return result;
    },
    { step: 'build', name: 'benchPushMeter' },
  );
  sqs().middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'SendMessageBatchCommand' || context.commandName === 'SendMessageCommand') {
        const input = args.input as any;
        const entries: any[] = input.Entries ?? [input];
        const bytes = entries.reduce((s, e) => s + Buffer.byteLength(e.MessageBody ?? '', 'utf8'), 0);
        const t = (sqsTally[fnName()] ??= { sendRequests: 0, sendBilled: 0, entries: 0 });
        t.sendRequests++;
        t.sendBilled += Math.max(1, Math.ceil(bytes / 65_536));
        t.entries += entries.length;
      }
      return result;
    },
    { step: 'build', name: 'benchPushSqsCount' },
  );
  diagnosticsChannel.subscribe('http.client.request.start', (message) => {
    const request = (message as { request: ClientRequest }).request;
    const scope = workerScope.getStore();
    if (scope && request.path.startsWith(SINK_PATH)) scope.posts++;
  });

  type Handler<E> = (event: E, context: Context) => Promise<unknown>;
  const timed =
    <E>(name: string, waits: (event: E, now: number) => number[], load: () => Promise<{ handler: Handler<E> }>) =>
    async (): Promise<{ handler: Handler<E> }> => {
      const { handler } = await load();
      return {
        handler: async (event: E, context: Context) => {
          const started = performance.now();
          const waited = waits(event, Date.now());
          const scope = { posts: 0 };
          active++;
          if (name === 'pushWorker') maxWorkersRunning = Math.max(maxWorkersRunning, ++workersRunning);
          try {
            return await workerScope.run(scope, () => handler(event, context));
          } finally {
            active--;
            if (name === 'pushWorker') workersRunning--;
            lastActivity = Date.now();
            const inv = (invocations[name] ??= newInvocations());
            inv.count++;
            inv.ms.push(performance.now() - started);
            inv.records += waited.length;
            inv.waits.push(...waited);
            inv.posts += scope.posts;
            if (scope.posts === 0) inv.empty++;
          }
        },
      };
    };
  QUEUE_HANDLERS.pushWorker = timed<SQSEvent>('pushWorker', (e, now) => e.Records.map((r) => now - Number(r.attributes.SentTimestamp)), QUEUE_HANDLERS.pushWorker!);
  STREAM_HANDLERS.dispatchPush = timed<DynamoDBStreamEvent>(
    'dispatchPush',
    (e, now) => e.Records.map((r) => now - Number(r.dynamodb?.NewImage?.ts?.N ?? now)),
    STREAM_HANDLERS.dispatchPush!,
  );
}

interface Snapshot {
  units: Record<string, Units>;
  sqs: Record<string, SqsTally>;
  invocations: Record<string, Invocations>;
  meter: ReturnType<typeof readMeter>;
}
function resetTallies() {
  units = {};
  sqsTally = {};
  invocations = {};
  maxWorkersRunning = workersRunning;
  startMetering();
}
const snapshot = (): Snapshot => structuredClone({ units, sqs: sqsTally, invocations, meter: readMeter() });

// ---------------------------------------------------------------------------------------------------
// The sink: first receipt of each message id, by topic.

interface Receipts {
  first: Map<string, { at: number; producedAt: number }>;
  duplicates: number;
  requests: number;
  firstAt: number;
  lastAt: number;
}
const sinks = new Map<string, Receipts>();

async function startSink() {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      try {
        const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { topic: string; messages: Array<{ id: string; producedAt: string }> };
        const sink = sinks.get(payload.topic);
        if (sink) {
          sink.requests++;
          for (const m of payload.messages) {
            if (sink.first.has(m.id)) sink.duplicates++;
            else {
              if (sink.first.size === 0) sink.firstAt = at;
              sink.first.set(m.id, { at, producedAt: Date.parse(m.producedAt) });
              sink.lastAt = at;
            }
          }
        }
      } catch {
        // not a push batch
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${SINK_PATH}`;
  return { url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

// ---------------------------------------------------------------------------------------------------
// Cases

interface CaseResult {
  label: string;
  mode: 'burst' | 'light';
  batchSize: number;
  messages: number;
  delivered: number;
  duplicates: number;
  sinkRequests: number;
  /** Worker invocations running at once, at most. */
  maxWorkers: number;
  produceSeconds: number;
  /** Delivered messages / (last receipt − first receipt). */
  rate: number;
  /** From the first produce request to the last receipt. */
  drainSeconds: number;
  latency: number[];
  snap: Snapshot;
}

async function pushTopic(api: string, sinkUrl: string, label: string, batchSize: number) {
  const topic = `push-${label}-${randomBytes(3).toString('hex')}`;
  await call('PUT', `${api}/v1/topics/${topic}`, { partitions: PARTITIONS });
  const put = await call('PUT', `${api}/v1/topics/${topic}/groups/hook`, {
    startFrom: 'earliest',
    delivery: { type: 'http', url: sinkUrl, batchSize, maxConcurrency: MAX_CONCURRENCY, timeoutSeconds: TIMEOUT_SECONDS },
  });
  if (!String(put.signingSecret ?? '').startsWith('whsec_')) throw new Error(`PUT of a push group answered no signing secret: ${JSON.stringify(put)}`);
  const receipts: Receipts = { first: new Map(), duplicates: 0, requests: 0, firstAt: 0, lastAt: 0 };
  sinks.set(topic, receipts);
  return { topic, receipts };
}

async function waitForDelivery(receipts: Receipts, expected: number, producedEnd: number, label: string) {
  let reported = Date.now();
  for (;;) {
    const done = receipts.first.size >= expected;
    if (done && active === 0 && Date.now() - lastActivity >= QUIET_MS) return;
    if (!done && Date.now() > producedEnd + CAP_MS) {
      progress(`${label}: gave up with ${receipts.first.size} of ${expected} delivered, ${CAP_MS / 1000} s after producing ended`);
      return;
    }
    if (Date.now() - reported > 10_000) {
      reported = Date.now();
      progress(`  ${label}: ${receipts.first.size} of ${expected} delivered`);
    }
    await sleep(100);
  }
}

function result(label: string, mode: 'burst' | 'light', batchSize: number, messages: number, receipts: Receipts, produceStarted: number, produceSeconds: number): CaseResult {
  const firsts = [...receipts.first.values()];
  const span = (receipts.lastAt - receipts.firstAt) / 1000;
  return {
    label,
    mode,
    batchSize,
    messages,
    delivered: receipts.first.size,
    duplicates: receipts.duplicates,
    sinkRequests: receipts.requests,
    maxWorkers: maxWorkersRunning,
    produceSeconds,
    rate: span > 0 ? receipts.first.size / span : NaN,
    drainSeconds: (receipts.lastAt - produceStarted) / 1000,
    latency: firsts.map((f) => f.at - f.producedAt),
    snap: snapshot(),
  };
}

/** MESSAGES messages in requests of REQUEST_SIZE, PRODUCERS at a time, as fast as produce takes them. */
async function burst(api: string, sinkUrl: string, batchSize: number): Promise<CaseResult> {
  const label = `throughput, batch ${batchSize}`;
  const { topic, receipts } = await pushTopic(api, sinkUrl, `burst${batchSize}`, batchSize);
  const requests = Math.ceil(MESSAGES / REQUEST_SIZE);
  const payloads = Array.from({ length: requests }, (_, i) => ({
    messages: Array.from({ length: Math.min(REQUEST_SIZE, MESSAGES - i * REQUEST_SIZE) }, () => ({ body: body() })),
  }));
  await sleep(QUIET_MS);
  resetTallies();
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      while (next < requests) await call('POST', `${api}/v1/topics/${topic}/messages`, payloads[next++]);
    }),
  );
  const produceSeconds = (Date.now() - started) / 1000;
  progress(`${label}: produced ${MESSAGES} in ${produceSeconds.toFixed(2)} s`);
  await waitForDelivery(receipts, MESSAGES, Date.now(), label);
  const r = result(label, 'burst', batchSize, MESSAGES, receipts, started, produceSeconds);
  progress(`${label}: ${r.delivered} delivered, ${r.rate.toFixed(0)} msg/s, latency p50 ${pct(r.latency, 50)} ms p99 ${pct(r.latency, 99)} ms`);
  return r;
}

/** LIGHT_MESSAGES messages, one per request, one request every LIGHT_GAP_MS (the next waits for the one before). */
async function light(api: string, sinkUrl: string, batchSize: number): Promise<CaseResult> {
  const label = `light load, batch ${batchSize}`;
  const { topic, receipts } = await pushTopic(api, sinkUrl, `light${batchSize}`, batchSize);
  await sleep(QUIET_MS);
  resetTallies();
  const started = Date.now();
  for (let i = 0; i < LIGHT_MESSAGES; i++) {
    const wait = started + i * LIGHT_GAP_MS - Date.now();
    if (wait > 0) await sleep(wait);
    await call('POST', `${api}/v1/topics/${topic}/messages`, { messages: [{ body: body() }] });
  }
  const produceSeconds = (Date.now() - started) / 1000;
  await waitForDelivery(receipts, LIGHT_MESSAGES, Date.now(), label);
  const r = result(label, 'light', batchSize, LIGHT_MESSAGES, receipts, started, produceSeconds);
  progress(`${label}: ${r.delivered} delivered, latency p50 ${pct(r.latency, 50)} ms p99 ${pct(r.latency, 99)} ms max ${Math.max(...r.latency)} ms`);
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Per pushed message

interface PerMessage {
  wru: number;
  rru: number;
  failedConditionalWru: number;
  /** Units over all calls of the case (every function): metering.ts's own total, and the sum attributed here (a check on the attribution). */
  meterWru: number;
  meterRru: number;
  attributedWru: number;
  attributedRru: number;
  dynamoCalls: number;
  sqsSends: number;
  sqsReceives: number;
  sqsDeletes: number;
  sqs: number;
  streamBatches: number;
  workerInvocations: number;
  lambdaRequests: number;
  gbSeconds: number;
  produceWru: number;
  produceRru: number;
}

function perMessage(r: CaseResult): PerMessage {
  const n = Math.max(1, r.delivered);
  const u = PUSH_FUNCTIONS.map((f) => r.snap.units[f] ?? newUnits());
  const inv = (f: string) => r.snap.invocations[f] ?? newInvocations();
  const sends = sum(PUSH_FUNCTIONS.map((f) => r.snap.sqs[f]?.sendBilled ?? 0));
  const workers = inv('pushWorker').count;
  const streamBatches = inv('dispatchPush').count;
  const ms = sum(PUSH_FUNCTIONS.map((f) => sum(inv(f).ms.map((x) => Math.ceil(x)))));
  const all = Object.values(r.snap.units);
  const produce = r.snap.units.produce ?? newUnits();
  return {
    wru: sum(u.map((x) => x.wru + x.failedConditionalWru)) / n,
    rru: sum(u.map((x) => x.rru)) / n,
    failedConditionalWru: sum(u.map((x) => x.failedConditionalWru)) / n,
    meterWru: r.snap.meter.writeUnits,
    meterRru: r.snap.meter.readUnits,
    attributedWru: sum(all.map((x) => x.wru)),
    attributedRru: sum(all.map((x) => x.rru)),
    dynamoCalls: sum(u.map((x) => x.calls)) / n,
    sqsSends: sends / n,
    sqsReceives: workers / n,
    sqsDeletes: workers / n,
    sqs: (sends + 2 * workers) / n,
    streamBatches: streamBatches / n,
    workerInvocations: workers / n,
    lambdaRequests: (streamBatches + workers) / n,
    gbSeconds: ((ms / 1000) * FUNCTION_GB) / n,
    produceWru: produce.wru / n,
    produceRru: produce.rru / n,
  };
}

function costPerMillion(m: PerMessage) {
  const M = 1e6;
  const parts = {
    dynamoWrites: m.wru * M * PRICE.wru,
    dynamoReads: m.rru * M * PRICE.rru,
    sqs: m.sqs * M * PRICE.sqsRequest,
    lambdaRequests: m.lambdaRequests * M * PRICE.lambdaRequest,
    lambdaDuration: m.gbSeconds * M * PRICE.lambdaGbSecond,
  };
  return { ...parts, total: sum(Object.values(parts)) };
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  installProbes();
  const sink = await startSink();
  const runtime = await startLocalRuntime({
    apiPort: 0,
    ...(givenEndpoint ? { endpoint: givenEndpoint } : {}),
    tablePrefix: `bp${Date.now().toString(36)}`,
    // As the stack schedules it; this bench has no delayed messages.
    delaySweepSeconds: 60,
    pollers: POLLERS,
    log: () => undefined,
  }).catch(async (error: unknown) => {
    await sink.close();
    throw error;
  });
  progress(`runtime up (emulator ${runtime.endpoint}); sink ${sink.url}`);
  const results: CaseResult[] = [];
  try {
    results.push(await burst(runtime.apiUrl, sink.url, 1));
    results.push(await burst(runtime.apiUrl, sink.url, 10));
    results.push(await light(runtime.apiUrl, sink.url, 1));
    results.push(await light(runtime.apiUrl, sink.url, 10));
  } finally {
    progress('stopping the runtime');
    await runtime.stop();
    await sink.close();
  }
  report(results);
}

function report(results: CaseResult[]) {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');
  const ms = (n: number) => (Number.isFinite(n) ? `${Math.round(n)}` : '—');
  const emulator = givenEndpoint ? `endpoint ${givenEndpoint}` : `moto ${MOTO_VERSION} server mode on loopback (local/moto_server.py)`;
  console.log(
    `\nSluice push bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${emulator}, ` +
      `${new Date().toISOString().slice(0, 10)}; ${PARTITIONS}-partition topics, ${BODY_BYTES}-byte bodies, push group maxConcurrency ${MAX_CONCURRENCY}, ` +
      `${POLLERS} concurrent worker batches, sink on 127.0.0.1 answering 200 at once; ${Math.round((Date.now() - benchStart) / 1000)} s in all\n`,
  );
  console.log('Latency = sink receipt − producedAt, ms; target p99 ≤ 1000 under normal load');
  console.log('| case | produced as | delivered | duplicates | msg/s (first → last receipt) | produce → last receipt, s | p50 | p99 | max | sink requests | worker invocations at once, max |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const how =
      r.mode === 'burst'
        ? `${r.messages} in requests of ${REQUEST_SIZE}, ${PRODUCERS} at a time (${f(r.produceSeconds, 2)} s)`
        : `${r.messages} one per request, ${LIGHT_GAP_MS} ms apart (${f(r.messages / r.produceSeconds, 1)} msg/s)`;
    console.log(
      `| ${r.label} | ${how} | ${r.delivered} of ${r.messages} | ${r.duplicates} | ${r.mode === 'burst' ? f(r.rate) : '—'} | ${f(r.drainSeconds, 1)} | ` +
        `${ms(pct(r.latency, 50))} | ${ms(pct(r.latency, 99))} | ${ms(Math.max(...r.latency))} | ${r.sinkRequests} | ${r.maxWorkers} |`,
    );
  }

  console.log('\nWhere the time goes, ms, p50 / p99: stream = segment produced → dispatcher invoked; queue = work message sent → worker invoked (delayed wake-ups count their delay); worker = invocation duration');
  console.log('| case | stream | queue | worker |');
  console.log('|---|---:|---:|---:|');
  for (const r of results) {
    const d = r.snap.invocations.dispatchPush ?? newInvocations();
    const w = r.snap.invocations.pushWorker ?? newInvocations();
    const pp = (xs: number[]) => `${ms(pct(xs, 50))} / ${ms(pct(xs, 99))}`;
    console.log(`| ${r.label} | ${pp(d.waits)} | ${pp(w.waits)} | ${pp(w.ms)} |`);
  }

  console.log(
    '\nAWS requests per pushed message (dispatchPush + pushWorker): DynamoDB units by metering.ts\'s rules + failed conditional writes; ' +
      'SQS sends counted, receives and deletes = worker invocations (event source, batch size 1); Lambda = stream batches + worker invocations',
  );
  console.log(
    '| case | WRU | of which failed conditional writes | RRU | DynamoDB calls | SQS sends | SQS receives + deletes | stream batches | worker invocations (empty) | Lambda ms (p50 / p99 worker) | produce WRU / RRU (not in the cost) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const rows = results.map((r) => ({ r, m: perMessage(r) }));
  for (const { r, m } of rows) {
    const w = r.snap.invocations.pushWorker ?? newInvocations();
    console.log(
      `| ${r.label} | ${f(m.wru, 2)} | ${f(m.failedConditionalWru, 2)} | ${f(m.rru, 2)} | ${f(m.dynamoCalls, 2)} | ${f(m.sqsSends, 3)} | ` +
        `${f(m.sqsReceives + m.sqsDeletes, 3)} | ${f(m.streamBatches, 3)} | ${f(m.workerInvocations, 3)} (${w.empty} of ${w.count}) | ` +
        `${f((m.gbSeconds / FUNCTION_GB) * 1000, 1)} (${ms(pct(w.ms, 50))} / ${ms(pct(w.ms, 99))}) | ${f(m.produceWru, 2)} / ${f(m.produceRru, 3)} |`,
    );
  }
  console.log(
    `Check, all calls of each case (every function, successful calls): metering.ts ${rows.map(({ m }) => `${f(m.meterWru, 1)} WRU / ${f(m.meterRru, 1)} RRU`).join('; ')}; ` +
      `attributed here ${rows.map(({ m }) => `${f(m.attributedWru, 1)} / ${f(m.attributedRru, 1)}`).join('; ')}`,
  );
  if (process.env.BENCH_DETAIL) {
    for (const r of results) {
      console.log(`  ${r.label}`);
      for (const [fn, u] of Object.entries(r.snap.units)) console.log('   ', fn, JSON.stringify(u));
      console.log('    sqs', JSON.stringify(r.snap.sqs));
      for (const [fn, i] of Object.entries(r.snap.invocations)) console.log('   ', fn, JSON.stringify({ ...i, ms: undefined, waits: undefined, totalMs: Math.round(sum(i.ms)) }));
    }
  }

  console.log(
    '\nCost per million pushed messages at AWS us-east-1 list prices (DynamoDB on-demand $0.625/M WRU, $0.125/M RRU; SQS $0.40/M requests; ' +
      `Lambda arm64 $0.20/M requests + $0.0000133334/GB-s at ${FUNCTION_GB * 1024} MB for the durations measured here; DynamoDB Streams reads by Lambda free); push only, produce not included`,
  );
  console.log('| case | DynamoDB writes | DynamoDB reads | SQS | Lambda requests | Lambda duration | total |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const { r, m } of rows) {
    const c = costPerMillion(m);
    console.log(
      `| ${r.label} | $${f(c.dynamoWrites, 2)} | $${f(c.dynamoReads, 2)} | $${f(c.sqs, 2)} | $${f(c.lambdaRequests, 2)} | $${f(c.lambdaDuration, 2)} | **$${f(c.total, 2)}** |`,
    );
  }
}

await main();
