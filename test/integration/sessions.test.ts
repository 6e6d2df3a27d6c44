/**
 * Producer sessions (docs/sessions.md): retry-safe produce by session + sequence, without an item per
 * message. Every test reads the log back: a message must be there exactly once, where the reply said.
 */
import { DeleteCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { dynamo } from '../../functions/adapters/dynamoClient.js';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { forgetTailHints, raceAppendsLikeSeparateProcesses } from '../../functions/domain/produce.js';
import { produce, topicWithGroup, uniqueName, useApi, type Api } from '../support/api.js';

type Result = { id: string; partition: number; offset: number; duplicate?: boolean };

async function logOf(api: Api, topic: string, partitions: number) {
  const all: Array<{ partition: number; offset: number; body: unknown; id: string }> = [];
  for (let p = 0; p < partitions; p++) {
    const page = await api('GET', `/v1/topics/${topic}/partitions/${p}/messages?from=0&limit=1000`);
    expect(page.status).toBe(200);
    all.push(...(page.body.messages as Array<{ offset: number; body: unknown; id: string }>).map((m) => ({ ...m, partition: p })));
  }
  return all;
}

/** Each body appears once in the log, at the place the results say. */
async function expectOnceEach(api: Api, topic: string, partitions: number, bodies: unknown[], results: Result[]) {
  const log = await logOf(api, topic, partitions);
  bodies.forEach((body, i) => {
    const copies = log.filter((m) => JSON.stringify(m.body) === JSON.stringify(body));
    expect(copies, `copies of ${JSON.stringify(body)}`).toHaveLength(1);
    expect({ partition: copies[0]!.partition, offset: copies[0]!.offset, id: copies[0]!.id }).toEqual({
      partition: results[i]!.partition,
      offset: results[i]!.offset,
      id: results[i]!.id,
    });
  });
  return log;
}

async function sessionItems(topic: string) {
  const out = await dynamo().send(new ScanCommand({ TableName: process.env.SESSIONS_TABLE! }));
  return (out.Items ?? []).filter((item) => typeof item.pk === 'string' && item.pk.startsWith(`${topic}@`));
}

describe('producer sessions', () => {
  const api = useApi();
  afterEach(() => clearFault());

  const send = (topic: string, session: string, sequence: number, messages: unknown[]) =>
    api('POST', `/v1/topics/${topic}/messages`, { producer: { session, sequence }, messages });

  it('appends in order; a retried request answers its original places; an overlapping one appends only what is new', async () => {
    const t = await topicWithGroup(api, { partitions: 3 });
    const session = uniqueName('s');
    const first = [{ body: 'a0' }, { body: 'a1', key: 'k1' }, { body: 'a2', key: 'k2' }];
    const r1 = await send(t.topic, session, 0, first);
    expect(r1.status, JSON.stringify(r1.body)).toBe(200);
    const results1 = r1.body.results as Result[];
    expect(results1.every((r) => r.duplicate === undefined)).toBe(true);
    for (const r of results1) expect(r.id).toMatch(/^[0-9a-z]{22}$/);

    const r2 = await send(t.topic, session, 3, [{ body: 'b3' }, { body: 'b4' }]);
    expect(r2.status).toBe(200);

    // The first request again, as a client would resend it after losing the reply.
    const again = await send(t.topic, session, 0, first);
    expect(again.status).toBe(200);
    expect(again.body.results).toEqual(results1.map((r) => ({ ...r, duplicate: true })));

    // Sequences 4..6: 4 landed, 5 and 6 are new.
    const overlap = await send(t.topic, session, 4, [{ body: 'b4' }, { body: 'c5' }, { body: 'c6', key: 'k1' }]);
    expect(overlap.status).toBe(200);
    const overlapResults = overlap.body.results as Result[];
    expect(overlapResults[0]).toEqual({ ...(r2.body.results as Result[])[1]!, duplicate: true });
    expect(overlapResults.slice(1).every((r) => r.duplicate === undefined)).toBe(true);
    // Keyed messages keep their partition.
    expect(overlapResults[2]!.partition).toBe(results1[1]!.partition);

    const log = await expectOnceEach(api, t.topic, 3, [...first.map((m) => m.body), 'b3', 'b4', 'c5', 'c6'], [...results1, ...(r2.body.results as Result[]), ...overlapResults.slice(1)]);
    expect(log).toHaveLength(7);
    // No producer-id items: one head and one record per request that appended.
    const items = await sessionItems(t.topic);
    expect(items.map((i) => i.sk).sort((a, b) => a - b)).toEqual([-1, 0, 3, 5]);
    expect(items.find((i) => i.sk === -1)).toMatchObject({ nx: 7 });
    // A message of a session is found by its id like any other.
    const found = await api('GET', `/v1/topics/${t.topic}/messages/${overlapResults[1]!.id}`);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ body: 'c5', partition: overlapResults[1]!.partition, offset: overlapResults[1]!.offset });
  });

  it('a request ahead of the session waits for the earlier one, then lands after it; a gap that stays is 409 and stores nothing', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    const session = uniqueName('s');
    // Pipelined: sequence 2 is sent first; it waits until 0..1 have landed.
    const later = send(t.topic, session, 2, [{ body: 'm2' }]);
    await new Promise((r) => setTimeout(r, 100));
    const earlier = await send(t.topic, session, 0, [{ body: 'm0' }, { body: 'm1' }]);
    const laterReply = await later;
    expect(earlier.status).toBe(200);
    expect(laterReply.status, JSON.stringify(laterReply.body)).toBe(200);
    expect((await logOf(api, t.topic, 1)).map((m) => m.body)).toEqual(['m0', 'm1', 'm2']);

    const gap = await send(t.topic, session, 5, [{ body: 'm5' }]);
    expect(gap.status).toBe(409);
    expect(gap.body.error.code).toBe('OutOfOrderSequence');
    expect(gap.body.error.message).toContain('expects sequence 3');
    expect(await logOf(api, t.topic, 1)).toHaveLength(3);
    expect((await send(t.topic, session, 3, [{ body: 'm3' }])).status).toBe(200);
  });

  it('bad input is 400 and stores nothing: ids, delays, bad names and sequences', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    const session = uniqueName('s');
    const bad = [
      { producer: { session, sequence: 0 }, messages: [{ body: 1, id: 'x' }] },
      { producer: { session, sequence: 0 }, messages: [{ body: 1 }, { body: 2, delaySeconds: 5 }] },
      { producer: { session, sequence: 0 }, messages: [{ body: 1, deliverAt: '2030-01-01T00:00:00Z' }] },
      { producer: { session, sequence: 0 }, messages: [{ body: 1, repeat: { everySeconds: 5, times: 2 } }] },
      { producer: { session: 'has space', sequence: 0 }, messages: [{ body: 1 }] },
      { producer: { session: '', sequence: 0 }, messages: [{ body: 1 }] },
      { producer: { session, sequence: -1 }, messages: [{ body: 1 }] },
      { producer: { session, sequence: 1.5 }, messages: [{ body: 1 }] },
      { producer: { session, sequence: Number.MAX_SAFE_INTEGER }, messages: [{ body: 1 }] },
      { producer: { session }, messages: [{ body: 1 }] },
      { producer: { session, sequence: 0, extra: 1 }, messages: [{ body: 1 }] },
      { producer: { session, sequence: 0 }, messages: [{ body: 1, partition: 3 }] },
    ];
    for (const body of bad) {
      const reply = await api('POST', `/v1/topics/${t.topic}/messages`, body);
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(reply.body.error.code).toBe('ValidationError');
    }
    expect(await logOf(api, t.topic, 1)).toEqual([]);
    expect(await sessionItems(t.topic)).toEqual([]);
    // The session was never started: it starts at 0.
    expect((await send(t.topic, session, 0, [{ body: 'ok' }])).status).toBe(200);
  });

  it.each([
    ['in one process (appends queue per partition)', false],
    ['as separate Lambda instances (appends race for the tails)', true],
  ])('the same request racing itself, and racing plain producers on the same partitions, %s: each message once', async (_, race) => {
    raceAppendsLikeSeparateProcesses(race);
    onTestFinished(() => raceAppendsLikeSeparateProcesses(false));
    const t = await topicWithGroup(api, { partitions: 2 });
    const session = uniqueName('s');
    const bodies: string[] = [];
    const sessionRequests: Array<Promise<{ status: number; body: { results: Result[] } }>> = [];
    for (let r = 0; r < 6; r++) {
      const messages = [0, 1, 2].map((i) => ({ body: `s${r}.${i}`, ...(i === 1 ? { key: 'k' } : {}) }));
      bodies.push(...messages.map((m) => m.body));
      // Each request sent three times at once, as if the client's retries raced the original.
      for (let copy = 0; copy < 3; copy++) sessionRequests.push(send(t.topic, session, r * 3, messages));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const plain = Array.from({ length: 6 }, (_, i) => produce(api, t.topic, [{ body: `p${i}` }, { body: `p${i}k`, key: 'k' }]));
    const replies = await Promise.all(sessionRequests);
    await Promise.all(plain);
    for (const reply of replies) expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    // The copies of one request agree with each other.
    for (let r = 0; r < 6; r++) {
      const copies = replies.slice(r * 3, r * 3 + 3).map((reply) => reply.body.results.map(({ partition, offset, id }) => ({ partition, offset, id })));
      expect(copies[1]).toEqual(copies[0]);
      expect(copies[2]).toEqual(copies[0]);
    }
    const results = Array.from({ length: 6 }, (_, r) => replies[r * 3]!.body.results).flat();
    const log = await expectOnceEach(api, t.topic, 2, bodies, results);
    expect(log).toHaveLength(18 + 12);
    // Offsets have no gaps.
    for (const p of [0, 1]) {
      const offsets = log.filter((m) => m.partition === p).map((m) => m.offset);
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
    // Sessions keep their order: session messages of key 'k' are in sequence order.
    const keyed = log.filter((m) => typeof m.body === 'string' && /^s\d\.1$/.test(m.body)).sort((a, b) => a.offset - b.offset);
    expect(keyed.map((m) => m.body)).toEqual([0, 1, 2, 3, 4, 5].map((r) => `s${r}.1`));
  });

  it('any one AWS call losing its reply: the request answers once, and every message is there once', async () => {
    let fired = 0;
    for (let nth = 1; ; nth++) {
      const t = await topicWithGroup(api, { partitions: 2 });
      const session = uniqueName('s');
      forgetTailHints();
      injectFault({ command: '*', when: 'lostReply', nth });
      const messages = [{ body: `a${nth}` }, { body: `b${nth}`, key: 'x' }];
      const reply = await send(t.topic, session, 0, messages);
      const firedNow = faultFired();
      clearFault();
      expect(reply.status, `call ${nth}: ${JSON.stringify(reply.body)}`).toBe(200);
      // Its own write, recognised after the lost reply: not taken for an earlier request's.
      expect(reply.body.results.map((r: Result) => r.duplicate)).toEqual([undefined, undefined]);
      await expectOnceEach(api, t.topic, 2, [`a${nth}`, `b${nth}`], reply.body.results);
      const retried = await send(t.topic, session, 0, messages);
      expect(retried.body.results).toEqual((reply.body.results as Result[]).map((r) => ({ ...r, duplicate: true })));
      if (!firedNow) break;
      fired++;
    }
    // The tail reads of both partitions and the transaction (the head is not read: its condition is enough).
    expect(fired).toBeGreaterThanOrEqual(3);
  });

  it('killed before or after any one AWS call: nothing partial, and the retry lands each message once', async () => {
    for (const when of ['before', 'after'] as const) {
      let fired = 0;
      for (let nth = 1; ; nth++) {
        const t = await topicWithGroup(api, { partitions: 2 });
        const session = uniqueName('s');
        forgetTailHints();
        injectFault({ command: '*', when, nth });
        const messages = [{ body: `a${nth}${when}` }, { body: `b${nth}${when}`, key: 'x' }];
        const crashed = await send(t.topic, session, 0, messages);
        const firedNow = faultFired();
        clearFault();
        if (!firedNow) {
          expect(crashed.status).toBe(200);
          break;
        }
        fired++;
        expect(crashed.status, `${when} call ${nth}`).toBe(500);
        const visible = (await logOf(api, t.topic, 2)).length;
        expect([0, 2], `${when} call ${nth}`).toContain(visible);
        const retried = await send(t.topic, session, 0, messages);
        expect(retried.status).toBe(200);
        // Applied before the crash: the retry answers the original places.
        expect(retried.body.results.every((r: Result) => r.duplicate === (visible === 2 ? true : undefined))).toBe(true);
        await expectOnceEach(api, t.topic, 2, messages.map((m) => m.body), retried.body.results);
      }
      expect(fired).toBeGreaterThanOrEqual(3);
    }
  });

  it('a session that no longer remembers a sequence says so (409), and a deleted topic forgets its sessions', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    const session = uniqueName('s');
    expect((await send(t.topic, session, 0, [{ body: 1 }, { body: 2 }])).status).toBe(200);
    // As if the record had expired (TTL) while the head lived on.
    const records = await dynamo().send(
      new QueryCommand({ TableName: process.env.SESSIONS_TABLE!, KeyConditionExpression: 'pk = :pk AND sk >= :z', ExpressionAttributeValues: { ':pk': (await sessionItems(t.topic))[0]!.pk, ':z': 0 } }),
    );
    for (const item of records.Items ?? []) await dynamo().send(new DeleteCommand({ TableName: process.env.SESSIONS_TABLE!, Key: { pk: item.pk, sk: item.sk } }));
    const stale = await send(t.topic, session, 0, [{ body: 1 }, { body: 2 }]);
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('OutOfOrderSequence');
    expect(stale.body.error.message).toContain('no longer remembers sequence 0');
    expect(await logOf(api, t.topic, 1)).toHaveLength(2);

    // A session past its TTL (DynamoDB deletes expired items only within days) is gone: it starts at 0 again.
    const expired = await send(t.topic, session, 2, [{ body: 3 }]);
    expect(expired.status).toBe(200);
    const [head] = (await sessionItems(t.topic)).filter((i) => i.sk === -1);
    await dynamo().send(new UpdateCommand({ TableName: process.env.SESSIONS_TABLE!, Key: { pk: head!.pk, sk: -1 }, UpdateExpression: 'SET exp = :past', ExpressionAttributeValues: { ':past': 1000 } }));
    const restarted = await send(t.topic, session, 0, [{ body: 'again' }]);
    expect(restarted.status).toBe(200);
    expect(restarted.body.results[0]).toMatchObject({ offset: 3 });
    expect(restarted.body.results[0].duplicate).toBeUndefined();
    expect((await send(t.topic, session, 1, [{ body: 'next' }])).body.results[0]).toMatchObject({ offset: 4 });

    expect((await api('DELETE', `/v1/topics/${t.topic}`)).status).toBe(204);
    expect((await api('PUT', `/v1/topics/${t.topic}`, { partitions: 1 })).status).toBe(201);
    const fresh = await send(t.topic, session, 0, [{ body: 'new' }]);
    expect(fresh.status).toBe(200);
    expect(fresh.body.results[0]).toMatchObject({ partition: 0, offset: 0 });
    expect(fresh.body.results[0].duplicate).toBeUndefined();
  });
});
