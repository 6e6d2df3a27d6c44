/**
 * `npm run bench`: throughput and request units of the full HTTP path on the local runtime, side by
 * side with raw PutItem of the same bytes against the same emulator, in one run.
 *
 * Request units are computed from item sizes by DynamoDB's rounding rules (functions/adapters/metering.ts),
 * because moto reports a flat 1 unit per call. Throughput on moto measures our overhead relative to the
 * emulator, not DynamoDB's speed.
 *
 * Then the delay bench (bench/delay.ts; BENCH_SKIP_DELAY=1 skips it) runs in a process of its own: its own
 * emulator, and no client, cache or configuration left over from this run.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { readMeter, startMetering } from '../functions/adapters/metering.js';
import { MOTO_VERSION } from '../local/emulator.js';
import { startLocalRuntime } from '../local/runtime.js';

/** The environment as it was before the runtime pointed it at this run's emulator (handed to the delay bench). */
const startingEnv = { ...process.env };

const BODY_BYTES = 200;
const CONCURRENCY = 4;
/** Raw and HTTP produce alternate for ROUNDS rounds of `messages` each; the median rate is reported. */
const ROUNDS = 3;
/**
 * Batch sizes. One row repeats batch 100 with producer ids (de-duplication costs a transaction). It runs
 * first and small: moto deep-copies every table a transaction touches, once per action, so its
 * transactions slow down as tables grow — that row's rates measure moto, its request units are the point.
 */
type BodyKind = 'hex' | 'json' | 'random';
const CASES: Array<{ batch: number; ids?: boolean; session?: boolean; messages: number; rounds: number; body?: BodyKind }> = [
  { batch: 100, ids: true, messages: 500, rounds: 1 },
  // Producer sessions (docs/sessions.md): retry-safe like producer ids, one transaction per request.
  // Batch 100 at 4,000 a round took ~0.15 s a round: too short to compare (46-96% consume/produce over four
  // runs of the same code); 20,000 a round takes about a second, the consume run after them about four.
  { batch: 100, session: true, messages: 20_000, rounds: ROUNDS },
  { batch: 1, messages: 200, rounds: ROUNDS },
  { batch: 10, messages: 1000, rounds: ROUNDS },
  { batch: 100, messages: 20_000, rounds: ROUNDS },
  // Segment compression (functions/adapters/segmentCodec.ts) by body: realistic JSON, and random bytes.
  { batch: 100, messages: 2000, rounds: 1, body: 'json' },
  { batch: 100, messages: 2000, rounds: 1, body: 'random' },
];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let sequence = 0;
/**
 * About BODY_BYTES of body: 'hex' (the default rows: random hex, which brotli halves), 'json' (an order
 * event with repetitive field names, as real payloads are), 'random' (base64 of random bytes: barely compressible).
 */
function message(kind: BodyKind = 'hex'): { body: unknown } | { bodyBase64: string } {
  if (kind === 'random') return { bodyBase64: randomBytes((BODY_BYTES * 3) / 4).toString('base64') };
  if (kind === 'json') {
    const n = sequence++;
    return {
      body: {
        orderId: `ord-${1_000_000 + n}`,
        customerId: `c-${(n * 7919) % 100_000}`,
        status: n % 3 === 0 ? 'created' : 'paid',
        items: [{ sku: `SKU-${n % 500}`, qty: 1 + (n % 3), price: (n % 100) + 0.99 }],
        createdAt: new Date(1_760_000_000_000 + n * 1000).toISOString(),
      },
    };
  }
  return { body: randomBytes(BODY_BYTES / 2).toString('hex') };
}

async function post(url: string, payload: unknown) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function put(url: string, payload: unknown) {
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
}

/** Runs `requests` calls of `work` with CONCURRENCY in flight (clients numbered 0..CONCURRENCY-1); returns seconds taken. */
async function timed(requests: number, work: (i: number, client: number) => Promise<void>) {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, client) => {
      while (next < requests) await work(next++, client);
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

interface Row {
  batch: string;
  produceRate: number;
  produceWru: number;
  produceRru: number;
  rawRate: number;
  consumeRate: number;
  consumeRru: number;
  consumeWru: number;
}

async function main() {
  const runtime = await startLocalRuntime({ apiPort: 0, tablePrefix: `bench${Date.now().toString(36)}`, log: () => undefined });
  const api = runtime.apiUrl;
  const raw = new DynamoDBClient({});
  const logTable = process.env.LOG_TABLE!;
  const rows: Row[] = [];
  try {
    for (const { batch, ids, session, messages, rounds, body: kind } of CASES) {
      const total = messages;
      const requests = total / batch;
      const topic = `bench-${batch}-${randomBytes(3).toString('hex')}`;
      await put(`${api}/v1/topics/${topic}`, { partitions: CONCURRENCY });
      await put(`${api}/v1/topics/${topic}/groups/g`, { startFrom: 'earliest' });
      const rawRates: number[] = [];
      const httpRates: number[] = [];
      let writeUnits = 0;
      let readUnits = 0;
      // Producer sessions: one per client, each sending its requests in sequence.
      const nextSequence = Array.from({ length: CONCURRENCY }, () => 0);
      for (let round = 0; round < rounds; round++) {
        const payloads = Array.from({ length: requests }, () => ({
          messages: Array.from({ length: batch }, () => ({ ...message(kind), ...(ids ? { id: randomBytes(8).toString('hex') } : {}) })),
        }));
        // Raw PutItem: the same bytes, one item per request, same concurrency, same emulator.
        const rawSeconds = await timed(requests, async (i) => {
          await raw.send(
            new PutItemCommand({
              TableName: logTable,
              Item: {
                pk: { S: `raw-${topic}#${i % CONCURRENCY}` },
                sk: { N: String(round * requests + i) },
                m: { S: JSON.stringify(payloads[i]!.messages) },
              },
            }),
          );
        });
        rawRates.push(total / rawSeconds);
        startMetering();
        const produceSeconds = await timed(requests, async (i, client) => {
          const producer = session ? { producer: { session: `client-${client}`, sequence: nextSequence[client]! } } : {};
          nextSequence[client]! += batch;
          await post(`${api}/v1/topics/${topic}/messages`, { ...payloads[i], ...producer });
        });
        const produced = readMeter();
        writeUnits += produced.writeUnits;
        readUnits += produced.readUnits;
        httpRates.push(total / produceSeconds);
        if (process.env.BENCH_DETAIL) console.log(batch, 'produce', produced.byCommand);
      }
      const totalProduced = total * rounds;

      startMetering();
      let consumed = 0;
      const consumeStarted = process.hrtime.bigint();
      /** When the last message was delivered or the last acks confirmed: the end of the consume run. */
      let consumeEnded = consumeStarted;
      const worked = () => {
        consumeEnded = process.hrtime.bigint();
      };
      // The consumer loop docs/api-changes.md recommends: each pull acks the previous batch (ackReceipts),
      // one call per batch; the last batch is acked on its own. A pull that carries acks does not wait for
      // messages (waitSeconds 0: while there are messages it answers with them at once anyway), and a pull
      // with nothing to ack long-polls. The run ends when every message is delivered and every ack
      // confirmed, not when the idle long polls of consumers that found nothing left end (up to
      // `waitSeconds` later: 1 s was a fifth of the whole run at batch 100, and half of it once pulls got faster).
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          let receipts: string[] = [];
          while (consumed < totalProduced) {
            const acking = receipts.length > 0;
            const { messages } = await post(`${api}/v1/topics/${topic}/groups/g/pull`, {
              max: Math.min(batch, 100),
              waitSeconds: acking ? 0 : 1,
              ...(acking ? { ackReceipts: receipts } : {}),
            });
            if (acking || messages.length > 0) worked();
            receipts = messages.map((m: { receipt: string }) => m.receipt);
            consumed += messages.length;
          }
          if (receipts.length > 0) {
            await post(`${api}/v1/topics/${topic}/groups/g/ack`, { receipts });
            worked();
          }
        }),
      );
      const consumeSeconds = Number(consumeEnded - consumeStarted) / 1e9;
      const consumedMeter = readMeter();
      if (process.env.BENCH_DETAIL) console.log(batch, 'consume', consumedMeter.byCommand);
      rows.push({
        batch: ids ? `${batch} + ids` : session ? `${batch} + session` : kind ? `${batch}, ${kind} bodies` : String(batch),
        produceRate: median(httpRates),
        produceWru: writeUnits / totalProduced,
        produceRru: readUnits / totalProduced,
        rawRate: median(rawRates),
        consumeRate: totalProduced / consumeSeconds,
        consumeRru: consumedMeter.readUnits / totalProduced,
        consumeWru: consumedMeter.writeUnits / totalProduced,
      });
    }
  } finally {
    await runtime.stop();
  }

  const f = (n: number, d = 0) => n.toFixed(d);
  console.log(`\nSluice bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, emulator moto ${MOTO_VERSION} (server mode, loopback)`);
  console.log(`${BODY_BYTES}-byte bodies, ${CONCURRENCY} concurrent clients; produce rates are the median of ${ROUNDS} alternating rounds; request units computed from item sizes (DynamoDB rounding rules)\n`);
  console.log('| batch | produce msg/s (HTTP) | raw PutItem msg/s (same bytes) | HTTP / raw | produce WRU/msg | produce RRU/msg | consume msg/s (pull with ackReceipts) | consume RRU/msg | consume WRU/msg |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of [...rows.slice(1), rows[0]!]) {
    console.log(
      `| ${r.batch} | ${f(r.produceRate)} | ${f(r.rawRate)} | ${f((r.produceRate / r.rawRate) * 100)}% | ${f(r.produceWru, 3)} | ${f(r.produceRru, 3)} | ${f(r.consumeRate)} | ${f(r.consumeRru, 3)} | ${f(r.consumeWru, 3)} |`,
    );
  }
  const at100 = rows.find((r) => r.batch === '100')!;
  console.log(`\nTargets (DESIGN.md) at batch 100: produce ≤ 0.3 WRU/msg → ${f(at100.produceWru, 3)}; consume ≤ 0.1 RRU/msg → ${f(at100.consumeRru, 3)}; HTTP/raw ≥ 50% → ${f((at100.produceRate / at100.rawRate) * 100)}%`);
  printIssue11Figures(rows);
  printCostComparison(rows);
}

/** Issue 11's table, figure by figure, from this run. */
function printIssue11Figures(rows: Row[]) {
  const f = (n: number, d = 0) => n.toFixed(d);
  const at = (batch: string) => rows.find((r) => r.batch === batch)!;
  const b100 = at('100');
  const ids = at('100 + ids');
  const b1 = at('1');
  console.log('\nIssue 11 figures (batch 100 unless said; the raw emulator PutItem rate of the same run beside each)');
  console.log('| figure | this run | target | raw PutItem msg/s |');
  console.log('|---|---:|---|---:|');
  console.log(`| produce WRU per 200-byte message (hex) | ${f(b100.produceWru, 3)} | ≤ 0.10 | ${f(b100.rawRate)} |`);
  for (const kind of ['json', 'random']) {
    const r = at(`100, ${kind} bodies`);
    console.log(`| produce WRU / consume RRU per message, ${kind} bodies | ${f(r.produceWru, 3)} / ${f(r.consumeRru, 3)} | — | ${f(r.rawRate)} |`);
  }
  console.log(`| produce with producer ids, WRU per message | ${f(ids.produceWru, 3)} | ≤ 1.0 | ${f(ids.rawRate)} |`);
  console.log(`| produce with producer ids, throughput vs without | ${f(ids.produceRate)} vs ${f(b100.produceRate)} msg/s (${f((ids.produceRate / b100.produceRate) * 100)}%) | ≥ 50% | ${f(ids.rawRate)} |`);
  const session = at('100 + session');
  console.log(`| produce in a producer session (retry-safe, docs/sessions.md), WRU per message | ${f(session.produceWru, 3)} | ≤ 1.0 | ${f(session.rawRate)} |`);
  console.log(`| produce in a producer session, throughput vs without | ${f(session.produceRate)} vs ${f(b100.produceRate)} msg/s (${f((session.produceRate / b100.produceRate) * 100)}%) | ≥ 50% | ${f(session.rawRate)} |`);
  console.log(`| consume (pull with ackReceipts) vs produce | ${f(b100.consumeRate)} vs ${f(b100.produceRate)} msg/s (${f((b100.consumeRate / b100.produceRate) * 100)}%) | ≥ 50% | ${f(b100.rawRate)} |`);
  console.log(`| consume at batch 1 vs produce at batch 1 | ${f(b1.consumeRate)} vs ${f(b1.produceRate)} msg/s (${f((b1.consumeRate / b1.produceRate) * 100)}%) | ≥ 50% | ${f(b1.rawRate)} |`);
}

/**
 * End-to-end cost per million 200-byte messages, one consumer group and three, at AWS us-east-1 list prices
 * (docs/performance.md, "Cost against SQS, SNS and Kinesis", cites them): Sluice from this run's request units
 * (batches of 100), next to SQS standard with batches of 10, SNS → SQS fan-out, and Kinesis Data Streams on-demand.
 */
function printCostComparison(rows: Row[]) {
  const P = { wru: 0.625, rru: 0.125, api: 1.0, lambdaRequest: 0.2, gbSecond: 0.0000133334 * 1e6, sqs: 0.4, sns: 0.5, gbMonth: 0.25 };
  // Days a message is stored: 72 h of retention (the default), the day of grace before TTL may delete it, and
  // up to 2 days until TTL does (AWS: "typically within two days"); TTL deletes themselves are free.
  const storedDays = 3 + 1 + 2;
  const lambda = (calls: number, ms: number, gb: number) => calls * P.lambdaRequest + (calls * ms * gb * P.gbSecond) / 1000 / 1e6;
  const sluice = (r: Row, groups: number) => {
    const requests = 1e6 / 100;
    const produce = (requests * P.api) / 1e6 + lambda(requests, 30, 0.5) / 1e6 + r.produceWru * P.wru + r.produceRru * P.rru;
    // One pull per batch that also acks the previous one (ackReceipts): one request and one invocation per batch.
    const consume = (requests * P.api) / 1e6 + lambda(requests, 50, 0.25) / 1e6 + r.consumeRru * P.rru + r.consumeWru * P.wru;
    // Storage: a message's share of its segment item is about its write units in KB (a WRU is 1 KB written).
    const storage = ((r.produceWru * 1024 * 1e6) / 2 ** 30) * P.gbMonth * (storedDays / 30);
    return produce + groups * consume + storage;
  };
  // SQS: send, receive and delete, each in batches of 10 (one request per 10 messages of 200 bytes).
  const sqs = (groups: number) => groups * 3 * (1e5 * P.sqs) / 1e6;
  // SNS → SQS: PublishBatch of 10 (one request per 64 KB), deliveries to SQS free on the SNS side; each queue then
  // a receive and a delete per 10 — and, if SQS bills the delivered message as a request, 1 per message (the upper bound).
  const sns = (groups: number, deliveriesBilled: boolean) => (1e5 * P.sns) / 1e6 + groups * (((deliveriesBilled ? 1e6 : 0) + 2e5) * P.sqs) / 1e6;
  // Kinesis on-demand: $0.08 per GB ingested (each record rounded up to 1 KB), $0.04 per GB read per consumer;
  // plus $0.04 per stream-hour (≈ $29 a month) whatever the volume (not in this column).
  const kinesis = (groups: number) => (1e6 / 2 ** 20) * 0.08 + groups * ((1e6 * 200) / 2 ** 30) * 0.04;
  const hex = rows.find((r) => r.batch === '100')!;
  const json = rows.find((r) => r.batch === '100, json bodies')!;
  console.log(
    `\nCost per million 200-byte messages, USD at us-east-1 list prices (Sluice: this run's units, batches of 100, produce + consume + ${storedDays} days of storage; TTL deletes are free)`,
  );
  console.log('| consumer groups | Sluice, hex bodies | Sluice, JSON bodies | SQS standard (batches of 10) | SNS → SQS fan-out | Kinesis on-demand (+ $29/month per stream) |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const groups of [1, 3]) {
    console.log(
      `| ${groups} | ${sluice(hex, groups).toFixed(3)} | ${sluice(json, groups).toFixed(3)} | ${sqs(groups).toFixed(3)} | ${groups === 1 ? '—' : `${sns(groups, false).toFixed(3)}–${sns(groups, true).toFixed(3)}`} | ${kinesis(groups).toFixed(3)} |`,
    );
  }
}

await main();

if (!process.env.BENCH_SKIP_DELAY) {
  const delay = spawnSync(process.execPath, [...process.execArgv, new URL('./delay.ts', import.meta.url).pathname], { stdio: 'inherit', env: startingEnv });
  if (delay.status !== 0) process.exitCode = delay.status ?? 1;
}

if (!process.env.BENCH_SKIP_TRANSACTIONS) {
  // The transactions bench (bench/transactions.ts): likewise a process of its own, with its own emulator.
  const transactions = spawnSync(process.execPath, [...process.execArgv, new URL('./transactions.ts', import.meta.url).pathname], {
    stdio: 'inherit',
    env: startingEnv,
  });
  if (transactions.status !== 0) process.exitCode = transactions.status ?? 1;
}

if (!process.env.BENCH_SKIP_PUSH) {
  // The push bench (bench/push.ts): likewise a process of its own, with its own emulator.
  const push = spawnSync(process.execPath, [...process.execArgv, new URL('./push.ts', import.meta.url).pathname], { stdio: 'inherit', env: startingEnv });
  if (push.status !== 0) process.exitCode = push.status ?? 1;
}
