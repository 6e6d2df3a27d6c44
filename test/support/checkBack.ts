import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { SFNClient, DescribeExecutionCommand, ExecutionDoesNotExist } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, inject } from 'vitest';
import { forgetConfig } from '../../functions/config.js';
import { forgetTransactionPorts } from '../../functions/adapters/transactionPorts.js';
import { ensureQueue } from '../../local/queues.js';
import { createStateMachines, useLocalStateMachines } from '../../local/stateMachines.js';
import { startSqsPoller, type SqsPoller } from '../../local/sqsPoller.js';
import { sleep, uniqueName } from './api.js';

export interface CheckRequestSeen {
  readonly at: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly parsed: { id: string; check: number; messages: Array<{ topic: string; id?: string; key?: string }> };
}

/**
 * A producer's check-back endpoint for tests: `/answers/<a>,<b>,…` answers check n with the nth answer
 * (the last one repeats): commit, rollback, unknown (200 with that decision), 500, or garbage (200, not JSON).
 * Records every request by transaction id.
 */
export function useCheckBackEndpoint() {
  const state: { url: string; seen: Map<string, CheckRequestSeen[]>; server?: Server } = { url: '', seen: new Map() };
  beforeAll(async () => {
    state.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const parsed = JSON.parse(body) as CheckRequestSeen['parsed'];
        const list = state.seen.get(parsed.id) ?? [];
        list.push({ at: Date.now(), headers: req.headers, body, parsed });
        state.seen.set(parsed.id, list);
        const answers = decodeURIComponent((req.url ?? '').replace(/^\/answers\//, '')).split(',');
        const answer = answers[Math.min(parsed.check, answers.length) - 1] ?? 'unknown';
        if (answer === '500') {
          res.writeHead(500).end('boom');
        } else if (answer === 'garbage') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('not json');
        } else {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ decision: answer }));
        }
      });
    });
    await new Promise<void>((r) => state.server!.listen(0, '127.0.0.1', r));
    const address = state.server.address();
    state.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((r) => state.server?.close(r));
  });
  return { state, answering: (...answers: string[]) => ({ url: `${state.url}/answers/${answers.join(',')}` }) };
}

/**
 * This file's own TransactionTimeout and CheckBack queues (visibility `visibilitySeconds`, so a failed
 * check comes back quickly) and its own check-back state machine over them, with the handlers' variables
 * pointed at them until afterAll. `pollers: false` leaves the CheckBack queue to the test.
 */
export function useCheckBackServices(options: { visibilitySeconds?: number; pollers?: boolean } = {}) {
  const visibility = options.visibilitySeconds ?? 5;
  const state: { checkBackUrl: string; timeoutUrl: string; stateMachineArn: string; pollers: SqsPoller[] } = {
    checkBackUrl: '',
    timeoutUrl: '',
    stateMachineArn: '',
    pollers: [],
  };
  const saved: Record<string, string | undefined> = {};
  beforeAll(async () => {
    const sqs = new SQSClient({});
    const prefix = uniqueName(inject('tablePrefix'));
    const queue = async (id: string) => {
      const dlq = await ensureQueue(sqs, `${prefix}-${id}-dlq`, {});
      const made = await ensureQueue(sqs, `${prefix}-${id}`, {
        VisibilityTimeout: String(visibility),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 50 }),
      });
      return { ...made, deadLetterUrl: dlq.url, deadLetterArn: dlq.arn };
    };
    const timeout = await queue('TransactionTimeout');
    const checkBack = await queue('CheckBack');
    const urls = { ...inject('queueUrls'), TransactionTimeout: timeout, CheckBack: checkBack };
    const machines = await createStateMachines(new SFNClient({}), prefix, urls);
    for (const k of ['TRANSACTION_TIMEOUT_QUEUE_URL', 'CHECK_BACK_QUEUE_URL', 'CHECK_BACK_STATE_MACHINE_ARN']) saved[k] = process.env[k];
    process.env.TRANSACTION_TIMEOUT_QUEUE_URL = timeout.url;
    process.env.CHECK_BACK_QUEUE_URL = checkBack.url;
    useLocalStateMachines(machines);
    forgetConfig();
    forgetTransactionPorts();
    state.checkBackUrl = checkBack.url;
    state.timeoutUrl = timeout.url;
    state.stateMachineArn = machines.checkBackArn;
    const poll = (queueUrl: string, functionName: string, load: () => Promise<unknown>) =>
      startSqsPoller({ queueUrl, functionName, load: load as never, timeoutSeconds: visibility, waitTimeSeconds: 1, concurrency: 2, log: () => undefined });
    state.pollers.push(await poll(timeout.url, 'transactionTimeout', async () => (await import('../../functions/handlers/transactionTimeout.js')).handler));
    if (options.pollers !== false) {
      state.pollers.push(await poll(checkBack.url, 'checkBackWorker', async () => (await import('../../functions/handlers/checkBackWorker.js')).handler));
    }
  });
  afterAll(async () => {
    for (const p of state.pollers.splice(0)) await p.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    forgetConfig();
    forgetTransactionPorts();
  });
  return state;
}

/** The check-back execution of a transaction: its status, once it exists. */
export async function executionStatus(stateMachineArn: string, txId: string): Promise<string | undefined> {
  const executionArn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${txId}`;
  try {
    return (await new SFNClient({}).send(new DescribeExecutionCommand({ executionArn }))).status;
  } catch (error) {
    if (error instanceof ExecutionDoesNotExist || (error instanceof Error && error.name === 'ExecutionDoesNotExist')) return undefined;
    throw error;
  }
}

/** Polls `read` until `done` holds, or throws after `timeoutMs` with the last value. */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (!done(last)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await sleep(100);
    last = await read();
  }
  return last;
}
