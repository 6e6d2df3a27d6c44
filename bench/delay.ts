/**
 * Delay bench (`npm run bench:delay`; `npm run bench` runs it after its own table): how late delayed
 * messages land, how fast they are produced, and what each costs, on the local runtime (API gateway,
 * handlers, the delay queue's SQS poller with 5 concurrent batches as Lambda's event source starts with,
 * the sweep on the schedule driver once a minute as the stack runs it), in one run:
 *
 * 1. a spread of delays through the delay queue: 500 messages, delaySeconds uniform in 1..20;
 * 2. the same through the sweep: SLUICE_DELAY_QUEUE_MAX_SECONDS = 2 and a sweep every second; delays 3..20 s;
 * 3. produce throughput, plain and delayed (due in 10 minutes: id-less, so one pending group per request + a queue send), requests of 100 and 500;
 * 4. 10,000 messages due in the same second (queue path), produced in requests of 500 far enough ahead to finish first.
 *
 * Lateness is each landed message's producedAt (landing time) minus its deliverAt (due time), read back by
 * browsing the topic. Request units: functions/adapters/metering.ts's rules (DynamoDB's rounding by item
 * size; moto reports a flat 1), attributed to the function that made each call, plus what metering.ts
 * leaves out and AWS bills: writes to the Delays table's two global secondary indexes, and keys a
 * BatchGetItem asks for and does not find. SQS sends are counted; receives and deletes are estimated as
 * Lambda's event source makes them (one ReceiveMessage and one DeleteMessageBatch per batch of up to 10).
 *
 * The emulator is moto through bench/moto_transactions.py (local/moto_server.py plus item-level rollback
 * for transactions: stock moto copies whole tables per transaction action, and 10,000 pending messages
 * then never land; see that file). BENCH_DELAY_MOTO=stock runs the runtime's own launcher instead;
 * AWS_ENDPOINT_URL runs against that endpoint (LocalStack, AWS). Other knobs: BENCH_DELAY_SAME_SECOND
 * (10000), BENCH_DELAY_SPREAD (500), BENCH_DELAY_CAP_SECONDS (90: how long to wait for landings after the
 * last due time), SLUICE_SQS_POLLERS (5), BENCH_DETAIL=1 (units per function and command),
 * BENCH_DELAY_CASES (all: "queue,sweep,throughput,burst"; e.g. BENCH_DELAY_CASES=burst runs case 4 alone,
 * with a 40 s lead when case 3 did not measure the produce rate).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { Context, SQSEvent } from 'aws-lambda';
import { sqs } from '../functions/adapters/delayQueue.js';
import { dynamo } from '../functions/adapters/dynamoClient.js';
import { itemSize, readMeter, startMetering } from '../functions/adapters/metering.js';
import { forgetStores } from '../functions/adapters/stores.js';
import { forgetConfig } from '../functions/config.js';
import { EMULATOR_LOG_DIR, ensureEmulatorInstalled, freePort, MOTO_VERSION } from '../local/emulator.js';
import { QUEUE_HANDLERS, SCHEDULED_HANDLERS } from '../local/handlers.js';
import { everyInterval, type ScheduledService } from '../local/periodic.js';
import { currentInvocation } from '../local/invocation.js';
import { startLocalRuntime } from '../local/runtime.js';

/** As given to this process (the runtime sets AWS_ENDPOINT_URL to the emulator it uses). */
const givenEndpoint = process.env.AWS_ENDPOINT_URL;
const SAME_SECOND = Number(process.env.BENCH_DELAY_SAME_SECOND ?? 10_000);
const SPREAD = Number(process.env.BENCH_DELAY_SPREAD ?? 500);
const PARTITIONS = 4;
const CONCURRENCY = 4;
const BODY_BYTES = 200;
/** The 10,000 are due this far ahead (producing them must finish first). */
const SAME_SECOND_LEAD_MS = 25_000;
/** Give up waiting for landings this long after the last due time (reported as not landed). */
const LANDING_CAP_MS = Number(process.env.BENCH_DELAY_CAP_SECONDS ?? 90) * 1000;
/** Sweep path: the queue's reach, as SLUICE_DELAY_QUEUE_MAX_SECONDS. */
const SWEEP_REACH_SECONDS = 2;
const THROUGHPUT_MESSAGES = 2000;
const CASES = new Set((process.env.BENCH_DELAY_CASES ?? 'queue,sweep,throughput,burst').split(',').map((c) => c.trim()));

/** AWS list prices, us-east-1 (docs/deploy.md, "Cost"). */
const PRICE = {
  wru: 0.625 / 1e6,
  rru: 0.125 / 1e6,
  sqsRequest: 0.4 / 1e6,
  schedulerInvocation: 1.0 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: 0.0000133334,
  apiRequest: 1.0 / 1e6,
};
/** landDelayed's memory (lib/routes.ts gives it none: the 512 MB default). */
const LANDING_GB = 0.5;
/**
 * Lambda time per queue message on AWS besides waiting for the due time: a BatchGetItem and one or two
 * transactions (~10-25 ms each on DynamoDB). An assumption; the emulator's times are not AWS's.
 */
const LANDING_WORK_MS_PER_QUEUE_MESSAGE = 50;
/** produce's time per request of delayed messages on AWS (conditional puts, 16 at a time, and a queue send): an assumption. */
const PRODUCE_MS_PER_REQUEST = 100;
/** Concurrent landing batches: Lambda's SQS event source starts with five (SLUICE_SQS_POLLERS overrides). */
const POLLERS = Number(process.env.SLUICE_SQS_POLLERS ?? 5);

const body = () => randomBytes(BODY_BYTES / 2).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (values: readonly number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};

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
// Metering by function: metering.ts's rules, plus the Delays table's index writes and absent BatchGet keys.

interface Units {
  calls: number;
  wru: number;
  rru: number;
  /** Writes to the Delays table's global secondary indexes (not in metering.ts). */
  indexWru: number;
  /** Keys a BatchGetItem asked for and did not find: DynamoDB bills each as a read of an empty item (not in metering.ts). */
  absentRru: number;
  byCommand: Record<string, { calls: number; units: number }>;
}
interface SqsTally {
  sendRequests: number;
  /** SQS bills each 64 KB of a request's payload as one request. */
  sendBilled: number;
  entries: number;
}
const newUnits = (): Units => ({ calls: 0, wru: 0, rru: 0, indexWru: 0, absentRru: 0, byCommand: {} });
let units: Record<string, Units> = {};
let sqsTally: Record<string, SqsTally> = {};
const fnName = () => currentInvocation.getStore()?.functionName ?? 'bench';

const wru = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const rru = (bytes: number, consistent: boolean | undefined) => Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);
const outSize = (item: any) => (item ? itemSize(marshall(item, { removeUndefinedValues: true })) : 0);

/** Sizes of the Delays table's items as last written by us, by pk: what an update or delete of one costs in its indexes. */
const delaySizes = new Map<string, number>();
const INDEXED = ['tk', 'bk'] as const; // byTopic (tk, ds), byBucket (bk, ds); all attributes projected

function delayIndexWrites(kind: 'put' | 'update' | 'delete', input: any): number {
  const pk: string | undefined = input.Item?.pk?.S ?? input.Key?.pk?.S;
  if (!pk) return 0;
  if (kind === 'put') {
    const size = itemSize(input.Item as Record<string, AttributeValue>);
    delaySizes.set(pk, size);
    // One write per index whose key attributes the new item has (a put over an existing item of ours does not happen here).
    return INDEXED.filter((a) => input.Item[a] !== undefined).length * wru(size);
  }
  const size = delaySizes.get(pk) ?? 1024;
  if (kind === 'delete') {
    delaySizes.delete(pk);
    return 2 * wru(size);
  }
  // An update: setting an index key moves the entry (a delete and a put); any other change of a projected
  // attribute rewrites the entry in each index the item is in; removing the key deletes the entry.
  const expr: string = input.UpdateExpression ?? '';
  const sets = new Set([...expr.matchAll(/(?:SET|,)\s*([A-Za-z0-9_]+)\s*=/g)].map((m) => m[1]!));
  const removes = /REMOVE\s+([^=]+)$/.exec(expr)?.[1]?.split(',').map((s) => s.trim()) ?? [];
  let writes = 0;
  for (const key of INDEXED) {
    if (removes.includes(key)) writes += 1;
    else if (sets.has(key) || sets.has('ds')) writes += 2;
    else writes += 1;
  }
  return writes * wru(size);
}

function tally(name: string, input: any, output: any) {
  const u = (units[fnName()] ??= newUnits());
  const delays = process.env.DELAY_TABLE;
  let w = 0;
  let r = 0;
  let iw = 0;
  let absent = 0;
  switch (name) {
    case 'PutItemCommand':
      w = wru(itemSize(input.Item));
      if (input.TableName === delays) iw = delayIndexWrites('put', input);
      break;
    case 'UpdateItemCommand':
    case 'DeleteItemCommand':
      w = 1;
      if (input.TableName === delays) iw = delayIndexWrites(name === 'UpdateItemCommand' ? 'update' : 'delete', input);
      break;
    case 'GetItemCommand':
      r = rru(outSize(output.Item), input.ConsistentRead);
      break;
    case 'QueryCommand':
    case 'ScanCommand':
      r = rru((output.Items ?? []).reduce((s: number, i: any) => s + outSize(i), 0), input.ConsistentRead);
      break;
    case 'BatchGetItemCommand':
      for (const [table, request] of Object.entries<any>(input.RequestItems ?? {})) {
        const found: any[] = output.Responses?.[table] ?? [];
        for (const i of found) r += rru(outSize(i), request.ConsistentRead);
        const unprocessed = output.UnprocessedKeys?.[table]?.Keys?.length ?? 0;
        absent += (request.Keys.length - found.length - unprocessed) * rru(0, request.ConsistentRead);
      }
      break;
    case 'BatchWriteItemCommand':
      for (const requests of Object.values<any[]>(input.RequestItems ?? {})) {
        for (const q of requests) w += q.PutRequest ? wru(itemSize(q.PutRequest.Item)) : 1;
      }
      break;
    case 'TransactWriteItemsCommand':
      for (const t of input.TransactItems ?? []) {
        w += 2 * (t.Put ? wru(itemSize(t.Put.Item)) : 1);
        // Index entries are maintained outside the transaction's two phases: standard writes (not doubled).
        if (t.Put?.TableName === delays) iw += delayIndexWrites('put', t.Put);
        if (t.Delete?.TableName === delays) iw += delayIndexWrites('delete', t.Delete);
        if (t.Update?.TableName === delays) iw += delayIndexWrites('update', t.Update);
      }
      break;
    default:
      break;
  }
  u.calls++;
  u.wru += w;
  u.rru += r;
  u.indexWru += iw;
  u.absentRru += absent;
  const c = (u.byCommand[name] ??= { calls: 0, units: 0 });
  c.calls++;
  c.units += w + r;
}

function installProbes() {
  dynamo().middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      tally(context.commandName ?? 'unknown', args.input, result.output);
      return result;
    },
    { step: 'build', name: 'benchDelayMeter' },
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
    { step: 'build', name: 'benchDelaySqsCount' },
  );
  // The delay queue's consumer, timed: invocations (= event-source receive batches), queue messages, when
  // each started against the due time of its messages, and how long it waited for them (ids without a
  // producer id carry their due time: dl-<due, base 36>-…).
  const load = QUEUE_HANDLERS.landDelayed!;
  QUEUE_HANDLERS.landDelayed = async () => {
    const { handler } = await load();
    return {
      handler: async (event: SQSEvent, context: Context) => {
        const started = Date.now();
        let earliestDue = Infinity;
        let latestDue = 0;
        let ids = 0;
        for (const record of event.Records) {
          try {
            for (const id of (JSON.parse(record.body) as { ids: string[] }).ids) {
              ids++;
              const m = /^dl-([0-9a-z]+)-/.exec(id);
              if (!m) continue;
              const due = parseInt(m[1]!, 36);
              earliestDue = Math.min(earliestDue, due);
              latestDue = Math.max(latestDue, due);
            }
          } catch {
            /* not ours */
          }
        }
        try {
          return await handler(event, context);
        } finally {
          landings.push({
            queueMessages: event.Records.length,
            ids,
            ms: Date.now() - started,
            // Records are landed in parallel (Powertools' BatchProcessor), each waiting for its latest due time.
            waitMs: Math.max(0, latestDue - started),
            startedAfterDueMs: started - earliestDue,
          });
        }
      },
    };
  };
  // Sweep runs, whoever starts them (the runtime's schedule driver, or this bench's own 1 s sweep).
  const loadSweep = SCHEDULED_HANDLERS.sweepDelayed!;
  SCHEDULED_HANDLERS.sweepDelayed = async () => {
    const { handler } = await loadSweep();
    return {
      handler: async (event: unknown, context: Context) => {
        sweepRuns++;
        return handler(event, context);
      },
    };
  };
}

interface Landing {
  queueMessages: number;
  ids: number;
  ms: number;
  waitMs: number;
  /** Invocation start minus the earliest due time among its messages: < 0 when the queue delivered early (the handler then waits). */
  startedAfterDueMs: number;
}
let landings: Landing[] = [];
let sweepRuns = 0;

interface Snapshot {
  units: Record<string, Units>;
  sqs: Record<string, SqsTally>;
  landings: Landing[];
  sweepRuns: number;
  meter: ReturnType<typeof readMeter>;
}
function resetTallies() {
  units = {};
  sqsTally = {};
  landings = [];
  sweepRuns = 0;
  startMetering();
}
/** A copy: the tallies go on counting (until the next reset) after a case ends. */
const snapshot = (): Snapshot => structuredClone({ units, sqs: sqsTally, landings, sweepRuns, meter: readMeter() });

// ---------------------------------------------------------------------------------------------------
// Scenarios

/** Progress on stderr (the tables go to stdout). */
const benchStart = Date.now();
const progress = (line: string) => console.error(`[bench:delay +${((Date.now() - benchStart) / 1000).toFixed(1)} s] ${line}`);

async function newTopic(api: string, label: string) {
  const topic = `delay-${label}-${randomBytes(3).toString('hex')}`;
  await call('PUT', `${api}/v1/topics/${topic}`, { partitions: PARTITIONS });
  return topic;
}

async function landedCount(api: string, topic: string): Promise<number | undefined> {
  try {
    const t = await call('GET', `${api}/v1/topics/${topic}`);
    return (t.partitionsInfo as Array<{ endOffset: number }>).reduce((s, p) => s + p.endOffset, 0);
  } catch (error) {
    // The emulator serializes DynamoDB: a busy one can make this read miss the route's 10 s timeout.
    progress(`topic read failed (${(error as Error).message.slice(0, 100)}); trying again`);
    return undefined;
  }
}

async function browseAll(api: string, topic: string) {
  const out: Array<{ producedAt: string; deliverAt?: string }> = [];
  for (let p = 0; p < PARTITIONS; p++) {
    let from = 0;
    for (;;) {
      let page;
      for (let attempt = 0; ; attempt++) {
        try {
          page = await call('GET', `${api}/v1/topics/${topic}/partitions/${p}/messages?from=${from}&limit=1000`);
          break;
        } catch (error) {
          if (attempt >= 5) throw error;
          await sleep(1000);
        }
      }
      out.push(...page.messages);
      if (page.messages.length === 0 || page.next === from) break;
      from = page.next;
    }
  }
  return out;
}

/** Runs `requests` calls of `work` with CONCURRENCY in flight; returns seconds taken. */
async function timed(requests: number, work: (i: number) => Promise<void>) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < requests) await work(next++);
    }),
  );
  return (performance.now() - started) / 1000;
}

interface Precision {
  label: string;
  path: 'queue' | 'sweep';
  messages: number;
  landed: number;
  late: number[];
  /** From the (last) due time until the last message landed. */
  lastLandedAfterDueMs: number;
  produceRate: number;
  requestSize: number;
  snap: Snapshot;
}

async function waitForLandings(api: string, topic: string, expected: number, lastDue: number) {
  let landed = 0;
  let reported = 0;
  for (;;) {
    landed = (await landedCount(api, topic)) ?? landed;
    if (landed >= expected || Date.now() > lastDue + LANDING_CAP_MS) return landed;
    if (Date.now() - reported > 10_000) {
      reported = Date.now();
      const when = Date.now() - lastDue;
      progress(`  ${landed} of ${expected} landed, ${(Math.abs(when) / 1000).toFixed(1)} s ${when < 0 ? 'before' : 'after'} the last due time`);
    }
    await sleep(Date.now() < lastDue ? Math.min(1000, lastDue - Date.now() + 50) : 500);
  }
}

/** Produces `messages` delayed messages (requests of `requestSize`, CONCURRENCY in flight), waits for them to land, and reads them back. */
async function precision(
  api: string,
  label: string,
  path: 'queue' | 'sweep',
  messages: number,
  requestSize: number,
  message: (i: number) => Record<string, unknown>,
): Promise<Precision> {
  const topic = await newTopic(api, label.replace(/[^a-z0-9]+/gi, '-'));
  const payloads = Array.from({ length: Math.ceil(messages / requestSize) }, (_, r) => ({
    messages: Array.from({ length: Math.min(requestSize, messages - r * requestSize) }, (_, j) => ({ body: body(), ...message(r * requestSize + j) })),
  }));
  resetTallies();
  let lastDue = 0;
  const seconds = await timed(payloads.length, async (i) => {
    const { results } = await call('POST', `${api}/v1/topics/${topic}/messages`, payloads[i]);
    for (const r of results) lastDue = Math.max(lastDue, Date.parse(r.deliverAt));
  });
  progress(`${label}: ${messages} produced in ${seconds.toFixed(1)} s; the last is due in ${((lastDue - Date.now()) / 1000).toFixed(1)} s`);
  if (lastDue < Date.now()) progress(`  WARNING: producing took longer than the lead; some messages were due before all were produced`);
  const counted = await waitForLandings(api, topic, messages, lastDue);
  // Let a landing still running finish its units before the snapshot.
  await sleep(300);
  const snap = snapshot();
  let msgs: Awaited<ReturnType<typeof browseAll>> = [];
  try {
    msgs = await browseAll(api, topic);
  } catch (error) {
    // An emulator buried in landings (BENCH_DELAY_MOTO=stock) may not answer the browse in time either.
    progress(`${label}: could not read the landed messages back (${(error as Error).message.slice(0, 120)}); ${counted} had landed at the last count`);
  }
  progress(`${label}: ${msgs.length} of ${messages} landed and read back`);
  const late = msgs.map((m) => Date.parse(m.producedAt) - Date.parse(m.deliverAt!));
  if (process.env.BENCH_DETAIL) {
    const early = late.filter((l) => l < 0);
    if (early.length > 0) console.log(`   ${label}: landed before due (ms): ${early.sort((a, b) => a - b).slice(0, 20).join(', ')}`);
  }
  return {
    label,
    path,
    messages,
    landed: msgs.length,
    late,
    lastLandedAfterDueMs: msgs.length > 0 ? Math.max(...msgs.map((m) => Date.parse(m.producedAt))) - lastDue : NaN,
    produceRate: messages / seconds,
    requestSize,
    snap,
  };
}

function useQueueReach(seconds: number | undefined) {
  if (seconds === undefined) delete process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS;
  else process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS = String(seconds);
  forgetConfig();
  forgetStores();
}

/** The sweep every second, as the local runtime runs it by default (this bench's runtime sweeps once a minute, as the stack does). */
function startFastSweep(): ScheduledService {
  return everyInterval('sweepDelayed', 1000, async () => (await SCHEDULED_HANDLERS.sweepDelayed!()).handler as never, { log: (line) => progress(line) });
}

interface Throughput {
  batch: number;
  plain: number;
  delayed: number;
  delayedSnap: Snapshot;
}

async function throughput(api: string, batch: number): Promise<Throughput> {
  const requests = THROUGHPUT_MESSAGES / batch;
  const plainTopic = await newTopic(api, `plain${batch}`);
  const delayedTopic = await newTopic(api, `tp${batch}`);
  const make = (delayed: boolean) =>
    Array.from({ length: requests }, () => ({
      messages: Array.from({ length: batch }, () => ({ body: body(), ...(delayed ? { delaySeconds: 600 } : {}) })),
    }));
  const plainPayloads = make(false);
  const delayedPayloads = make(true);
  const plainSeconds = await timed(requests, async (i) => void (await call('POST', `${api}/v1/topics/${plainTopic}/messages`, plainPayloads[i])));
  resetTallies();
  const delayedSeconds = await timed(requests, async (i) => void (await call('POST', `${api}/v1/topics/${delayedTopic}/messages`, delayedPayloads[i])));
  const result = { batch, plain: THROUGHPUT_MESSAGES / plainSeconds, delayed: THROUGHPUT_MESSAGES / delayedSeconds, delayedSnap: snapshot() };
  progress(`throughput, batch ${batch}: plain ${result.plain.toFixed(0)} msg/s, delayed ${result.delayed.toFixed(0)} msg/s`);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Per-message units and cost

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

interface PerMessage {
  wru: number;
  rru: number;
  sqs: number;
  landingInvocations: number;
  landingGbSeconds: number;
  produceRequests: number;
  produceGbSeconds: number;
  /** Index writes and absent reads included above (not in metering.ts). */
  extraWru: number;
  extraRru: number;
  /** metering.ts's own total (all functions) per message, to check the attribution against. */
  meterWru: number;
  meterRru: number;
  byFunction: Record<string, { wru: number; rru: number }>;
}

/** Units per message over the functions a delayed message passes through; the sweep's idle cost per run is taken out. */
interface IdleSweep {
  wru: number;
  rru: number;
}

function perMessage(snap: Snapshot, messages: number, requestSize: number, idleSweep: IdleSweep): PerMessage {
  const sweepRuns = snap.sweepRuns;
  const fns = ['produce', 'sweepDelayed', 'landDelayed'];
  const byFunction: Record<string, { wru: number; rru: number }> = {};
  for (const f of fns) {
    const u = snap.units[f] ?? newUnits();
    let w = u.wru + u.indexWru;
    let r = u.rru + u.absentRru;
    if (f === 'sweepDelayed') {
      w = Math.max(0, w - idleSweep.wru * sweepRuns);
      r = Math.max(0, r - idleSweep.rru * sweepRuns);
    }
    byFunction[f] = { wru: w / messages, rru: r / messages };
  }
  const sends = sum(Object.values(snap.sqs).map((t) => t.sendBilled));
  const invocations = snap.landings.length;
  const gbSeconds = sum(snap.landings.map((l) => (l.waitMs + LANDING_WORK_MS_PER_QUEUE_MESSAGE * l.queueMessages) / 1000)) * LANDING_GB;
  const all = Object.values(snap.units);
  return {
    wru: sum(fns.map((f) => byFunction[f]!.wru)),
    rru: sum(fns.map((f) => byFunction[f]!.rru)),
    sqs: (sends + 2 * invocations) / messages,
    landingInvocations: invocations / messages,
    landingGbSeconds: gbSeconds / messages,
    produceRequests: 1 / requestSize,
    produceGbSeconds: ((PRODUCE_MS_PER_REQUEST / 1000) * 0.5) / requestSize,
    extraWru: sum(fns.map((f) => snap.units[f]?.indexWru ?? 0)) / messages,
    extraRru: sum(fns.map((f) => snap.units[f]?.absentRru ?? 0)) / messages,
    meterWru: snap.meter.writeUnits / messages,
    meterRru: snap.meter.readUnits / messages,
    byFunction: Object.fromEntries(Object.entries(byFunction).concat([['(all calls, metering.ts)', { wru: sum(all.map((u) => u.wru)) / messages, rru: sum(all.map((u) => u.rru)) / messages }]])),
  };
}

/** Dollars per million delayed messages, by part. */
function costPerMillion(m: PerMessage) {
  const M = 1e6;
  const parts = {
    dynamoWrites: m.wru * M * PRICE.wru,
    dynamoReads: m.rru * M * PRICE.rru,
    sqs: m.sqs * M * PRICE.sqsRequest,
    lambda: (m.landingInvocations + m.produceRequests) * M * PRICE.lambdaRequest + (m.landingGbSeconds + m.produceGbSeconds) * M * PRICE.lambdaGbSecond,
    api: m.produceRequests * M * PRICE.apiRequest,
  };
  return { ...parts, total: sum(Object.values(parts)) };
}

// ---------------------------------------------------------------------------------------------------

async function measureIdleSweep(): Promise<IdleSweep> {
  const sweep = startFastSweep();
  await sleep(1500); // first run loads the handler
  resetTallies();
  await sleep(4000);
  const snap = snapshot();
  await sweep.stop();
  const u = snap.units.sweepDelayed ?? newUnits();
  const runs = Math.max(1, snap.sweepRuns);
  return { wru: (u.wru + u.indexWru) / runs, rru: (u.rru + u.absentRru) / runs };
}

/**
 * The emulator this bench runs: moto through bench/moto_transactions.py (local/moto_server.py plus
 * item-level transaction rollback; see that file for why), unless BENCH_DELAY_MOTO=stock (the local
 * runtime's own launcher, as `npm start` runs it) or AWS_ENDPOINT_URL names another endpoint.
 */
async function startBenchEmulator(): Promise<{ endpoint: string; stop: () => Promise<void> } | undefined> {
  if (givenEndpoint || process.env.BENCH_DELAY_MOTO === 'stock') return undefined;
  ensureEmulatorInstalled((line) => progress(line));
  const root = resolve(import.meta.dirname, '..');
  const port = await freePort();
  mkdirSync(EMULATOR_LOG_DIR, { recursive: true });
  const logFile = join(EMULATOR_LOG_DIR, `emulator-bench-${port}.log`);
  const child = spawn(join(root, '.venv', 'bin', 'python'), [join(root, 'bench', 'moto_transactions.py'), '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', openSync(logFile, 'w'), openSync(logFile, 'a')],
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  const endpoint = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 30_000; ; ) {
    if (exited) throw new Error(`bench/moto_transactions.py exited at start; see ${logFile}`);
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`bench/moto_transactions.py did not answer within 30 s; see ${logFile}`);
    }
    await sleep(100);
  }
  return {
    endpoint,
    stop: () =>
      new Promise<void>((done) => {
        const finish = () => (rmSync(logFile, { force: true }), done());
        if (exited) return finish();
        child.once('exit', finish);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

const emulatorLabel = () =>
  givenEndpoint
    ? `endpoint ${givenEndpoint}`
    : process.env.BENCH_DELAY_MOTO === 'stock'
      ? `moto ${MOTO_VERSION} as the local runtime runs it (local/moto_server.py)`
      : `moto ${MOTO_VERSION} through bench/moto_transactions.py (local/moto_server.py + item-level transaction rollback)`;

async function main() {
  installProbes();
  const own = await startBenchEmulator();
  const endpoint = own?.endpoint ?? givenEndpoint;
  const runtime = await startLocalRuntime({
    apiPort: 0,
    ...(endpoint ? { endpoint } : {}),
    tablePrefix: `bd${Date.now().toString(36)}`,
    // Once a minute, as the stack runs it (the sweep-path case adds a sweep every second of its own).
    delaySweepSeconds: 60,
    pollers: POLLERS,
    log: () => undefined,
  }).catch(async (error: unknown) => {
    await own?.stop();
    throw error;
  });
  const api = runtime.apiUrl;
  const results: Precision[] = [];
  const throughputs: Throughput[] = [];
  let idle900: IdleSweep;
  let idleReach: IdleSweep;
  const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
  try {
    // What a sweep run costs with nothing to do (on AWS once a minute, whatever the volume), at both reaches.
    idle900 = await measureIdleSweep();
    useQueueReach(SWEEP_REACH_SECONDS);
    idleReach = await measureIdleSweep();
    useQueueReach(undefined);
    progress(`idle sweep run: ${idle900.wru} WRU ${idle900.rru} RRU (reach 900 s), ${idleReach.wru} WRU ${idleReach.rru} RRU (reach ${SWEEP_REACH_SECONDS} s)`);

    if (CASES.has('queue')) results.push(await precision(api, 'spread 1..20 s', 'queue', SPREAD, 100, () => ({ delaySeconds: rand(1, 20) })));

    if (CASES.has('sweep')) {
      useQueueReach(SWEEP_REACH_SECONDS);
      const sweep = startFastSweep();
      try {
        results.push(await precision(api, 'spread 3..20 s', 'sweep', SPREAD, 100, () => ({ delaySeconds: rand(3, 20) })));
      } finally {
        await sweep.stop();
        useQueueReach(undefined);
      }
    }

    if (CASES.has('throughput')) for (const batch of [100, 500]) throughputs.push(await throughput(api, batch));

    if (CASES.has('burst')) {
      // Producing must end before the due time: the lead allows for this machine's delayed-produce rate, measured above.
      const rate = throughputs.find((t) => t.batch === 500)?.delayed;
      const leadMs = rate ? Math.min(120_000, Math.max(SAME_SECOND_LEAD_MS, (2 * SAME_SECOND * 1000) / rate + 5000)) : 40_000;
      const due = Math.ceil((Date.now() + leadMs) / 1000) * 1000;
      results.push(await precision(api, `${SAME_SECOND.toLocaleString('en-US')} due in one second`, 'queue', SAME_SECOND, 500, () => ({ deliverAt: due })));
    }
  } finally {
    progress('stopping the runtime (waits for landings in flight, up to their 30 s timeout)');
    await runtime.stop();
    await own?.stop();
  }
  report(results, throughputs, idle900!, idleReach!);
}

function report(results: Precision[], throughputs: Throughput[], idle900: IdleSweep, idleReach: IdleSweep) {
  const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');
  const ms = (n: number) => (Number.isFinite(n) ? `${Math.round(n)}` : '—');
  const emulator = emulatorLabel();
  console.log(
    `\nSluice delay bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${emulator}, ` +
      `${new Date().toISOString().slice(0, 10)}; ${PARTITIONS}-partition topics, ${BODY_BYTES}-byte bodies, ${CONCURRENCY} concurrent producers, ` +
      `${POLLERS} concurrent landing batches, ${Math.round((Date.now() - benchStart) / 1000)} s in all\n`,
  );
  console.log('Lateness = landed (producedAt) − due (deliverAt), ms; target p99 ≤ 1000');
  console.log('| case | path | landed | p50 | p99 | max | min | before due | > 1 s late | landing started − due, p50 / max (ms) | last landed, s after the last due time | delayed produce msg/s (requests of) |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const starts = r.snap.landings.map((l) => l.startedAfterDueMs).filter(Number.isFinite);
    console.log(
      `| ${r.label} | ${r.path === 'sweep' ? `sweep (reach ${SWEEP_REACH_SECONDS} s, every 1 s)` : 'queue'} | ${r.landed} of ${r.messages} | ${ms(pct(r.late, 50))} | ${ms(pct(r.late, 99))} | ` +
        `${ms(Math.max(...r.late))} | ${ms(Math.min(...r.late))} | ${r.late.filter((l) => l < 0).length} | ${r.late.filter((l) => l > 1000).length} | ${ms(pct(starts, 50))} / ${ms(Math.max(...starts))} | ${f(r.lastLandedAfterDueMs / 1000, 1)} | ${f(r.produceRate)} (${r.requestSize}) |`,
    );
  }

  console.log(`\nProduce throughput through HTTP, ${THROUGHPUT_MESSAGES} messages per case, ${CONCURRENCY} concurrent clients (delayed: delaySeconds 600, id-less: one pending group per request + a queue send)`);
  console.log('| batch | plain msg/s | delayed msg/s | delayed / plain |');
  console.log('|---:|---:|---:|---:|');
  for (const t of throughputs) console.log(`| ${t.batch} | ${f(t.plain)} | ${f(t.delayed)} | ${f((t.delayed / t.plain) * 100, 1)}% |`);

  console.log(
    `\nRequest units per delayed message: metering.ts's rules + writes to the Delays table's two indexes + keys BatchGetItem did not find ` +
      `(a sweep run's cost with nothing to do is taken out: ${f(idle900.wru, 1)} WRU + ${f(idle900.rru, 1)} RRU at reach 900 s, ${f(idleReach.wru, 1)} + ${f(idleReach.rru, 1)} at ${SWEEP_REACH_SECONDS} s)`,
  );
  console.log('| case | produce WRU | produce RRU | sweep WRU | sweep RRU | landing WRU | landing RRU | total WRU | total RRU | of which index WRU / absent-key RRU | SQS requests | landing invocations |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const costRows: Array<{ label: string; m: PerMessage }> = [];
  for (const r of results) {
    if (r.landed === 0) {
      console.log(`| ${r.label} (${r.path}) | nothing landed (read back) within ${LANDING_CAP_MS / 1000} s of the due time | | | | | | | | | | |`);
      continue;
    }
    const m = perMessage(r.snap, r.landed, r.requestSize, r.path === 'sweep' ? idleReach : idle900);
    costRows.push({ label: `${r.label} (${r.path})`, m });
    const b = m.byFunction;
    console.log(
      `| ${r.label} (${r.path}) | ${f(b.produce!.wru, 2)} | ${f(b.produce!.rru, 2)} | ${f(b.sweepDelayed!.wru, 2)} | ${f(b.sweepDelayed!.rru, 2)} | ${f(b.landDelayed!.wru, 2)} | ${f(b.landDelayed!.rru, 2)} | ` +
        `${f(m.wru, 2)} | ${f(m.rru, 2)} | ${f(m.extraWru, 2)} / ${f(m.extraRru, 2)} | ${f(m.sqs, 3)} | ${f(m.landingInvocations, 4)} |`,
    );
    if (process.env.BENCH_DETAIL) {
      for (const [fn, u] of Object.entries(r.snap.units)) console.log('   ', fn, JSON.stringify(u));
      console.log('    sqs', JSON.stringify(r.snap.sqs), `sweep runs ${r.snap.sweepRuns}; metering.ts total per message: ${f(m.meterWru, 3)} WRU ${f(m.meterRru, 3)} RRU (all functions)`);
    }
  }
  for (const t of throughputs) {
    const m = perMessage(t.delayedSnap, THROUGHPUT_MESSAGES, t.batch, idle900);
    console.log(`| produce only, requests of ${t.batch}, due in 600 s | ${f(m.byFunction.produce!.wru, 2)} | ${f(m.byFunction.produce!.rru, 2)} | | | | | | | | ${f(m.sqs, 3)} (sends) | |`);
  }

  console.log(
    `\nCost per million delayed messages at AWS us-east-1 list prices (DynamoDB on-demand $0.625/M WRU, $0.125/M RRU; SQS $0.40/M requests; ` +
      `Lambda arm64 $0.20/M + $0.0000133334/GB-s: landDelayed at ${LANDING_GB * 1024} MB for its measured wait for the due time + ${LANDING_WORK_MS_PER_QUEUE_MESSAGE} ms per queue message (assumed), ` +
      `produce ${PRODUCE_MS_PER_REQUEST} ms per request (assumed); HTTP API $1.00/M)`,
  );
  console.log('| case | DynamoDB writes | DynamoDB reads | SQS | Lambda | API | total |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const { label, m } of costRows) {
    const c = costPerMillion(m);
    console.log(`| ${label} | $${f(c.dynamoWrites, 2)} | $${f(c.dynamoReads, 2)} | $${f(c.sqs, 3)} | $${f(c.lambda, 3)} | $${f(c.api, 3)} | **$${f(c.total, 2)}** |`);
  }
  const month = 43_200;
  console.log(
    `Fixed, whatever the volume: the sweep once a minute = ${month.toLocaleString('en-US')} Scheduler invocations a month ($${f(month * PRICE.schedulerInvocation, 3)}), ` +
      `as many Lambda requests ($${f(month * PRICE.lambdaRequest, 3)} + time), ${f(idle900.wru * month)} WRU + ${f(idle900.rru * month)} RRU ($${f(idle900.wru * month * PRICE.wru + idle900.rru * month * PRICE.rru, 3)}).`,
  );
  const waits = results.flatMap((r) => r.snap.landings.map((l) => l.waitMs));
  const durations = results.flatMap((r) => r.snap.landings.map((l) => l.ms));
  console.log(
    `landDelayed: ${results.reduce((s, r) => s + r.snap.landings.length, 0)} invocations; waited for the due time p50 ${ms(pct(waits, 50))} ms, max ${ms(Math.max(...waits))} ms; ` +
      `duration on the emulator p50 ${ms(pct(durations, 50))} ms, p99 ${ms(pct(durations, 99))} ms, max ${ms(Math.max(...durations))} ms`,
  );
}

await main();
