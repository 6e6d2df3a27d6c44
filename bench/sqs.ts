/**
 * moto's SQS under queue length (docs/local-runtime.md, "moto's SQS under load"): send, receive and
 * delivery lateness with 100, 1,000 and 10,000 messages queued, messages sent with DelaySeconds 0..10.
 * Starts its own emulator on a free port and stops it at the end.
 *
 *   npx tsx bench/sqs.ts [lengths, default 100,1000,10000] [stock | patched | both, default both]
 *
 * "stock" is moto's SQS as released (SLUICE_MOTO_SQS=stock); "patched" is what the local runtime runs:
 * local/moto_server.py's fixes of moto's per-message costs and of its once-a-second long-poll wake.
 */
import { cpus, totalmem } from 'node:os';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { ensureEmulatorInstalled, freePort, MOTO_VERSION, startEmulator } from '../local/emulator.js';
import { useLocalAws } from '../local/environment.js';

const lengths = (process.argv[2] ?? '100,1000,10000').split(',').map(Number);
const modes = (process.argv[3] ?? 'both') === 'both' ? ['stock', 'patched'] : [process.argv[3]!];
/** Our SQS message: one group of delayed messages, ~100 ids of 40 bytes plus the topic. */
const BODY = JSON.stringify({ t: 'orders@abcdef12', ids: Array.from({ length: 100 }, (_, i) => `pending-id-${String(i).padStart(28, '0')}`) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pct = (values: number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const rate = (count: number, ms: number) => Math.round((count / ms) * 1000);

async function sendBatches(client: SQSClient, url: string, count: number, delay: (i: number) => number, from = 0) {
  for (let i = 0; i < count; i += 10) {
    const entries = Array.from({ length: Math.min(10, count - i) }, (_, j) => ({ Id: `m${j}`, MessageBody: BODY, DelaySeconds: delay(from + i + j) }));
    const out = await client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
    if (out.Failed?.length) throw new Error(`send failed: ${JSON.stringify(out.Failed)}`);
  }
}

/** Receives (10 at a time) and deletes until `count` messages are in, with `loops` concurrent receivers. */
async function drain(client: SQSClient, url: string, count: number, loops: number, wait: number, onMessage?: (m: Message, at: number) => void) {
  let got = 0;
  // A loop still long-polling when the last message is in is cut off (its request is aborted).
  const done = new AbortController();
  let receiveMs = 0;
  let deleteMs = 0;
  let receives = 0;
  let deletes = 0;
  const loop = async () => {
    while (got < count) {
      const t0 = performance.now();
      let out;
      try {
        out = await client.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: wait, MessageSystemAttributeNames: ['All'] }),
          { abortSignal: done.signal },
        );
      } catch (error) {
        if (done.signal.aborted) return;
        throw error;
      }
      const at = Date.now();
      receiveMs += performance.now() - t0;
      receives++;
      const messages = out.Messages ?? [];
      if (messages.length === 0) continue;
      got += messages.length;
      for (const m of messages) onMessage?.(m, at);
      const t1 = performance.now();
      await client.send(
        new DeleteMessageBatchCommand({ QueueUrl: url, Entries: messages.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })) }),
      );
      deleteMs += performance.now() - t1;
      deletes++;
    }
    done.abort();
  };
  await Promise.all(Array.from({ length: loops }, loop));
  return { receiveMsPerCall: receiveMs / Math.max(1, receives), deleteMsPerCall: deleteMs / Math.max(1, deletes) };
}

interface Row {
  mode: string;
  queued: number;
  fillRate: number;
  batchSendRateAtLength: number;
  singleSendRateAtLength: number;
  singleSendRateWithPollers: number;
  receiveRate: number;
  receiveMs: number;
  deleteMs: number;
  lateP50: number;
  lateP99: number;
  lateMax: number;
}

async function measure(client: SQSClient, mode: string, queued: number): Promise<Row> {
  const name = `bench-${mode}-${queued}-${Date.now().toString(36)}`;
  const url = (await client.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '60' } }))).QueueUrl!;

  // 1. Fill to `queued` with SendMessageBatch, DelaySeconds 0..10, no receiver; the last tenth is the rate at that length.
  const fillStarted = performance.now();
  const head = Math.floor(queued * 0.9);
  await sendBatches(client, url, head, (i) => i % 11);
  const tailStarted = performance.now();
  await sendBatches(client, url, queued - head, (i) => i % 11, head);
  const filled = performance.now();
  const fillRate = rate(queued, filled - fillStarted);
  const batchSendRateAtLength = rate(queued - head, filled - tailStarted);

  // 2. Single SendMessage at that length (100 sends), still no receiver.
  const singleStarted = performance.now();
  for (let i = 0; i < 100; i++) await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: BODY, DelaySeconds: i % 11 }));
  const singleSendRateAtLength = rate(100, performance.now() - singleStarted);

  // 3. Receive rate: wait until every delay has run out, then drain (2 receivers, Receive 10 + DeleteBatch), as the poller does.
  await sleep(11_000);
  const drainStarted = performance.now();
  const calls = await drain(client, url, queued + 100, 2, 1);
  const receiveRate = rate(queued + 100, performance.now() - drainStarted);

  // 4. The local runtime's steady state: `queued` messages delayed 900 s (not visible), two pollers long-polling.
  //    Single sends with DelaySeconds 1..10 while they wait: send rate, and how late each arrives after its delay.
  await sendBatches(client, url, queued, () => 900);
  const sentAt = new Map<string, { at: number; delay: number }>();
  const late: number[] = [];
  const probes = 100;
  const receiving = drain(client, url, probes, 2, 20, (m, at) => {
    const sent = sentAt.get(m.Body!);
    if (sent) late.push(at - (sent.at + sent.delay * 1000));
  });
  const probeStarted = performance.now();
  for (let i = 0; i < probes; i++) {
    const body = `probe-${i}`;
    const delay = 1 + (i % 10);
    sentAt.set(body, { at: Date.now(), delay });
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, DelaySeconds: delay }));
  }
  const singleSendRateWithPollers = rate(probes, performance.now() - probeStarted);
  await receiving;
  await client.send(new DeleteQueueCommand({ QueueUrl: url }));
  return {
    mode,
    queued,
    fillRate,
    batchSendRateAtLength,
    singleSendRateAtLength,
    singleSendRateWithPollers,
    receiveRate,
    receiveMs: calls.receiveMsPerCall,
    deleteMs: calls.deleteMsPerCall,
    lateP50: pct(late, 50),
    lateP99: pct(late, 99),
    lateMax: Math.max(...late),
  };
}

ensureEmulatorInstalled();
const rows: Row[] = [];
for (const mode of modes) {
  process.env.SLUICE_MOTO_SQS = mode;
  const emulator = await startEmulator(await freePort());
  useLocalAws(emulator.endpoint, 'bench');
  const client = new SQSClient({});
  try {
    for (const queued of lengths) {
      const row = await measure(client, mode, queued);
      rows.push(row);
      console.error(`[bench] ${JSON.stringify(row)}`);
    }
  } finally {
    client.destroy();
    await emulator.stop();
  }
}

const ms = (v: number) => `${Math.round(v)} ms`;
console.log(`\nmoto ${MOTO_VERSION} SQS — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${BODY.length}-byte bodies\n`);
console.log('| moto SQS | queued | fill msg/s (batch 10) | batch send msg/s at length | single send msg/s at length | single send msg/s, 2 pollers waiting, length delayed 900 s | receive+delete msg/s (2 loops) | receive / delete-batch per call | lateness after delay p50 / p99 / max |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.mode} | ${r.queued.toLocaleString('en')} | ${r.fillRate} | ${r.batchSendRateAtLength} | ${r.singleSendRateAtLength} | ${r.singleSendRateWithPollers} | ${r.receiveRate} | ${ms(r.receiveMs)} / ${ms(r.deleteMs)} | ${ms(r.lateP50)} / ${ms(r.lateP99)} / ${ms(r.lateMax)} |`,
  );
}
