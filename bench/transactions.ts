/**
 * Transactions bench (`npm run bench:transactions`; `npm run bench` runs it after its own tables): on the
 * local runtime (API gateway, handlers, the TransactionTimeout and CheckBack queues' pollers, the check-back
 * state machine executed by the emulator), in one run:
 *
 * 1. commit throughput and latency next to plain produce: one message (prepare + commit vs one produce), and
 *    three messages in three topics (one transaction vs three produces), with request units per message;
 * 2. the check-back start delay: transactions left prepared with a check-back URL answering commit, at a
 *    steady load (one reaching its timeout each second) and in a burst (100 within 5 s); delay = when the
 *    endpoint received check 1 − the transaction's expiresAt;
 * 3. cost per million transactions at AWS list prices, committed in time and checked back once.
 *
 * Knobs: BENCH_TX_COUNT (200 per throughput case), BENCH_TX_STEADY (20), BENCH_TX_CHECKED (100), SLUICE_SQS_POLLERS (5).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { readMeter, startMetering } from '../functions/adapters/metering.js';
import { MOTO_VERSION } from '../local/emulator.js';
import { startLocalRuntime } from '../local/runtime.js';

const COUNT = Number(process.env.BENCH_TX_COUNT ?? 200);
const CHECKED = Number(process.env.BENCH_TX_CHECKED ?? 100);
const STEADY = Number(process.env.BENCH_TX_STEADY ?? 20);
const CONCURRENCY = 4;
const BODY_BYTES = 200;
process.env.SLUICE_SQS_POLLERS ??= '5';

/** AWS list prices, us-east-1 (docs/performance.md, "Prices"). */
const PRICE = {
  wru: 0.625 / 1e6,
  rru: 0.125 / 1e6,
  sqsRequest: 0.4 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: 0.0000133334,
  apiRequest: 1.0 / 1e6,
  /** Step Functions Standard: $0.025 per 1,000 state transitions. */
  stateTransition: 25 / 1e6,
};
/** Lambda time per API call or queue batch on AWS (a few DynamoDB calls of ~5-10 ms): an assumption, at 512 MB. */
const LAMBDA_MS = 30;
const LAMBDA_GB = 0.5;
/** State transitions of a check-back decided at the first check: Ask the producer, Decided?, Decided. */
const TRANSITIONS_ONE_CHECK = 3;

/* eslint-disable @typescript-eslint/no-explicit-any */
let throttled = 0;
/** One API call; a 429 is retried after its retry-after, as a client should (counted in the table). */
async function call(method: string, url: string, payload?: unknown): Promise<any> {
  for (;;) {
    const res = await fetch(url, { method, ...(payload !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) } : {}) });
    if (res.status === 429) {
      throttled++;
      await res.text();
      await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000);
      continue;
    }
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
    return res.status === 204 ? undefined : res.json();
  }
}
const body = () => randomBytes(BODY_BYTES / 2).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (values: readonly number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};
const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');

/** Runs `count` operations with CONCURRENCY in flight; returns seconds and each operation's latency (ms). */
async function timed(count: number, op: (i: number) => Promise<void>) {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = performance.now();
        await op(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies };
}

interface Row {
  name: string;
  messagesPerOp: number;
  opsPerSecond: number;
  p50: number;
  p99: number;
  wruPerMessage: number;
  rruPerMessage: number;
  throttled: number;
}

async function main() {
  const runtime = await startLocalRuntime({ apiPort: 0, tablePrefix: `benchtx${Date.now().toString(36)}`, log: () => undefined });
  const api = runtime.apiUrl;
  const topics = [0, 1, 2].map(() => `benchtx-${randomBytes(3).toString('hex')}`);
  const rows: Row[] = [];
  const received = new Map<string, number>();
  const decider = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const check = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; check: number };
      if (check.check === 1 && !received.has(check.id)) received.set(check.id, Date.now());
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ decision: 'commit' }));
    });
  });
  await new Promise<void>((r) => decider.listen(0, '127.0.0.1', () => r()));
  const deciderUrl = `http://127.0.0.1:${(decider.address() as AddressInfo).port}/check`;
  type CheckBackRun = { count: number; starts: number[]; delays: number[]; decided: number; wru: number; rru: number };
  const none: CheckBackRun = { count: 0, starts: [], delays: [], decided: 0, wru: 0, rru: 0 };
  let checkBack = none;
  let steady = none;
  try {
    for (const t of topics) await call('PUT', `${api}/v1/topics/${t}`, { partitions: 4 });
    const measure = async (name: string, messagesPerOp: number, op: (i: number) => Promise<void>) => {
      startMetering();
      throttled = 0;
      const { seconds, latencies } = await timed(COUNT, op);
      const meter = readMeter();
      if (process.env.BENCH_DETAIL) console.log(name, meter.byCommand);
      rows.push({
        throttled,
        name,
        messagesPerOp,
        opsPerSecond: COUNT / seconds,
        p50: pct(latencies, 50),
        p99: pct(latencies, 99),
        wruPerMessage: meter.writeUnits / (COUNT * messagesPerOp),
        rruPerMessage: meter.readUnits / (COUNT * messagesPerOp),
      });
    };
    await measure('produce, 1 message', 1, async () => {
      await call('POST', `${api}/v1/topics/${topics[0]}/messages`, { messages: [{ body: body() }] });
    });
    await measure('transaction, 1 message (prepare + commit)', 1, async () => {
      const tx = await call('POST', `${api}/v1/transactions`, { messages: [{ topic: topics[0], body: body() }], timeoutSeconds: 3600 });
      await call('POST', `${api}/v1/transactions/${tx.id}/commit`);
    });
    await measure('produce, 3 messages to 3 topics (3 requests)', 3, async () => {
      for (const t of topics) await call('POST', `${api}/v1/topics/${t}/messages`, { messages: [{ body: body() }] });
    });
    await measure('transaction, 3 messages in 3 topics', 3, async () => {
      const tx = await call('POST', `${api}/v1/transactions`, { messages: topics.map((t) => ({ topic: t, body: body() })), timeoutSeconds: 3600 });
      await call('POST', `${api}/v1/transactions/${tx.id}/commit`);
    });

    // Check-back: prepared and left; the check-back asks the decider, which answers commit. Two loads: a
    // steady one (one transaction reaching its timeout per second) and a burst (CHECKED within 5 s).
    const checkBackRun = async (count: number, timeoutOf: (i: number) => number) => {
      startMetering();
      const prepared: Array<{ id: string; expiresAt: number }> = [];
      for (let i = 0; i < count; i++) {
        const tx = await call('POST', `${api}/v1/transactions`, {
          messages: [{ topic: topics[1], body: body() }],
          timeoutSeconds: timeoutOf(i),
          checkBack: { url: deciderUrl },
        });
        prepared.push({ id: tx.id, expiresAt: Date.parse(tx.expiresAt) });
      }
      const cap = Math.max(...prepared.map((p) => p.expiresAt)) + 60_000;
      let decided = 0;
      while (Date.now() < cap) {
        decided = 0;
        for (const p of prepared) if ((await call('GET', `${api}/v1/transactions/${p.id}`)).state === 'committed') decided++;
        if (decided === prepared.length) break;
        await sleep(1000);
      }
      const meter = readMeter();
      // Where the delay goes: the timeout consumer starting the execution, then the state machine reaching the producer.
      const sfn = new SFNClient({});
      const machineArn = process.env.CHECK_BACK_STATE_MACHINE_ARN!;
      const starts: number[] = [];
      for (const p of prepared) {
        const execution = await sfn.send(
          new DescribeExecutionCommand({ executionArn: `${machineArn.replace(':stateMachine:', ':execution:')}:${p.id}` }),
        );
        if (execution.startDate) starts.push(execution.startDate.getTime() - p.expiresAt);
      }
      return {
        count,
        starts,
        delays: prepared.flatMap((p) => (received.has(p.id) ? [received.get(p.id)! - p.expiresAt] : [])),
        decided,
        wru: meter.writeUnits / count,
        rru: meter.readUnits / count,
      };
    };
    steady = await checkBackRun(STEADY, (i) => 2 + i);
    checkBack = await checkBackRun(CHECKED, (i) => 2 + (i % 5));
  } finally {
    await new Promise<void>((r) => decider.close(() => r()));
    await runtime.stop();
  }

  console.log(`\nTransactions bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, moto ${MOTO_VERSION}`);
  console.log(`${BODY_BYTES}-byte bodies, ${CONCURRENCY} concurrent clients, ${COUNT} operations per row; request units from item sizes (DynamoDB rounding, transactional writes count twice)\n`);
  console.log('| operation | ops/s | messages/s | latency p50 (ms) | p99 (ms) | WRU/msg | RRU/msg | 429s retried |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${f(r.opsPerSecond)} | ${f(r.opsPerSecond * r.messagesPerOp)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.wruPerMessage, 2)} | ${f(r.rruPerMessage, 2)} | ${r.throttled} |`,
    );
  }
  const one = rows[1]!;
  const plain = rows[0]!;
  console.log(`\nCommitted-transaction throughput / plain produce (1 message): ${f((one.opsPerSecond / plain.opsPerSecond) * 100)}%`);
  console.log('\nCheck-back start delay after the timeout (target p99 ≤ 1000 ms): when the execution started, and when the producer received check 1');
  console.log('| load | checked | from expiresAt to | p50 (ms) | p99 (ms) | max (ms) | min (ms) |');
  console.log('|---|---:|---|---:|---:|---:|---:|');
  const line = (load: string, run: CheckBackRun, what: string, xs: number[]) =>
    console.log(
      `| ${load} | ${run.delays.length} of ${run.count} | ${what} | ${f(pct(xs, 50))} | ${f(pct(xs, 99))} | ${f(xs.length ? Math.max(...xs) : NaN)} | ${f(xs.length ? Math.min(...xs) : NaN)} |`,
    );
  for (const [load, run] of [
    [`steady: one timeout a second, ${STEADY} in all`, steady],
    [`burst: ${CHECKED} timeouts within 5 s`, checkBack],
  ] as const) {
    line(load, run, 'execution started (timeout consumer)', run.starts);
    line(load, run, 'check 1 received by the producer', run.delays);
  }

  // Cost per million transactions of one 200-byte message, at list prices.
  const lambdaCall = PRICE.lambdaRequest + (LAMBDA_MS / 1000) * LAMBDA_GB * PRICE.lambdaGbSecond;
  const inTime = {
    api: 2 * PRICE.apiRequest,
    lambda: 2 * lambdaCall + lambdaCall / 10, // prepare, commit; the timeout consumer, batches of 10
    dynamo: one.wruPerMessage * PRICE.wru + one.rruPerMessage * PRICE.rru + PRICE.rru, // + the timeout consumer's GetItem
    sqs: (1 + 2 / 10) * PRICE.sqsRequest, // the timeout message; receive + delete per batch of 10
    stepFunctions: 0,
  };
  const checked = {
    api: 1 * PRICE.apiRequest, // prepare only
    lambda: lambdaCall + lambdaCall / 10 + lambdaCall, // prepare; timeout consumer; the check-back worker (batch of 1)
    dynamo: checkBack.wru * PRICE.wru + checkBack.rru * PRICE.rru,
    sqs: (1 + 2 / 10) * PRICE.sqsRequest + 3 * PRICE.sqsRequest, // timeout message; the state machine's request: send, receive, delete
    stepFunctions: TRANSITIONS_ONE_CHECK * PRICE.stateTransition,
  };
  const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
  console.log('\nCost per million transactions (one 200-byte message each), USD at us-east-1 list prices');
  console.log('| case | API Gateway | Lambda | DynamoDB | SQS | Step Functions | total |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, c] of [
    ['committed in time', inTime],
    ['checked back once (answered commit)', checked],
  ] as const) {
    const m = (x: number) => (x * 1e6).toFixed(2);
    console.log(`| ${name} | ${m(c.api)} | ${m(c.lambda)} | ${m(c.dynamo)} | ${m(c.sqs)} | ${m(c.stepFunctions)} | ${m(total(c))} |`);
  }
  console.log(`(Lambda at ${LAMBDA_MS} ms × ${LAMBDA_GB * 1024} MB per call, an assumption; a check-back decided at check n adds ${3} transitions per further check.)`);
}

await main();
