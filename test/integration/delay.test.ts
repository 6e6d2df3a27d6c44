/**
 * Delay messages end to end on the local runtime's parts: produce → pending record → delay queue (the
 * emulator's SQS, polled by the local SQS poller with real event shapes) or the sweep → landing.
 * This file has a delay queue of its own (a short visibility timeout, so a failed landing comes back
 * within seconds), so no other test worker's poller takes its messages.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { delayQueueBody } from '../../functions/adapters/delayQueue.js';
import { clearFault, faultFired, injectFault, type FaultPlan } from '../../functions/adapters/faults.js';
import { dynamoStores, forgetStores } from '../../functions/adapters/stores.js';
import { forgetConfig, loadConfig } from '../../functions/config.js';
import { topicKeyOf } from '../../functions/domain/ports.js';
import { everyInterval, type ScheduledService } from '../../local/periodic.js';
import { ensureQueue } from '../../local/queues.js';
import { startSqsPoller, type SqsPoller } from '../../local/sqsPoller.js';
import { produce, sleep, topicWithGroup, uniqueName, useApi, type Api } from '../support/api.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Landed = { id: string; offset: number; partition: number; producedAt: string; deliverAt?: string; body: unknown; headers: Record<string, string> };

async function landedIn(api: Api, topic: string, partitions = 1): Promise<Landed[]> {
  const all: Landed[] = [];
  for (let p = 0; p < partitions; p++) {
    const page = await api('GET', `/v1/topics/${topic}/partitions/${p}/messages?from=0&limit=1000`);
    expect(page.status).toBe(200);
    all.push(...page.body.messages);
  }
  return all;
}

async function waitFor<T>(what: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (done(value) || Date.now() > until) return value;
    await sleep(100);
  }
}

/** Landed no earlier than due, and (the target) within a second of it. */
function expectOnTime(m: Landed) {
  expect(m.deliverAt).toBeDefined();
  const late = Date.parse(m.producedAt) - Date.parse(m.deliverAt!);
  expect(late).toBeGreaterThanOrEqual(0);
  expect(late).toBeLessThanOrEqual(1000);
}

describe('delay messages', () => {
  const api = useApi();
  let poller: SqsPoller;
  let sweep: ScheduledService | undefined;
  let queueUrl: string;
  const saved = { url: process.env.DELAY_QUEUE_URL, max: process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS };

  const useQueueReach = (seconds: number) => {
    process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS = String(seconds);
    forgetConfig();
    forgetStores();
  };
  const startSweep = () => {
    sweep ??= everyInterval('sweepDelayed', 300, async () => (await import('../../functions/handlers/sweepDelayed.js')).handler as any);
  };
  const stopSweep = async () => {
    await sweep?.stop();
    sweep = undefined;
  };

  /** The landing handler on this file's queue; its 2 s timeout fits the queue's 2 s visibility. */
  const startLandingPoller = () =>
    startSqsPoller({
      queueUrl,
      functionName: 'landDelayed',
      load: async () => (await import('../../functions/handlers/landDelayed.js')).handler as any,
      timeoutSeconds: 2,
      waitTimeSeconds: 1,
      concurrency: 3,
      log: () => undefined,
    });

  beforeAll(async () => {
    const sqs = new SQSClient({});
    const name = uniqueName('delay-test');
    const dlq = await ensureQueue(sqs, `${name}-dlq`, {});
    const queue = await ensureQueue(sqs, name, {
      VisibilityTimeout: '2',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 20 }),
    });
    queueUrl = queue.url;
    process.env.DELAY_QUEUE_URL = queueUrl;
    useQueueReach(900);
    poller = await startLandingPoller();
  });
  afterAll(async () => {
    await stopSweep();
    await poller?.stop();
    process.env.DELAY_QUEUE_URL = saved.url;
    if (saved.max === undefined) delete process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS;
    else process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS = saved.max;
    forgetConfig();
    forgetStores();
  });
  afterEach(() => clearFault());

  it('through the queue: invisible until due, then landed on time, once, with deliverAt, findable by id', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const results = await produce(api, topic, [
      { body: 'a', delaySeconds: 2 },
      { body: 'b', delaySeconds: 2, id: 'my-delayed-b', tags: ['t'] },
    ]);
    expect(results.map((r: any) => r.status)).toEqual(['scheduled', 'scheduled']);
    expect(results[1]!.id).toBe('my-delayed-b');
    expect(await landedIn(api, topic)).toEqual([]);
    const listed = await api('GET', `/v1/topics/${topic}/delayed`);
    expect(listed.body.messages.map((m: any) => m.id).sort()).toEqual(results.map((r) => r.id).sort());
    await sleep(1200);
    expect(await landedIn(api, topic)).toEqual([]); // still before due
    const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 2);
    expect(landed.map((m) => m.body).sort()).toEqual(['a', 'b']);
    landed.forEach(expectOnTime);
    expect(landed.map((m) => m.id).sort()).toEqual(results.map((r) => r.id).sort());
    expect((await api('GET', `/v1/topics/${topic}/messages/my-delayed-b`)).body.body).toBe('b');
    expect((await api('GET', `/v1/topics/${topic}/delayed`)).body.messages).toEqual([]);
    await sleep(2500);
    expect(await landedIn(api, topic)).toHaveLength(2);
  });

  it('through the sweep (beyond the queue’s reach): waits as a record, then lands on time', async () => {
    useQueueReach(1);
    startSweep();
    try {
      const { topic } = await topicWithGroup(api, { partitions: 2 });
      const [r] = await produce(api, topic, [{ body: 'later', delaySeconds: 4, key: 'k' }]);
      const stores = dynamoStores(loadConfig());
      // An id-less message is a member of a group: "<group>-<index>".
      const pending = await stores.delays.getGroup(topicKeyOf((await stores.catalog.getTopic(topic))!), r!.id.slice(0, -4));
      expect(pending?.queued).toBe(false);
      const landed = await waitFor(() => landedIn(api, topic, 2), (l) => l.length >= 1, 10_000);
      expect(landed.map((m) => m.body)).toEqual(['later']);
      expectOnTime(landed[0]!);
    } finally {
      await stopSweep();
      useQueueReach(900);
    }
  });

  it('repeats land every everySeconds, `times` times, each with its sluice-repeat header', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const [r] = await produce(api, topic, [{ body: 'tick', delaySeconds: 1, repeat: { everySeconds: 1, times: 3 } }]);
    const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 3);
    expect(landed.map((m) => m.headers['sluice-repeat'])).toEqual(['1/3', '2/3', '3/3']);
    expect(landed.map((m) => m.id)).toEqual([r!.id, `${r!.id}.2`, `${r!.id}.3`]);
    landed.forEach(expectOnTime);
    const dues = landed.map((m) => Date.parse(m.deliverAt!));
    expect(dues[1]! - dues[0]!).toBe(1000);
    expect(dues[2]! - dues[1]!).toBe(1000);
    await sleep(1500);
    expect(await landedIn(api, topic)).toHaveLength(3);
    expect((await api('GET', `/v1/topics/${topic}/delayed/${r!.id}`)).status).toBe(404);
  });

  it('a producer id schedules once: the second is a duplicate with the first due time; an appended id is a duplicate of its offset', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const [first] = await produce(api, topic, [{ body: 'x', id: 'once', delaySeconds: 2 }]);
    const [again] = await produce(api, topic, [{ body: 'y', id: 'once', delaySeconds: 10 }]);
    expect(again).toEqual({ ...first, duplicate: true });
    await produce(api, topic, [{ body: 'direct', id: 'direct-1' }]);
    const [late] = await produce(api, topic, [{ body: 'z', id: 'direct-1', delaySeconds: 1 }]);
    expect(late).toEqual({ id: 'direct-1', partition: 0, offset: 0, duplicate: true });
    const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 2);
    expect(landed.map((m) => m.body)).toEqual(['direct', 'x']);
  });

  it('more than 2 years ahead is a 400 and stores nothing, not even the other messages of the request', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const tooFar = new Date(Date.now() + 63_072_000_000 + 60_000).toISOString();
    const reply = await api('POST', `/v1/topics/${topic}/messages`, {
      messages: [{ body: 'ok', delaySeconds: 5 }, { body: 'now' }, { body: 'far', deliverAt: tooFar }],
    });
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe('ValidationError');
    expect(reply.body.error.message).toContain('messages[2]');
    expect((await api('GET', `/v1/topics/${topic}/delayed`)).body.messages).toEqual([]);
    expect(await landedIn(api, topic)).toEqual([]);
    const both = await api('POST', `/v1/topics/${topic}/messages`, { messages: [{ body: 1, delaySeconds: 1, deliverAt: Date.now() }] });
    expect(both.status).toBe(400);
    const over = await api('POST', `/v1/topics/${topic}/messages`, { messages: [{ body: 1, delaySeconds: 63_072_001 }] });
    expect(over.status).toBe(400);
  });

  it('list (due order, paged), get (with body) and cancel; a cancelled message never lands', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const results = await produce(api, topic, [
      { body: 'third', delaySeconds: 30 },
      { body: 'first', delaySeconds: 3 },
      { body: 'second', delaySeconds: 20, key: 'k', tags: ['a'] },
    ]);
    const page1 = await api('GET', `/v1/topics/${topic}/delayed?limit=2`);
    expect(page1.body.messages.map((m: any) => m.id)).toEqual([results[1]!.id, results[2]!.id]);
    const page2 = await api('GET', `/v1/topics/${topic}/delayed?limit=2&after=${encodeURIComponent(page1.body.next)}`);
    expect(page2.body.messages.map((m: any) => m.id)).toEqual([results[0]!.id]);
    const one = await api('GET', `/v1/topics/${topic}/delayed/${results[2]!.id}`);
    expect(one.body).toMatchObject({ id: results[2]!.id, body: 'second', key: 'k', tags: ['a'] });
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${results[1]!.id}`)).status).toBe(204);
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${results[1]!.id}`)).status).toBe(404);
    expect((await api('GET', `/v1/topics/${topic}/delayed/${results[1]!.id}`)).status).toBe(404);
    expect((await api('GET', `/v1/topics/${topic}/delayed?after=nonsense`)).status).toBe(400);
    await sleep(4500);
    expect(await landedIn(api, topic)).toEqual([]);
    for (const r of [results[0]!, results[2]!]) expect((await api('DELETE', `/v1/topics/${topic}/delayed/${r.id}`)).status).toBe(204);
  });

  it('cancel racing landing, 200 messages: each is either cancelled (204) and never lands, or lands exactly once (404)', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 2 });
    const due = Date.now() + 2500;
    const ids: string[] = [];
    for (let i = 0; i < 200; i += 50) {
      const results = await produce(
        api,
        topic,
        Array.from({ length: 50 }, (_, k) => ({ body: i + k, deliverAt: due, key: `k${(i + k) % 7}` })),
      );
      ids.push(...results.map((r) => r.id));
    }
    await sleep(Math.max(0, due - Date.now() - 30));
    const outcome = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          outcome.set(id, (await api('DELETE', `/v1/topics/${topic}/delayed/${id}`)).status);
        }
      }),
    );
    await sleep(2500);
    const landed = await landedIn(api, topic, 2);
    const landedCount = new Map<string, number>();
    for (const m of landed) landedCount.set(m.id, (landedCount.get(m.id) ?? 0) + 1);
    for (const id of ids) {
      const status = outcome.get(id);
      if (status === 204) expect(landedCount.get(id) ?? 0, `${id} was cancelled`).toBe(0);
      else {
        expect(status, `${id}`).toBe(404);
        expect(landedCount.get(id), `${id} answered 404`).toBe(1);
      }
    }
    expect(landed).toHaveLength(ids.filter((id) => outcome.get(id) === 404).length);
  });

  it('a duplicated queue message lands nothing twice', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const [r] = await produce(api, topic, [{ body: 'dup', delaySeconds: 1 }]);
    const stores = dynamoStores(loadConfig());
    const topicKey = topicKeyOf((await stores.catalog.getTopic(topic))!);
    const sqs = new SQSClient({});
    for (let i = 0; i < 3; i++) {
      // The queue names the message's group ("<group>-<index>").
      const ids = [r!.id.slice(0, -4)];
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: delayQueueBody({ topicKey, ids, delaySeconds: 0 }), DelaySeconds: i }));
    }
    await sleep(4500);
    expect((await landedIn(api, topic)).map((m) => m.body)).toEqual(['dup']);
  });

  it('a deleted topic’s pending messages never land, not in a topic of the same name created later', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 1 });
    const [r] = await produce(api, topic, [{ body: 'orphan', delaySeconds: 2 }]);
    expect((await api('DELETE', base)).status).toBe(204);
    expect((await api('PUT', base, { partitions: 1 })).status).toBe(201);
    await sleep(4000);
    expect(await landedIn(api, topic)).toEqual([]);
    expect((await api('GET', `${base}/delayed/${r!.id}`)).status).toBe(404);
  });

  it('a queue send that failed after the records were stored: the sweep finds them overdue and they land once', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    injectFault({ command: 'SendMessageBatch', when: 'before' });
    const results = await produce(api, topic, [{ body: 'stranded', delaySeconds: 1 }]);
    expect(faultFired()).toBe(true);
    expect(results[0]).toMatchObject({ status: 'scheduled' });
    await sleep(2000);
    expect(await landedIn(api, topic)).toEqual([]);
    const { sweepDelayed } = await import('../../functions/domain/delay/sweep.js');
    // As the sweep will see it 10 s after the due time.
    const summary = await sweepDelayed(dynamoStores(loadConfig()), Date.now() + 10_000, Date.now() + 10_500);
    expect(summary.overdue).toBeGreaterThanOrEqual(1);
    const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 1);
    expect(landed.map((m) => m.body)).toEqual(['stranded']);
    await sleep(1500);
    expect(await landedIn(api, topic)).toHaveLength(1);
  });

  it('a schedule or a cancel whose reply is lost (the SDK retries it) answers as if it had one reply', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const [scheduled] = await produce(api, topic, [{ body: 'kept', delaySeconds: 1, id: 'lost-1' }]);
    expect(faultFired()).toBe(true);
    expect(scheduled).toMatchObject({ id: 'lost-1', status: 'scheduled' });
    expect((scheduled as any).duplicate).toBeUndefined();
    const [other] = await produce(api, topic, [{ body: 'cancelled', delaySeconds: 2 }]);
    injectFault({ command: 'UpdateItem', when: 'lostReply' });
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${other!.id}`)).status).toBe(204);
    expect(faultFired()).toBe(true);
    await sleep(3500);
    expect((await landedIn(api, topic)).map((m) => m.body)).toEqual(['kept']);
  });

  it('a sweep that dies between any two AWS calls loses nothing and lands nothing twice (the next sweep finishes)', async () => {
    useQueueReach(1);
    await poller.stop();
    const stores = () => dynamoStores(loadConfig());
    const run = async () => (await import('../../functions/domain/delay/sweep.js')).sweepDelayed(stores(), Date.now() + 20_000);
    const topics: string[] = [];
    try {
      const prepare = async () => {
        const { topic } = await topicWithGroup(api, { partitions: 1 });
        await produce(api, topic, [
          { body: 1, delaySeconds: 2 },
          { body: 2, delaySeconds: 2, key: 'k' },
        ]);
        await sleep(1100); // now within the queue's 1 s reach
        return topic;
      };
      topics.push(await prepare());
      // The commands of a clean sweep, in order. How many bucket Queries a sweep makes depends on where
      // the minute boundaries fall, so the faults go by command: after the first call of each kind,
      // and after the second of a kind that repeats (between two marks, say).
      const commands: string[] = [];
      observeDynamoCalls((command) => commands.push(command));
      await run();
      observeDynamoCalls(undefined);
      const plans = [...new Set(commands)].flatMap((command) => {
        const count = commands.filter((c) => c === command).length;
        return count > 1 ? [{ command, nth: 1 }, { command, nth: 2 }] : [{ command, nth: 1 }];
      });
      expect(plans.map((p) => p.command)).toEqual(expect.arrayContaining(['GetItemCommand', 'QueryCommand', 'UpdateItemCommand', 'PutItemCommand']));
      for (const plan of plans) {
        topics.push(await prepare());
        injectFault({ ...plan, when: 'after' });
        await run().catch(() => undefined);
        expect(faultFired(), `fault after ${plan.command} #${plan.nth}`).toBe(true);
        clearFault();
        await run();
      }
    } finally {
      useQueueReach(900);
      poller = await startLandingPoller();
    }
    for (const topic of topics) {
      const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 2, 10_000);
      await sleep(200);
      expect((await landedIn(api, topic)).map((m) => m.body).sort(), topic).toEqual([1, 2]);
      expect(landed).toHaveLength(2);
    }
  }, 120_000);

  describe('a landing that dies between two AWS calls, or loses a reply, lands each message exactly once', () => {
    for (const when of ['after', 'lostReply'] as const) {
      it(`sweep over every call of a landing (${when})`, async () => {
        // Count the calls of one clean landing of two messages (the sweep is not running and the poller's SQS
        // client is not instrumented). Only calls naming this topic count: a queue message whose landing an
        // earlier test failed comes back after the queue's 60 s visibility timeout and lands nothing (two
        // reads), whenever that falls; on LocalStack's SQS, slower to wake a long poll, it fell in this window.
        const prepare = async () => {
          const { topic } = await topicWithGroup(api, { partitions: 1 });
          await produce(api, topic, [
            { body: 1, delaySeconds: 3 },
            { body: 2, delaySeconds: 3 },
          ]);
          // The queue message arrives ~2 s after the produce: by then the warm topic cache has expired,
          // so every landing makes the same calls (it reads the topic).
          await sleep(1100);
          return topic;
        };
        const clean = await prepare();
        let landingCalls = 0;
        observeDynamoCalls((_command, input) => {
          if (JSON.stringify(input).includes(clean)) landingCalls++;
        });
        await sleep(3500);
        observeDynamoCalls(undefined);
        expect((await landedIn(api, clean)).map((m) => m.body).sort()).toEqual([1, 2]);
        expect(landingCalls).toBeGreaterThan(2);
        for (let nth = 1; nth <= landingCalls; nth++) {
          const topic = await prepare();
          injectFault({ command: '*', when, nth } as FaultPlan);
          // No API calls of ours while the fault is armed: it must hit the landing.
          for (let waited = 0; !faultFired() && waited < 8000; waited += 50) await sleep(50);
          expect(faultFired(), `fault ${when} at call ${nth} of ${landingCalls} fired`).toBe(true);
          const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 2, 12_000);
          await sleep(300);
          const again = await landedIn(api, topic);
          expect(again.map((m) => m.body).sort(), `fault ${when} at call ${nth} of ${landingCalls}`).toEqual([1, 2]);
          expect(again).toHaveLength(landed.length);
        }
      }, 240_000);
    }
  });
});
