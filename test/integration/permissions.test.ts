/**
 * Least privilege must still be enough: runs every route (and the retention pass) through its paths,
 * records each DynamoDB action each function performs on each table, and checks that lib/routes.ts —
 * from which the stack writes every role — grants all of them. A missing grant would be an
 * AccessDenied in AWS that no emulator shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { trimAllTopics, trimTopic } from '../../functions/domain/log/retention.js';
import {
  DELAY_LANDING_FUNCTION,
  DELAY_SWEEP_FUNCTION,
  PUSH_DISPATCH_FUNCTION,
  PUSH_WORKER_FUNCTION,
  RETENTION_FUNCTION,
  ROUTES,
  CHECK_BACK_WORKER_FUNCTION,
  TRANSACTION_TIMEOUT_FUNCTION,
  type FunctionSpec,
} from '../../lib/routes.js';
import { transactionPorts } from '../../functions/adapters/transactionPorts.js';
import { onTransactionTimeout, runCheck } from '../../functions/domain/transactions/checkBack.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pushPorts } from '../../functions/adapters/pushPorts.js';
import { dispatchPush } from '../../functions/domain/push/dispatch.js';
import { runPushWork } from '../../functions/domain/push/runWork.js';
import { QUEUES } from '../../lib/queues.js';
import { landDelayed } from '../../functions/domain/delay/land.js';
import { sweepDelayed } from '../../functions/domain/delay/sweep.js';
import { topicKeyOf } from '../../functions/domain/ports.js';
import { TABLES } from '../../lib/tables.js';
import { currentInvocation } from '../../local/invocation.js';
import { ack, produce, pullAll, sleep, topicWithGroup, useApi } from '../support/api.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const used = new Map<string, Set<string>>();

function actionsOf(command: string, input: any): Array<[string, string]> {
  const simple: Record<string, string> = {
    GetItemCommand: 'GetItem',
    PutItemCommand: 'PutItem',
    UpdateItemCommand: 'UpdateItem',
    DeleteItemCommand: 'DeleteItem',
    QueryCommand: 'Query',
    ScanCommand: 'Scan',
  };
  if (simple[command]) return [[input.TableName, simple[command]!]];
  if (command === 'BatchGetItemCommand') return Object.keys(input.RequestItems).map((t) => [t, 'BatchGetItem']);
  if (command === 'BatchWriteItemCommand') return Object.keys(input.RequestItems).map((t) => [t, 'BatchWriteItem']);
  if (command === 'TransactWriteItemsCommand') {
    // IAM authorizes each action of a transaction on its own table.
    return input.TransactItems.map((item: any): [string, string] => {
      const [kind, op] = Object.entries(item)[0] as [string, any];
      const action = { Put: 'PutItem', Delete: 'DeleteItem', Update: 'UpdateItem', ConditionCheck: 'ConditionCheckItem' }[kind]!;
      return [op.TableName, action];
    });
  }
  // SQS: authorized per queue, by the queue's URL (lib/queues.ts declares the variable holding it).
  if (command === 'SendMessageBatchCommand' || command === 'SendMessageCommand') {
    const queue = QUEUES.find((q) => process.env[q.envVar] === input.QueueUrl);
    return [[`queue:${queue?.id ?? input.QueueUrl}`, 'SendMessage']];
  }
  // Step Functions: the check-back state machine (lib/routes.ts `stateMachine`).
  if (command === 'StartExecutionCommand') return [['state-machine', 'StartExecution']];
  if (['SendTaskSuccessCommand', 'SendTaskFailureCommand', 'SendTaskHeartbeatCommand'].includes(command)) return [['state-machine', 'SendTaskResponse']];
  return [['?', command]];
}

describe('IAM grants cover what every function does', () => {
  const api = useApi();
  const tableIdByName = new Map(TABLES.map((spec) => [process.env[spec.envVar]!, spec.id]));

  beforeAll(() => {
    observeDynamoCalls((command, input) => {
      const fn = currentInvocation.getStore()?.functionName;
      if (!fn) return;
      for (const [table, action] of actionsOf(command, input)) {
        const set = used.get(fn) ?? new Set();
        set.add(`${tableIdByName.get(table) ?? table}:${action}`);
        used.set(fn, set);
      }
    });
  });
  afterAll(() => observeDynamoCalls(undefined));

  it('runs every route through its main and unusual paths', async () => {
    const { topic, base, groupPath } = await topicWithGroup(api, { partitions: 2, group: { maxDeliveries: 1, visibilitySeconds: 1 } });
    await api('PUT', base, { partitions: 2 });
    await api('GET', '/v1/topics');
    await produce(api, topic, [{ body: 1, id: 'p-1' }, { body: 2, key: 'k' }, { body: 3, id: 'p-1' }]);
    await produce(api, topic, [{ body: 1, id: 'p-1' }]);
    // A producer session: first request, a retry answered from its record, and the next request.
    const session = { producer: { session: 'perm', sequence: 0 }, messages: [{ body: 's0' }, { body: 's1', key: 'k' }] };
    expect((await api('POST', `/v1/topics/${topic}/messages`, session)).status).toBe(200);
    expect((await api('POST', `/v1/topics/${topic}/messages`, session)).status).toBe(200);
    expect((await api('POST', `/v1/topics/${topic}/messages`, { ...session, producer: { session: 'perm', sequence: 2 } })).status).toBe(200);
    await api('GET', base);
    await api('GET', `${base}/messages/p-1`);
    await api('GET', `${base}/partitions/0/messages?from=0&limit=10`);
    await api('GET', groupPath);
    const got = await pullAll(api, groupPath);
    await api('POST', `${groupPath}/nack`, { receipts: [got[0]!.receipt], retryAfterSeconds: 0 });
    await ack(api, groupPath, got.slice(1).map((m) => m.receipt));
    await sleep(50);
    await pullAll(api, groupPath); // moves the nacked message (maxDeliveries 1) to the dead letters
    await api('GET', `${groupPath}/dead-letters`);
    await api('POST', `${groupPath}/dead-letters/redrive`);
    await api('PUT', groupPath, { maxDeliveries: 5, visibilitySeconds: 1 });
    await api('POST', `${groupPath}/reset`, { to: 'earliest' });
    await api('POST', `${groupPath}/reset`, { to: { time: Date.now() - 60_000 } });
    await api('POST', `${groupPath}/reset`, { to: { partition: 0, offset: 0 } });
    await api('PUT', `${base}/groups/fanout`, { mode: 'broadcast', startFrom: 'earliest' });
    await pullAll(api, `${base}/groups/fanout`, { consumerId: 'c1' });
    await api('POST', `${base}/groups/fanout/ack`, { receipts: ['0.0.1.b'] });
    await api('POST', `${base}/groups/fanout/reset`, { to: 'latest' });
    // Delay messages: schedule (new and duplicate id), list, get, cancel, land, sweep.
    const delayed = await produce(api, topic, [
      { body: 'later', delaySeconds: 0, id: 'd-1' },
      { body: 'much later', delaySeconds: 3600 },
    ]);
    await produce(api, topic, [{ body: 'again', delaySeconds: 5, id: 'd-1' }]);
    await api('GET', `${base}/delayed`);
    await api('GET', `${base}/delayed/d-1`);
    await api('DELETE', `${base}/delayed/${delayed[1]!.id}`);
    const stores = dynamoStores(loadConfig());
    const topicKey = topicKeyOf((await stores.catalog.getTopic(topic))!);
    await currentInvocation.run({ functionName: DELAY_LANDING_FUNCTION.handler }, () =>
      landDelayed(stores, { topicKey, ids: ['d-1'] }, Date.now() + 5000),
    );
    await produce(api, topic, [{ body: 'repeating', delaySeconds: 0, id: 'd-2', repeat: { everySeconds: 1, times: 2 } }]);
    await currentInvocation.run({ functionName: DELAY_LANDING_FUNCTION.handler }, () =>
      landDelayed(stores, { topicKey, ids: ['d-2'] }, Date.now() + 5000),
    );
    await currentInvocation.run({ functionName: DELAY_SWEEP_FUNCTION.handler }, () => sweepDelayed(stores, Date.now() + 5000, Date.now() + 3000));
    // Push: a group (its signing secret), the dispatcher, the worker delivering to a sink on loopback.
    const sink = createServer((_req, res) => res.end());
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    try {
      const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
      await api('PUT', `${base}/groups/pushed`, { startFrom: 'earliest', delivery: { type: 'http', url: sinkUrl, timeoutSeconds: 2 } });
      await api('PUT', `${base}/groups/pushed`, { startFrom: 'earliest', rotateSecret: true, delivery: { type: 'http', url: sinkUrl, timeoutSeconds: 2 } });
      await currentInvocation.run({ functionName: PUSH_DISPATCH_FUNCTION.handler }, () => dispatchPush(stores, [{ topicKey, partition: 0 }]));
      await currentInvocation.run({ functionName: PUSH_WORKER_FUNCTION.handler }, () =>
        runPushWork(stores, pushPorts(loadConfig()), { topic, group: 'pushed', partition: 0 }, Date.now() + 8000),
      );
    } finally {
      await new Promise<void>((r) => sink.close(() => r()));
    }
    // Transactions: prepare (the check-back secret), get, commit (with a producer id), rollback, a commit
    // after the topic is gone (rolls back); the timeout consumer starting check-back; the worker committing.
    const decider = createServer((_req, res) => res.end(JSON.stringify({ decision: 'commit' })));
    await new Promise<void>((r) => decider.listen(0, '127.0.0.1', () => r()));
    try {
      const checkBack = { url: `http://127.0.0.1:${(decider.address() as AddressInfo).port}/` };
      const tx = (await api('POST', '/v1/transactions', { messages: [{ topic, body: 't', id: 'tx-p' }], checkBack })).body.id;
      await api('GET', `/v1/transactions/${tx}`);
      await api('POST', `/v1/transactions/${tx}/commit`);
      const rolled = (await api('POST', '/v1/transactions', { messages: [{ topic, body: 'r' }] })).body.id;
      await api('POST', `/v1/transactions/${rolled}/rollback`);
      const checked = await api('POST', '/v1/transactions', { messages: [{ topic, body: 'c', id: 'tx-c' }], checkBack });
      const ports = transactionPorts(loadConfig());
      await currentInvocation.run({ functionName: TRANSACTION_TIMEOUT_FUNCTION.handler }, () =>
        onTransactionTimeout(ports, checked.body.id, Date.parse(checked.body.expiresAt)),
      );
      await currentInvocation.run({ functionName: CHECK_BACK_WORKER_FUNCTION.handler }, () =>
        runCheck(stores, ports, { id: checked.body.id, check: 1, taskToken: 'a-token-no-execution-waits-for' }, Date.now() + 8000),
      );
      const gone = await topicWithGroup(api, { partitions: 1 });
      const orphan = (await api('POST', '/v1/transactions', { messages: [{ topic: gone.topic, body: 'o' }] })).body.id;
      await api('DELETE', gone.base);
      await api('POST', `/v1/transactions/${orphan}/commit`);
    } finally {
      await new Promise<void>((r) => decider.close(() => r()));
    }
    await currentInvocation.run({ functionName: RETENTION_FUNCTION.handler }, () =>
      // This topic far in the future (its segments are deleted), then a pass over every topic as of now:
      // a pass over every topic far ahead would trim the topics of test files running beside this one.
      trimTopic(dynamoStores(loadConfig()), topic, Date.now() + 1000 * 3600 * 1000).then(() => trimAllTopics(dynamoStores(loadConfig()))),
    );
    expect((await api('DELETE', base)).status).toBe(204);
    // Again after the delete: the pass clears the buried topic's log.
    await currentInvocation.run({ functionName: RETENTION_FUNCTION.handler }, () => trimAllTopics(dynamoStores(loadConfig())));

    for (const spec of [
      ...ROUTES,
      DELAY_LANDING_FUNCTION,
      DELAY_SWEEP_FUNCTION,
      PUSH_DISPATCH_FUNCTION,
      PUSH_WORKER_FUNCTION,
      TRANSACTION_TIMEOUT_FUNCTION,
      CHECK_BACK_WORKER_FUNCTION,
    ]) {
      expect(used.has(spec.handler), `${spec.handler} was never called`).toBe(true);
    }
  });

  it('lib/routes.ts grants every action each function performed', () => {
    const specs = new Map<string, FunctionSpec>(
      [
        ...ROUTES,
        RETENTION_FUNCTION,
        DELAY_LANDING_FUNCTION,
        DELAY_SWEEP_FUNCTION,
        PUSH_DISPATCH_FUNCTION,
        PUSH_WORKER_FUNCTION,
        TRANSACTION_TIMEOUT_FUNCTION,
        CHECK_BACK_WORKER_FUNCTION,
      ].map((s) => [
        s.handler,
        s as FunctionSpec,
      ]),
    );
    const missing: string[] = [];
    for (const [fn, actions] of used) {
      const spec = specs.get(fn);
      if (!spec) {
        missing.push(`${fn}: not a declared function`);
        continue;
      }
      for (const entry of actions) {
        const parts = entry.split(':');
        const action = parts.pop()!;
        const resource = parts.join(':');
        const granted = resource === 'state-machine'
          ? ((spec.stateMachine ?? []) as readonly string[])
          : resource.startsWith('queue:')
          ? ((spec.queues ?? {}) as Record<string, readonly string[] | undefined>)[resource.slice('queue:'.length)] ?? []
          : ((spec.access as Record<string, readonly string[] | undefined>)[resource] ?? []);
        if (!granted.includes(action)) missing.push(`${fn}: ${action} on ${resource}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
