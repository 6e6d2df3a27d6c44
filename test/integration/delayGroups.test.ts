/**
 * Grouped pending records (docs/delay.md, "Groups"): the id-less delayed messages of one request that are
 * due together are one pending item, landed in one transaction. What must hold for each member as for a
 * message stored on its own: it lands once or, cancelled, never; it is found by id after landing; it is
 * listed, got and cancelled while pending; a landing that dies, loses a reply or comes twice changes none
 * of that. Like delay.test.ts, this file has a delay queue of its own (2 s visibility).
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { delayQueueBody } from '../../functions/adapters/delayQueue.js';
import { clearFault, faultFired, injectFault, type FaultPlan } from '../../functions/adapters/faults.js';
import { dynamoStores, forgetStores } from '../../functions/adapters/stores.js';
import { forgetConfig, loadConfig } from '../../functions/config.js';
import { newDelayId } from '../../functions/domain/delay/schedule.js';
import { queueDue } from '../../functions/domain/delay/queueing.js';
import { partitionForKey } from '../../functions/domain/partitioner.js';
import { topicKeyOf } from '../../functions/domain/ports.js';
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

/** A member's group: its id less "-<index>". */
const groupOf = (memberId: string) => memberId.slice(0, -4);

const countById = (landed: readonly Landed[]) => {
  const counts = new Map<string, number>();
  for (const m of landed) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
  return counts;
};

describe('grouped delayed messages', () => {
  const api = useApi();
  let poller: SqsPoller;
  let queueUrl: string;
  const saved = { url: process.env.DELAY_QUEUE_URL, max: process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS };

  beforeAll(async () => {
    const sqs = new SQSClient({});
    const name = uniqueName('delay-groups-test');
    const dlq = await ensureQueue(sqs, `${name}-dlq`, {});
    const queue = await ensureQueue(sqs, name, {
      VisibilityTimeout: '2',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 20 }),
    });
    queueUrl = queue.url;
    process.env.DELAY_QUEUE_URL = queueUrl;
    process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS = '900';
    forgetConfig();
    forgetStores();
    poller = await startSqsPoller({
      queueUrl,
      functionName: 'landDelayed',
      load: async () => (await import('../../functions/handlers/landDelayed.js')).handler as any,
      timeoutSeconds: 2,
      waitTimeSeconds: 1,
      concurrency: 3,
      log: () => undefined,
    });
  });
  afterAll(async () => {
    await poller?.stop();
    process.env.DELAY_QUEUE_URL = saved.url;
    if (saved.max === undefined) delete process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS;
    else process.env.SLUICE_DELAY_QUEUE_MAX_SECONDS = saved.max;
    forgetConfig();
    forgetStores();
  });
  afterEach(() => clearFault());

  const topicKeyOfName = async (topic: string) => topicKeyOf((await dynamoStores(loadConfig()).catalog.getTopic(topic))!);

  it('one request’s messages due together are one pending item; they land once, findable by id, then are neither pending nor cancellable', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 2 });
    const due = Date.now() + 2000;
    const results = await produce(api, topic, [
      ...Array.from({ length: 30 }, (_, i) => ({ body: i, deliverAt: due, tags: i === 0 ? ['first'] : undefined })),
      { body: 'other due', deliverAt: due + 1000 },
    ]);
    const ids = results.map((r) => r.id);
    // Thirty members of one group (in index order), and a group of its own for the other due time.
    expect(new Set(ids.slice(0, 30).map(groupOf)).size).toBe(1);
    expect(ids.slice(0, 30)).toEqual(ids.slice(0, 30).map((_, i) => `${groupOf(ids[0]!)}-${i.toString(36).padStart(3, '0')}`));
    expect(groupOf(ids[30]!)).not.toBe(groupOf(ids[0]!));
    const stores = dynamoStores(loadConfig());
    const topicKey = await topicKeyOfName(topic);
    expect(await stores.delays.getMany(topicKey, [groupOf(ids[0]!)])).toHaveProperty('size', 1);
    // Got by a member's id, with its own body and tags.
    expect((await api('GET', `/v1/topics/${topic}/delayed/${ids[0]}`)).body).toMatchObject({ id: ids[0], body: 0, tags: ['first'] });
    expect((await api('GET', `/v1/topics/${topic}/delayed/${ids[7]}`)).body).toMatchObject({ id: ids[7], body: 7, tags: [] });
    // A member index the group does not have, and the group's own id, are no pending messages.
    expect((await api('GET', `/v1/topics/${topic}/delayed/${groupOf(ids[0]!)}-0zz`)).status).toBe(404);
    expect((await api('GET', `/v1/topics/${topic}/delayed/${groupOf(ids[0]!)}`)).status).toBe(404);
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${groupOf(ids[0]!)}`)).status).toBe(404);

    const landed = await waitFor(() => landedIn(api, topic, 2), (l) => l.length >= 31);
    expect(landed.map((m) => m.id).sort()).toEqual([...ids].sort());
    for (const m of landed) {
      const late = Date.parse(m.producedAt) - Date.parse(m.deliverAt!);
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThanOrEqual(1000);
    }
    for (const id of [ids[0]!, ids[17]!, ids[30]!]) {
      const found = await api('GET', `/v1/topics/${topic}/messages/${id}`);
      expect(found.status, id).toBe(200);
      expect(found.body.id).toBe(id);
      expect(found.body.body).toBe(landed.find((m) => m.id === id)!.body);
      expect((await api('GET', `/v1/topics/${topic}/delayed/${id}`)).status).toBe(404);
      expect((await api('DELETE', `/v1/topics/${topic}/delayed/${id}`)).status).toBe(404);
    }
    // A member index that never existed is not found either.
    expect((await api('GET', `/v1/topics/${topic}/messages/${groupOf(ids[0]!)}-0zz`)).status).toBe(404);
    // The groups are gone; the producer ids of the landed members are taken as any landed id is.
    expect((await stores.delays.getMany(topicKey, [groupOf(ids[0]!), groupOf(ids[30]!)])).size).toBe(0);
    const [again] = await produce(api, topic, [{ body: 'same id', id: ids[3] }]);
    expect(again).toMatchObject({ id: ids[3], duplicate: true, offset: landed.find((m) => m.id === ids[3])!.offset });
  });

  it('lists members in due order, paging inside a group, without the cancelled ones', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const due = Date.now() + 60_000;
    const results = await produce(api, topic, [
      { body: 'early', deliverAt: due - 1000, id: 'producer-early' },
      ...Array.from({ length: 7 }, (_, i) => ({ body: i, deliverAt: due })),
      { body: 'late', deliverAt: due + 1000 },
    ]);
    const members = results.slice(1, 8).map((r) => r.id);
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${members[2]}`)).status).toBe(204);
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${members[2]}`)).status).toBe(404);
    const expected = ['producer-early', ...members.filter((_, i) => i !== 2), results[8]!.id];
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const reply = await api('GET', `/v1/topics/${topic}/delayed?limit=3${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      expect(reply.status).toBe(200);
      expect(reply.body.messages.length).toBeLessThanOrEqual(3);
      seen.push(...reply.body.messages.map((m: any) => m.id));
      after = reply.body.next;
      if (!after) break;
    }
    expect(seen).toEqual(expected);
    // Every member cancelled: the group lists nothing, and never lands.
    for (const id of members) await api('DELETE', `/v1/topics/${topic}/delayed/${id}`);
    const rest = await api('GET', `/v1/topics/${topic}/delayed`);
    expect(rest.body.messages.map((m: any) => m.id)).toEqual(['producer-early', results[8]!.id]);
  });

  it('cancel racing the landing, 200 members of one group: each is either cancelled (204) and never lands, or lands exactly once (404)', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 2 });
    const due = Date.now() + 2500;
    const results = await produce(api, topic, Array.from({ length: 200 }, (_, i) => ({ body: i, deliverAt: due })));
    const ids = results.map((r) => r.id);
    expect(new Set(ids.map(groupOf)).size).toBe(1);
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
    const expectedLanded = ids.filter((id) => outcome.get(id) === 404).length;
    const landed = await waitFor(() => landedIn(api, topic, 2), (l) => l.length >= expectedLanded, 15_000);
    await sleep(2500);
    const final = await landedIn(api, topic, 2);
    expect(final).toHaveLength(landed.length);
    const counts = countById(final);
    for (const id of ids) {
      const status = outcome.get(id);
      if (status === 204) expect(counts.get(id) ?? 0, `${id} was cancelled`).toBe(0);
      else {
        expect(status, id).toBe(404);
        expect(counts.get(id), `${id} answered 404`).toBe(1);
      }
    }
    expect(final).toHaveLength(expectedLanded);
  });

  it('a group’s queue message delivered three times lands each member once', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const results = await produce(api, topic, Array.from({ length: 5 }, (_, i) => ({ body: i, delaySeconds: 1 })));
    const topicKey = await topicKeyOfName(topic);
    const sqs = new SQSClient({});
    await Promise.all(
      [0, 0, 1].map((delay) =>
        sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: delayQueueBody({ topicKey, ids: [groupOf(results[0]!.id)], delaySeconds: 0 }), DelaySeconds: delay })),
      ),
    );
    await waitFor(() => landedIn(api, topic), (l) => l.length >= 5);
    await sleep(3000);
    const landed = await landedIn(api, topic);
    expect(landed.map((m) => m.body)).toEqual([0, 1, 2, 3, 4]);
  });

  it('a repeating group lands every member each time; a member cancelled after the first landing stops', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const results = await produce(api, topic, Array.from({ length: 3 }, (_, i) => ({ body: i, delaySeconds: 1, repeat: { everySeconds: 2, times: 3 } })));
    const ids = results.map((r) => r.id);
    await waitFor(() => landedIn(api, topic), (l) => l.length >= 3);
    const pending = await api('GET', `/v1/topics/${topic}/delayed/${ids[1]}`);
    expect(pending.body).toMatchObject({ id: ids[1], repeat: { everySeconds: 2, times: 3, next: 2 } });
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${ids[1]}`)).status).toBe(204);
    const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 7, 12_000);
    await sleep(2500);
    expect(await landedIn(api, topic)).toHaveLength(7);
    expect(landed.map((m) => [m.id, m.headers['sluice-repeat']])).toEqual([
      [ids[0], '1/3'],
      [ids[1], '1/3'],
      [ids[2], '1/3'],
      [`${ids[0]}.2`, '2/3'],
      [`${ids[2]}.2`, '2/3'],
      [`${ids[0]}.3`, '3/3'],
      [`${ids[2]}.3`, '3/3'],
    ]);
    // Each landing is found by its own id.
    for (const m of landed) expect((await api('GET', `/v1/topics/${topic}/messages/${m.id}`)).body.offset, m.id).toBe(m.offset);
    expect((await api('GET', `/v1/topics/${topic}/messages/${ids[1]}.2`)).status).toBe(404);
  });

  it('a group creation or a member cancel whose reply is lost (the SDK retries it) answers as if it had one reply', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const results = await produce(api, topic, [{ body: 'kept', delaySeconds: 2 }, { body: 'cancelled', delaySeconds: 2 }]);
    expect(faultFired()).toBe(true);
    expect(results.map((r) => r.duplicate)).toEqual([undefined, undefined]);
    injectFault({ command: 'UpdateItem', when: 'lostReply' });
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${results[1]!.id}`)).status).toBe(204);
    expect(faultFired()).toBe(true);
    await waitFor(() => landedIn(api, topic), (l) => l.length >= 1);
    await sleep(2500);
    expect((await landedIn(api, topic)).map((m) => m.body)).toEqual(['kept']);
  });

  it('a pending record of the form written before groups (one id-less message, one item) still lands, lists, is found and cancels', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const stores = dynamoStores(loadConfig());
    const topicKey = await topicKeyOfName(topic);
    const now = Date.now();
    const old = (due: number, body: string) => {
      const id = newDelayId(due);
      return { topicKey, id, due, record: { b: body, i: id }, landing: 1, queued: true, version: 1, createdAt: now };
    };
    const landing = old(now + 1500, 'old-style');
    const cancelled = old(now + 1500, 'old-style, cancelled');
    for (const p of [landing, cancelled]) expect(await stores.delays.create(p)).toBeUndefined();
    const listed = await api('GET', `/v1/topics/${topic}/delayed`);
    expect(listed.body.messages.map((m: any) => m.id).sort()).toEqual([landing.id, cancelled.id].sort());
    expect((await api('DELETE', `/v1/topics/${topic}/delayed/${cancelled.id}`)).status).toBe(204);
    await queueDue(stores, [landing, cancelled]);
    const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= 1);
    await sleep(2500);
    expect((await landedIn(api, topic)).map((m) => m.id)).toEqual([landing.id]);
    expect((await api('GET', `/v1/topics/${topic}/messages/${landing.id}`)).body).toMatchObject({ id: landing.id, offset: landed[0]!.offset });
  });

  describe('a group split over two segments (a landing in two transactions) that dies after, or loses the reply of, any call lands each member exactly once', () => {
    // Two groups of one request (each at most 160 KB), 20 messages of ~15.5 KB: one queue message, one
    // partition, and 300 KB segments, so the second group lands partly in each of two segments.
    const bodies = Array.from({ length: 20 }, (_, i) => `${i}:${'x'.repeat(15_500)}`);
    const prepare = async () => {
      const { topic } = await topicWithGroup(api, { partitions: 1 });
      const results = await produce(api, topic, bodies.map((body) => ({ body, delaySeconds: 3 })));
      // The queue message arrives ~2 s after the produce: by then the warm topic cache has expired,
      // so every landing makes the same calls (it reads the topic).
      await sleep(1100);
      return { topic, ids: results.map((r) => r.id) };
    };
    const check = async (topic: string, ids: readonly string[], label: string) => {
      const landed = await waitFor(() => landedIn(api, topic), (l) => l.length >= bodies.length, 12_000);
      await sleep(300);
      const again = await landedIn(api, topic);
      expect(again, label).toHaveLength(landed.length);
      expect(again.map((m) => m.id).sort(), label).toEqual([...ids].sort());
      expect(again.map((m) => m.body).sort(), label).toEqual([...bodies].sort());
      // Found by id, each at its place (the group's lookup record holds both segments' members).
      for (const id of [ids[0]!, ids[12]!, ids[19]!]) {
        expect((await api('GET', `/v1/topics/${topic}/messages/${id}`)).body.offset, `${label}: ${id}`).toBe(again.find((m) => m.id === id)!.offset);
      }
    };

    for (const when of ['after', 'lostReply'] as const) {
      it(`sweep over every call of the landing (${when})`, async () => {
        const clean = await prepare();
        expect(new Set(clean.ids.map(groupOf)).size).toBe(2);
        const commands: string[] = [];
        observeDynamoCalls((command, input) => {
          if (JSON.stringify(input).includes(clean.topic)) commands.push(command);
        });
        await sleep(3500);
        observeDynamoCalls(undefined);
        await check(clean.topic, clean.ids, 'clean');
        // The landing: reads, and two segment transactions (the second group split over both).
        expect(commands.filter((c) => c === 'TransactWriteItemsCommand')).toHaveLength(2);
        for (let nth = 1; nth <= commands.length; nth++) {
          // A landing's calls vary with the machine's load (a lost race adds a read and a retry; the clean run
          // above may have had one): one that ended before its nth call is checked like the others and the
          // same nth is tried once more on a fresh request.
          for (let attempt = 1; attempt <= 2; attempt++) {
            const { topic, ids } = await prepare();
            injectFault({ command: '*', when, nth } as FaultPlan);
            // No API calls of ours while the fault is armed: it must hit the landing.
            for (let waited = 0; !faultFired() && waited < 8000; waited += 50) await sleep(50);
            const fired = faultFired();
            clearFault();
            await check(topic, ids, `fault ${when} at call ${nth} (${commands[nth - 1]}) of ${commands.length}, attempt ${attempt}`);
            if (fired || attempt === 2) {
              expect(fired, `fault ${when} at call ${nth} of ${commands.length} fired`).toBe(true);
              break;
            }
          }
        }
      }, 240_000);
    }
  });

  it('a group whose keys route to several partitions after the topic grew lands each member once, at its key’s partition', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 1 });
    const keys = Array.from({ length: 24 }, (_, i) => `key-${i}`);
    const results = await produce(api, topic, keys.map((key, i) => ({ body: i, key, delaySeconds: 4 })));
    expect(new Set(results.map((r) => groupOf(r.id))).size).toBe(1);
    // Answers once keyed messages route by the new count (about 1.3 s).
    expect((await api('PUT', base, { partitions: 4 })).status).toBe(200);
    const landed = await waitFor(() => landedIn(api, topic, 4), (l) => l.length >= keys.length, 12_000);
    await sleep(2500);
    const final = await landedIn(api, topic, 4);
    expect(final).toHaveLength(landed.length);
    expect(final.map((m) => m.id).sort()).toEqual(results.map((r) => r.id).sort());
    // Spread over the grown topic's partitions, each at its key's partition, and found by id there.
    expect(new Set(final.map((m) => m.partition)).size).toBeGreaterThan(1);
    for (const m of final) {
      expect(m.partition, m.id).toBe(partitionForKey(keys[m.body as number]!, 4));
      const found = await api('GET', `/v1/topics/${topic}/messages/${m.id}`);
      expect([found.body.partition, found.body.offset], m.id).toEqual([m.partition, m.offset]);
    }
  });

  it('a deleted topic’s pending groups never land, not in a topic of the same name created later', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 1 });
    const results = await produce(api, topic, [{ body: 'orphan 1', delaySeconds: 2 }, { body: 'orphan 2', delaySeconds: 2 }]);
    const topicKey = await topicKeyOfName(topic);
    expect((await api('DELETE', base)).status).toBe(204);
    expect((await api('PUT', base, { partitions: 1 })).status).toBe(201);
    await sleep(4000);
    expect(await landedIn(api, topic)).toEqual([]);
    expect((await api('GET', `${base}/delayed/${results[0]!.id}`)).status).toBe(404);
    // The landing dropped the old incarnation's group.
    expect((await dynamoStores(loadConfig()).delays.getMany(topicKey, [groupOf(results[0]!.id)])).size).toBe(0);
  });
});
