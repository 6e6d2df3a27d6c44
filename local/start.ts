/**
 * `npm start`: runs the whole broker on this machine — the AWS emulator, the tables and the HTTP API
 * on 127.0.0.1:8787 — until Ctrl-C. Nothing needs an AWS account. SLUICE_EMULATOR=localstack serves SQS,
 * Step Functions and Scheduler from LocalStack instead of moto (local/environment.ts).
 */
import { startLocalRuntime } from './runtime.js';

const apiPort = Number(process.env.SLUICE_PORT ?? 8787);
const emulatorPort = Number(process.env.SLUICE_EMULATOR_PORT ?? 4566);

const runtime = await startLocalRuntime({
  apiPort,
  emulatorPort,
  tablePrefix: process.env.SLUICE_TABLE_PREFIX ?? 'sluice',
}).catch((error: Error) => {
  console.error(`[sluice] Could not start: ${error.message}`);
  process.exit(1);
});

const u = runtime.apiUrl;
console.log(`
Sluice is running.
  API       ${u}
${runtime.emulators.map((line, i) => `${i === 0 ? '  AWS       ' : '            '}${line}`).join('\n')}
            (the emulators keep their state in memory; it ends with this process)

Try it:
  curl -s -X PUT ${u}/v1/topics/orders -H 'content-type: application/json' -d '{"partitions": 4}'
  curl -s -X PUT ${u}/v1/topics/orders/groups/billing -H 'content-type: application/json' -d '{"startFrom": "earliest"}'
  curl -s -X POST ${u}/v1/topics/orders/messages -H 'content-type: application/json' -d '{"messages": [{"body": {"total": 42}, "key": "customer-7"}]}'
  curl -s -X POST ${u}/v1/topics/orders/groups/billing/pull -H 'content-type: application/json' -d '{"max": 10, "waitSeconds": 5}'
  curl -s -X POST ${u}/v1/topics/orders/groups/billing/ack -H 'content-type: application/json' -d '{"receipts": ["<receipt from the pull>"]}'

Ctrl-C stops everything.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('\n[sluice] Stopping …');
  await runtime.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
