/**
 * Transaction check-back (API.md "Transactions"): a transaction still prepared at its timeout is checked
 * back by the state machine of lib/checkBack.ts, executed by the emulator (moto's Step Functions
 * interpreter), with the check-back worker answering its task tokens.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { transactionPorts } from '../../functions/adapters/transactionPorts.js';
import { loadConfig } from '../../functions/config.js';
import { onTransactionTimeout, runCheck, type CheckRequest } from '../../functions/domain/transactions/checkBack.js';
import { eventually, executionStatus, useCheckBackEndpoint, useCheckBackServices } from '../support/checkBack.js';
import { pullAll, sleep, topicWithGroup, useApi, type Api } from '../support/api.js';
import { useLambdaService } from '../support/lambda.js';

async function transaction(api: Api, id: string) {
  const reply = await api('GET', `/v1/transactions/${id}`);
  expect(reply.status).toBe(200);
  return reply.body as {
    state: string;
    decidedBy?: string;
    checks: Array<{ check: number; at: string; answer: string; reason?: string }>;
    expiresAt: string;
  };
}

const decided = (tx: { state: string }) => tx.state !== 'prepared';

describe('check-back', () => {
  const api = useApi();
  const endpoint = useCheckBackEndpoint();
  const services = useCheckBackServices();
  const lambda = useLambdaService();

  async function prepareChecked(answers: string[], extra: Record<string, unknown> = {}) {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const reply = await api('POST', '/v1/transactions', {
      messages: [{ topic: t.topic, body: 'half', key: 'k1', id: `pid-${t.topic}` }],
      timeoutSeconds: 1,
      checkIntervalSeconds: 1,
      maxChecks: 3,
      checkBack: endpoint.answering(...answers),
      ...extra,
    });
    expect(reply.status, JSON.stringify(reply.body)).toBe(201);
    return { ...t, id: reply.body.id as string, secret: reply.body.signingSecret as string, expiresAt: Date.parse(reply.body.expiresAt) };
  }

  const settle = (id: string) => eventually(() => transaction(api, id), decided, 60_000, `transaction ${id}`);

  it('answered commit: the messages appear, decided by checkBack; the request is signed and names the messages', async () => {
    const t = await prepareChecked(['commit']);
    expect(await pullAll(api, t.groupPath, { waitSeconds: 0 })).toEqual([]);
    const tx = await settle(t.id);
    expect(tx).toMatchObject({ state: 'committed', decidedBy: 'checkBack' });
    expect(tx.checks.map((c) => [c.check, c.answer])).toEqual([[1, 'commit']]);
    expect((await pullAll(api, t.groupPath)).map((m) => m.body)).toEqual(['half']);
    const seen = endpoint.state.seen.get(t.id)!;
    expect(seen).toHaveLength(1);
    // Not before the timeout.
    expect(seen[0]!.at).toBeGreaterThanOrEqual(t.expiresAt);
    expect(seen[0]!.parsed).toEqual({ id: t.id, check: 1, messages: [{ topic: t.topic, id: `pid-${t.topic}`, key: 'k1' }] });
    const headers = Object.fromEntries(Object.entries(seen[0]!.headers).map(([k, v]) => [k, String(v)]));
    expect(() => new Webhook(t.secret).verify(seen[0]!.body, headers)).not.toThrow();
    await eventually(() => executionStatus(services.stateMachineArn, t.id), (s) => s === 'SUCCEEDED', 20_000, 'execution');
  });

  it('answered rollback: nothing appears, decided by checkBack', async () => {
    const t = await prepareChecked(['rollback']);
    expect(await settle(t.id)).toMatchObject({ state: 'rolledBack', decidedBy: 'checkBack' });
    expect(await pullAll(api, t.groupPath, { waitSeconds: 0 })).toEqual([]);
    expect((await api('POST', `/v1/transactions/${t.id}/commit`)).status).toBe(409);
  });

  it('unknown, then error, then commit: asked three times, the waits doubling (1 s, then 2 s)', async () => {
    const t = await prepareChecked(['unknown', '500', 'commit'], { maxChecks: 5 });
    const tx = await settle(t.id);
    expect(tx).toMatchObject({ state: 'committed', decidedBy: 'checkBack' });
    expect(tx.checks.map((c) => c.answer)).toEqual(['unknown', 'error', 'commit']);
    expect(tx.checks[1]!.reason).toContain('500');
    const at = endpoint.state.seen.get(t.id)!.map((s) => s.at);
    expect(at).toHaveLength(3);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(2000);
    expect((await pullAll(api, t.groupPath)).map((m) => m.body)).toEqual(['half']);
  });

  it('never decides (unknown, a reply that is not JSON): rolled back after maxChecks, decided by checkLimit', async () => {
    const t = await prepareChecked(['unknown', 'garbage', 'unknown']);
    const tx = await settle(t.id);
    expect(tx).toMatchObject({ state: 'rolledBack', decidedBy: 'checkLimit' });
    expect(tx.checks.map((c) => c.answer)).toEqual(['unknown', 'error', 'unknown']);
    expect(endpoint.state.seen.get(t.id)).toHaveLength(3);
    expect(await pullAll(api, t.groupPath, { waitSeconds: 0 })).toEqual([]);
    await eventually(() => executionStatus(services.stateMachineArn, t.id), (s) => s === 'SUCCEEDED', 20_000, 'execution');
  });

  it('a Lambda check-back: invoked with the same payload; a function error counts as an error, then its decision', async () => {
    const arn = 'arn:aws:lambda:us-east-1:123456789012:function:check-back-test';
    const payloads: Array<{ id: string; check: number }> = [];
    lambda.service!.register(arn, {
      handler: async (input: unknown) => {
        const event = input as { id: string; check: number };
        payloads.push(event);
        if (event.check === 1) throw new Error('database unavailable');
        return { decision: 'rollback' };
      },
    });
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const reply = await api('POST', '/v1/transactions', {
      messages: [{ topic: t.topic, body: 1 }],
      timeoutSeconds: 1,
      checkIntervalSeconds: 1,
      checkBack: { functionArn: arn },
    });
    const tx = await settle(reply.body.id);
    expect(tx).toMatchObject({ state: 'rolledBack', decidedBy: 'checkBack' });
    expect(tx.checks.map((c) => c.answer)).toEqual(['error', 'rollback']);
    expect(tx.checks[0]!.reason).toContain('function error');
    expect(payloads.map((p) => [p.id, p.check])).toEqual([
      [reply.body.id, 1],
      [reply.body.id, 2],
    ]);
  });

  it('decided by the producer before the timeout: never checked back, no execution', async () => {
    const t = await prepareChecked(['rollback']);
    expect((await api('POST', `/v1/transactions/${t.id}/commit`)).status).toBe(200);
    await sleep(3000);
    expect(endpoint.state.seen.get(t.id)).toBeUndefined();
    expect(await executionStatus(services.stateMachineArn, t.id)).toBeUndefined();
    expect((await transaction(api, t.id)).decidedBy).toBe('producer');
  });

  it('without a check-back: rolled back at the timeout, decided by timeout', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const reply = await api('POST', '/v1/transactions', { messages: [{ topic: t.topic, body: 1 }], timeoutSeconds: 1 });
    const tx = await settle(reply.body.id);
    expect(tx).toMatchObject({ state: 'rolledBack', decidedBy: 'timeout', checks: [] });
  });

  it('the producer commits while check-back is under way: the check-back ends with the producer decision', async () => {
    const t = await prepareChecked(['unknown'], { maxChecks: 10, checkIntervalSeconds: 2 });
    await eventually(async () => endpoint.state.seen.get(t.id)?.length ?? 0, (n) => n >= 1, 20_000, 'first check');
    expect((await api('POST', `/v1/transactions/${t.id}/commit`)).status).toBe(200);
    await eventually(() => executionStatus(services.stateMachineArn, t.id), (s) => s === 'SUCCEEDED', 20_000, 'execution');
    const tx = await transaction(api, t.id);
    expect(tx).toMatchObject({ state: 'committed', decidedBy: 'producer' });
    expect(endpoint.state.seen.get(t.id)!.length).toBeLessThanOrEqual(2);
  });
});

describe('check-back killed between any two AWS calls, or losing a reply', () => {
  const api = useApi();
  const endpoint = useCheckBackEndpoint();
  // The test takes the state machine's requests off the CheckBack queue itself and runs the worker's step.
  const services = useCheckBackServices({ pollers: false });
  afterEach(() => clearFault());

  async function prepared(timeoutSeconds: number) {
    const t = await topicWithGroup(api, { partitions: 1 });
    const reply = await api('POST', '/v1/transactions', {
      messages: [{ topic: t.topic, body: 'once', id: `pid-${t.topic}` }],
      timeoutSeconds,
      checkIntervalSeconds: 1,
      checkBack: endpoint.answering('commit'),
    });
    expect(reply.status).toBe(201);
    return { topic: t.topic, id: reply.body.id as string, expiresAt: Date.parse(reply.body.expiresAt) };
  }

  /** The state machine's next request on this file's CheckBack queue (taken off it, as the worker's event source would). */
  async function nextRequest(id: string): Promise<CheckRequest> {
    const sqs = new SQSClient({});
    for (;;) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: services.checkBackUrl, WaitTimeSeconds: 5, MaxNumberOfMessages: 1 }));
      for (const m of out.Messages ?? []) {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: services.checkBackUrl, ReceiptHandle: m.ReceiptHandle! }));
        const request = JSON.parse(m.Body!) as CheckRequest;
        if (request.id === id) return request;
      }
    }
  }

  async function logOf(topic: string) {
    return (await api('GET', `/v1/topics/${topic}/partitions/0/messages?from=0&limit=10`)).body.messages as unknown[];
  }

  for (const when of ['after', 'lostReply'] as const) {
    it(`the worker's step with its nth AWS call failing ${when === 'after' ? 'after it was applied' : 'to answer (the SDK retries it)'}: one commit, the decision reaches the state machine`, async () => {
      const config = loadConfig();
      let nth = 1;
      for (; nth < 50; nth++) {
        const t = await prepared(1);
        const request = await nextRequest(t.id);
        injectFault({ command: '*', when, nth });
        let crashed = false;
        try {
          await runCheck(dynamoStores(config), transactionPorts(config), request, Date.now() + 20_000);
        } catch {
          crashed = true;
        }
        const fired = faultFired();
        clearFault();
        // SQS hands the request over again after the visibility timeout: the same step once more.
        if (crashed) await runCheck(dynamoStores(config), transactionPorts(config), request, Date.now() + 20_000);
        expect(crashed && when === 'lostReply', `call ${nth}: a lost reply is retried by the SDK, not a crash`).toBe(false);
        expect(await logOf(t.topic), `call ${nth}`).toHaveLength(1);
        const status = await eventually(() => executionStatus(services.stateMachineArn, t.id), (s) => s !== 'RUNNING', 20_000, 'execution');
        expect(status, `call ${nth}`).toBe('SUCCEEDED');
        expect((await api('GET', `/v1/transactions/${t.id}`)).body).toMatchObject({ state: 'committed', decidedBy: 'checkBack' });
        if (!fired) break; // every call of the step has had its turn
      }
      expect(nth).toBeGreaterThan(5);
    });
  }

  it('the timeout handler killed after either of its calls: the retry starts the one check-back', async () => {
    const config = loadConfig();
    for (let nth = 1; nth <= 2; nth++) {
      const t = await prepared(3600);
      injectFault({ command: '*', when: 'after', nth });
      await expect(onTransactionTimeout(transactionPorts(config), t.id, t.expiresAt)).rejects.toThrow(/injected/);
      expect(faultFired()).toBe(true);
      expect(await onTransactionTimeout(transactionPorts(config), t.id, t.expiresAt)).toBe('started');
      const request = await nextRequest(t.id);
      expect(request.check).toBe(1);
      await runCheck(dynamoStores(config), transactionPorts(config), request, Date.now() + 20_000);
      expect(await eventually(() => executionStatus(services.stateMachineArn, t.id), (s) => s !== 'RUNNING', 20_000, 'execution')).toBe('SUCCEEDED');
      expect(await logOf(t.topic)).toHaveLength(1);
    }
  });

  it('a duplicate timeout message and a duplicate check request change nothing', async () => {
    const config = loadConfig();
    const t = await prepared(3600);
    expect(await onTransactionTimeout(transactionPorts(config), t.id, t.expiresAt)).toBe('started');
    expect(await onTransactionTimeout(transactionPorts(config), t.id, t.expiresAt)).toBe('started');
    const request = await nextRequest(t.id);
    const first = await runCheck(dynamoStores(config), transactionPorts(config), request, Date.now() + 20_000);
    const second = await runCheck(dynamoStores(config), transactionPorts(config), request, Date.now() + 20_000);
    expect(first).toEqual({ state: 'committed' });
    expect(second).toEqual({ state: 'committed' });
    expect(await logOf(t.topic)).toHaveLength(1);
    expect(await eventually(() => executionStatus(services.stateMachineArn, t.id), (s) => s !== 'RUNNING', 20_000, 'execution')).toBe('SUCCEEDED');
    // Once the execution ended, a timeout message arriving late finds the transaction decided.
    expect(await onTransactionTimeout(transactionPorts(config), t.id, t.expiresAt)).toBe('decided');
  });
});
