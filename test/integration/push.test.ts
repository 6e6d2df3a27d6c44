/**
 * The push worker against a sink on loopback. The dispatcher that will run it on AWS (DynamoDB Streams
 * → queue → worker) is not built yet; here the test plays the dispatcher, running the worker on each
 * partition until nothing is due. What is checked is what push promises: every message delivered at
 * least once or dead-lettered after maxDeliveries, none lost, signatures that verify, ordered groups in
 * order, DDMQ's errno codes, partial failures, filter and transform, and a worker killed mid-delivery.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { pushPorts } from '../../functions/adapters/pushPorts.js';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { forgetConfig, loadConfig } from '../../functions/config.js';
import { putGroup, type GroupSettings } from '../../functions/domain/groups/groups.js';
import { pushPartition } from '../../functions/domain/push/worker.js';
import { runPushWork } from '../../functions/domain/push/runWork.js';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { produce, sleep, topicWithGroup, uniqueName, useApi } from '../support/api.js';
import { useLambdaService } from '../support/lambda.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Pushed = { id: string; partition: number; offset: number; body: any; deliveryCount: number };
type Reply = { status: number; body?: string; hangMs?: number };

describe('push delivery (worker and HTTP sender)', () => {
  const api = useApi();
  const lambdaService = useLambdaService();
  let server: Server;
  let url: string;
  let answer: (messages: Pushed[]) => Reply = () => ({ status: 200 });
  /** Every request the sink answered, with what it answered. */
  const log: Array<{ group: string; messages: Pushed[]; reply: Reply; verified: boolean }> = [];
  const secrets = new Map<string, string>();
  let inFlight = 0;
  let maxInFlight = 0;
  const stores = () => dynamoStores(loadConfig());
  const ports = () => pushPorts({ ...loadConfig(), pushAllowPrivate: true });

  beforeAll(async () => {
    server = createServer((req, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const body = Buffer.concat(chunks).toString('utf8');
        const parsed = JSON.parse(body) as { group: string; messages: Pushed[] };
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        let verified = false;
        try {
          new Webhook(secrets.get(parsed.group)!).verify(body, headers);
          verified = true;
        } catch {
          verified = false;
        }
        const reply = answer(parsed.messages);
        log.push({ group: parsed.group, messages: parsed.messages, reply, verified });
        if (reply.hangMs) await sleep(reply.hangMs);
        inFlight--;
        if (!res.destroyed) res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body ?? '');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  afterEach(() => {
    clearFault();
    answer = () => ({ status: 200 });
  });

  async function pushGroup(topic: string, settings: Partial<GroupSettings> & { delivery: GroupSettings['delivery'] }) {
    const name = uniqueName('push');
    const out = await putGroup(stores(), topic, name, {
      mode: 'shared',
      startFrom: 'earliest',
      maxDeliveries: 5,
      visibilitySeconds: 30,
      ...settings,
    });
    expect(out.created).toBe(true);
    if (out.signingSecret) secrets.set(name, out.signingSecret);
    return name;
  }

  /**
   * Plays the dispatcher: runs the worker on every partition (at most `concurrency` at once) until the
   * group has no lag left (everything acknowledged or dead) or the time limit.
   */
  async function drain(topic: string, group: string, partitions: number, options: { concurrency?: number; limitMs?: number } = {}) {
    const until = Date.now() + (options.limitMs ?? 40_000);
    while (Date.now() < until) {
      const queue = Array.from({ length: partitions }, (_, p) => p);
      await Promise.all(
        Array.from({ length: options.concurrency ?? partitions }, async () => {
          for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
            await pushPartition(stores(), ports(), topic, group, p, Date.now() + 8000);
          }
        }),
      );
      const view = await api('GET', `/v1/topics/${topic}/groups/${group}`);
      if (view.body.lag === 0) return;
      await sleep(200);
    }
  }

  const deliveredIds = (group: string) =>
    new Set(log.filter((l) => l.group === group && l.reply.status === 200 && !l.reply.hangMs && !l.reply.body).flatMap((l) => l.messages.map((m) => m.id)));

  it('a sink that fails 30% of requests and sometimes hangs: every message delivered at least once or dead-lettered; signatures verify', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 3 });
    const group = await pushGroup(topic, { delivery: { type: 'http', url, batchSize: 4, maxConcurrency: 8, timeoutSeconds: 1 }, maxDeliveries: 4 });
    const results = await produce(api, topic, Array.from({ length: 60 }, (_, i) => ({ body: { n: i }, key: `k${i % 11}` })));
    let rng = 7;
    const random = () => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    answer = () => {
      const r = random();
      if (r < 0.25) return { status: 500 };
      if (r < 0.3) return { status: 200, hangMs: 1500 }; // past the 1 s timeout: a failure for Sluice
      return { status: 200 };
    };
    await drain(topic, group, 3);
    const delivered = deliveredIds(group);
    const dead = (await api('GET', `/v1/topics/${topic}/groups/${group}/dead-letters?limit=100`)).body.messages.map((m: any) => m.id);
    for (const r of results) {
      expect(delivered.has(r.id) || dead.includes(r.id), `${r.id} delivered or dead`).toBe(true);
    }
    for (const id of dead) expect(delivered.has(id)).toBe(false);
    expect(log.filter((l) => l.group === group).every((l) => l.verified)).toBe(true);
    expect(log.filter((l) => l.group === group && l.reply.status === 500).length).toBeGreaterThan(0);
    const view = (await api('GET', `/v1/topics/${topic}/groups/${group}`)).body;
    expect(view.lag).toBe(0);
  }, 60_000);

  it('an ordered push group delivers each partition in order across failures, one batch at a time', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 2 });
    const group = await pushGroup(topic, { mode: 'ordered', delivery: { type: 'http', url, batchSize: 3, maxConcurrency: 8, timeoutSeconds: 1 }, maxDeliveries: 50 });
    await produce(api, topic, Array.from({ length: 24 }, (_, i) => ({ body: i, partition: i % 2 })));
    let rng = 3;
    const random = () => ((rng = (rng * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    answer = () => (random() < 0.3 ? { status: 500 } : { status: 200 });
    await drain(topic, group, 2);
    for (const partition of [0, 1]) {
      const succeeded = log
        .filter((l) => l.group === group && l.reply.status === 200 && l.messages[0]!.partition === partition)
        .flatMap((l) => l.messages.map((m) => m.offset));
      expect(succeeded).toEqual(Array.from({ length: 12 }, (_, i) => i));
    }
  }, 60_000);

  it('concurrency: the worker keeps one batch in flight per partition; a dispatcher running 2 partitions at once never exceeds 2', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 4 });
    const group = await pushGroup(topic, { delivery: { type: 'http', url, batchSize: 2, maxConcurrency: 2, timeoutSeconds: 2 } });
    await produce(api, topic, Array.from({ length: 32 }, (_, i) => ({ body: i, partition: i % 4 })));
    maxInFlight = 0;
    answer = () => ({ status: 200, hangMs: 0 });
    await drain(topic, group, 4, { concurrency: 2 });
    expect(deliveredIds(group).size).toBe(32);
    expect(maxInFlight).toBeLessThanOrEqual(2);
  });

  it('DDMQ errno: 1000001 dead-letters at once, 1000002 retries soon, `failed` ids retry only those', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const group = await pushGroup(topic, { delivery: { type: 'http', url, batchSize: 10, maxConcurrency: 1, timeoutSeconds: 2 } });
    const [poison, flaky, partial, fine] = await produce(api, topic, [{ body: 'poison' }, { body: 'flaky' }, { body: 'partial' }, { body: 'fine' }]);
    const seen = new Map<string, number>();
    answer = (messages) => {
      for (const m of messages) seen.set(m.body, (seen.get(m.body) ?? 0) + 1);
      if (messages.some((m) => m.body === 'poison')) return { status: 200, body: '{"errno": 1000001}' };
      if (messages.some((m) => m.body === 'flaky') && seen.get('flaky') === 1) return { status: 200, body: '{"errno": 1000002}' };
      if (messages.some((m) => m.body === 'partial') && seen.get('partial')! < 3) {
        return { status: 200, body: JSON.stringify({ failed: messages.filter((m) => m.body === 'partial').map((m) => m.id) }) };
      }
      return { status: 200 };
    };
    await drain(topic, group, 1);
    const dead = (await api('GET', `/v1/topics/${topic}/groups/${group}/dead-letters`)).body.messages;
    // The first batch held all four: errno 1000001 is about the batch, so all four went to the dead letters.
    expect(dead.map((m: any) => m.id).sort()).toEqual([poison!.id, flaky!.id, partial!.id, fine!.id].sort());
    expect(dead.every((m: any) => m.deliveryCount === 5)).toBe(true);
    expect(seen.get('poison')).toBe(1);
  });

  it('partial failures and errno 1000002 retry only what failed, then deliver', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const group = await pushGroup(topic, { delivery: { type: 'http', url, batchSize: 10, maxConcurrency: 1, timeoutSeconds: 2 } });
    const [a, b, c] = await produce(api, topic, [{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
    const seen = new Map<string, number>();
    answer = (messages) => {
      for (const m of messages) seen.set(m.body, (seen.get(m.body) ?? 0) + 1);
      if (seen.get('b') === 1) return { status: 200, body: JSON.stringify({ failed: [b!.id] }) };
      if (messages.some((m) => m.body === 'b') && seen.get('b') === 2) return { status: 200, body: '{"errno": 1000002}' };
      return { status: 200 };
    };
    await drain(topic, group, 1);
    expect([seen.get('a'), seen.get('b'), seen.get('c')]).toEqual([1, 3, 1]);
    expect((await api('GET', `/v1/topics/${topic}/groups/${group}`)).body.lag).toBe(0);
    expect([a, c].every(Boolean)).toBe(true);
  });

  it('filter expression and transform apply to push as to pull', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const group = await pushGroup(topic, {
      delivery: { type: 'http', url, batchSize: 10, maxConcurrency: 1, timeoutSeconds: 2 },
      filter: { expression: 'body.total > 100' },
      transform: '{"total": body.total, "big": true}',
    });
    await produce(api, topic, [{ body: { total: 50 } }, { body: { total: 150 } }, { body: { total: 250 } }]);
    await drain(topic, group, 1);
    const bodies = log.filter((l) => l.group === group).flatMap((l) => l.messages.map((m) => m.body));
    expect(bodies).toEqual([
      { total: 150, big: true },
      { total: 250, big: true },
    ]);
    expect((await api('GET', `/v1/topics/${topic}/groups/${group}`)).body.lag).toBe(0);
  });

  it('a worker killed after the endpoint took the batch (before its ack) delivers it again after the lease', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const group = await pushGroup(topic, { delivery: { type: 'http', url, batchSize: 10, maxConcurrency: 1, timeoutSeconds: 1 } });
    await produce(api, topic, [{ body: 'once' }, { body: 'twice' }]);
    // The ack is the progress write after the delivery: the first PutItem of the round is the lease,
    // the second the ack.
    injectFault({ command: 'PutItem', when: 'before', nth: 2 });
    await expect(pushPartition(stores(), ports(), topic, group, 0, Date.now() + 8000)).rejects.toThrow();
    expect(faultFired()).toBe(true);
    await drain(topic, group, 1, { limitMs: 20_000 });
    const deliveries = log.filter((l) => l.group === group).map((l) => l.messages.map((m) => [m.body, m.deliveryCount]));
    expect(deliveries).toEqual([
      [
        ['once', 1],
        ['twice', 1],
      ],
      [
        ['once', 2],
        ['twice', 2],
      ],
    ]);
  }, 40_000);

  it('a Lambda subscriber gets batches and its batchItemFailures are retried; a throwing subscriber fails the batch', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const arn = `arn:aws:lambda:us-east-1:123456789012:function:${uniqueName('subscriber')}`;
    const calls: Array<Array<{ body: string; deliveryCount: number }>> = [];
    lambdaService.service!.register(arn, {
      handler: async (event: any) => {
        calls.push(event.messages.map((m: any) => ({ body: m.body, deliveryCount: m.deliveryCount })));
        if (event.messages.some((m: any) => m.body === 'boom' && m.deliveryCount === 1)) throw new Error('subscriber crashed');
        return { batchItemFailures: event.messages.filter((m: any) => m.body === 'again' && m.deliveryCount < 3).map((m: any) => ({ itemIdentifier: m.id })) };
      },
    });
    const group = await pushGroup(topic, { delivery: { type: 'lambda', functionArn: arn, batchSize: 10, maxConcurrency: 1, timeoutSeconds: 2 } });
    await produce(api, topic, [{ body: 'ok' }, { body: 'again' }]);
    await drain(topic, group, 1);
    await produce(api, topic, [{ body: 'boom' }]);
    await drain(topic, group, 1);
    expect(calls).toEqual([
      [
        { body: 'ok', deliveryCount: 1 },
        { body: 'again', deliveryCount: 1 },
      ],
      [{ body: 'again', deliveryCount: 2 }],
      [{ body: 'again', deliveryCount: 3 }],
      [{ body: 'boom', deliveryCount: 1 }],
      [{ body: 'boom', deliveryCount: 2 }],
    ]);
  }, 40_000);

  for (const when of ['after', 'lostReply'] as const) {
    it(`push work whose AWS calls fail after being applied (${when}), one call at a time: every message delivered, nothing stuck`, async () => {
      const prepare = async () => {
        const { topic } = await topicWithGroup(api, { partitions: 1 });
        const group = await pushGroup(topic, { delivery: { type: 'http', url, batchSize: 10, maxConcurrency: 1, timeoutSeconds: 1 } });
        await produce(api, topic, [{ body: 'a' }, { body: 'b' }]);
        return { topic, group };
      };
      const work = (topic: string, group: string) => runPushWork(stores(), ports(), { topic, group, partition: 0 }, Date.now() + 8000);
      const clean = await prepare();
      let calls = 0;
      observeDynamoCalls(() => calls++);
      await work(clean.topic, clean.group);
      observeDynamoCalls(undefined);
      expect(calls).toBeGreaterThan(5);
      for (let nth = 1; nth <= calls; nth++) {
        const { topic, group } = await prepare();
        injectFault({ command: '*', when, nth });
        await work(topic, group).catch(() => undefined);
        clearFault();
        // The queue would deliver the work again (or the wake-up); the slot and the leases must not block it.
        await drain(topic, group, 1, { limitMs: 20_000 });
        const got = log.filter((l) => l.group === group && l.reply.status === 200).flatMap((l) => l.messages.map((m) => m.body));
        expect(new Set(got), `${when} at call ${nth} of ${calls}`).toEqual(new Set(['a', 'b']));
      }
    }, 240_000);
  }

  it('the deployed stack refuses private push URLs at PUT (400, nothing stored); the local runtime allows them', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const saved = process.env.SLUICE_PUSH_ALLOW_PRIVATE;
    process.env.SLUICE_PUSH_ALLOW_PRIVATE = 'false';
    forgetConfig();
    try {
      for (const bad of ['https://127.0.0.1/hook', 'https://localhost/hook', 'https://[::1]/hook', 'http://example.com/hook']) {
        const reply = await api('PUT', `/v1/topics/${topic}/groups/deployed`, { delivery: { type: 'http', url: bad } });
        expect(reply.status, bad).toBe(400);
        expect(reply.body.error.code).toBe('ValidationError');
      }
      expect((await api('GET', `/v1/topics/${topic}/groups/deployed`)).status).toBe(404);
    } finally {
      process.env.SLUICE_PUSH_ALLOW_PRIVATE = saved;
      forgetConfig();
    }
    expect((await api('PUT', `/v1/topics/${topic}/groups/local`, { delivery: { type: 'http', url } })).status).toBe(201);
  });

  it('pull on a push group is 409 Conflict', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const group = await pushGroup(topic, { delivery: { type: 'http', url, batchSize: 1, maxConcurrency: 1, timeoutSeconds: 1 } });
    const reply = await api('POST', `/v1/topics/${topic}/groups/${group}/pull`, { max: 1 });
    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe('Conflict');
  });
});
