/**
 * Transactions (API.md "Transactions"): prepare, commit, rollback across topics. Check-back is in
 * checkBack.test.ts.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/adapters/dynamoClient.js';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { produce, pullAll, topicWithGroup, uniqueName, useApi, type Api } from '../support/api.js';

async function readPartition(api: Api, topic: string, partition: number) {
  const page = await api('GET', `/v1/topics/${topic}/partitions/${partition}/messages?from=0&limit=1000`);
  expect(page.status).toBe(200);
  return page.body.messages as Array<{ offset: number; body: unknown; id: string }>;
}

async function prepare(api: Api, body: Record<string, unknown>) {
  const reply = await api('POST', '/v1/transactions', { timeoutSeconds: 3600, ...body });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return reply.body as { id: string; state: string; expiresAt: string };
}

/** Transactions items whose prepared messages mention `text` (a test's unique topic name). */
async function storedTransactionsMentioning(text: string) {
  const out = await dynamo().send(new ScanCommand({ TableName: process.env.TRANSACTIONS_TABLE! }));
  return (out.Items ?? []).filter((item) => typeof item.m === 'string' && item.m.includes(text));
}

describe('transactions', () => {
  const api = useApi();
  afterEach(() => clearFault());

  it('prepared messages are invisible; commit makes all of them visible in every topic, with their places', async () => {
    const a = await topicWithGroup(api, { partitions: 2, group: {} });
    const b = await topicWithGroup(api, { partitions: 1, group: {} });
    const c = await topicWithGroup(api, { partitions: 3, group: {} });
    const tx = await prepare(api, {
      messages: [
        { topic: a.topic, body: { n: 1 }, key: 'order-1' },
        { topic: b.topic, body: { n: 2 }, id: 'tx-producer-id-1' },
        { topic: c.topic, body: { n: 3 }, tags: ['x'] },
        { topic: a.topic, body: { n: 4 }, key: 'order-1' },
      ],
    });
    expect(tx.state).toBe('prepared');
    expect(tx.id).toMatch(/^tx[A-Za-z0-9_-]{22}$/);
    for (const t of [a, b, c]) expect(await pullAll(api, t.groupPath, { waitSeconds: 0 })).toEqual([]);
    const shown = await api('GET', `/v1/transactions/${tx.id}`);
    expect(shown.body).toMatchObject({ id: tx.id, state: 'prepared', checks: [] });
    expect(shown.body.messages).toHaveLength(4);

    const committed = await api('POST', `/v1/transactions/${tx.id}/commit`);
    expect(committed.status).toBe(200);
    expect(committed.body.state).toBe('committed');
    const results = committed.body.results as Array<{ topic: string; id: string; partition: number; offset: number }>;
    expect(results.map((r) => r.topic)).toEqual([a.topic, b.topic, c.topic, a.topic]);
    expect(results[1]).toMatchObject({ id: 'tx-producer-id-1', partition: 0, offset: 0 });
    // Keyed messages keep their order in one partition.
    expect(results[3]!.partition).toBe(results[0]!.partition);
    expect(results[3]!.offset).toBe(results[0]!.offset + 1);

    expect((await pullAll(api, a.groupPath)).map((m) => m.body)).toEqual([{ n: 1 }, { n: 4 }]);
    expect((await pullAll(api, b.groupPath)).map((m) => m.body)).toEqual([{ n: 2 }]);
    const fromC = await pullAll(api, c.groupPath);
    expect(fromC.map((m) => m.body)).toEqual([{ n: 3 }]);
    expect(fromC[0]!.id).toBe(results[2]!.id);
    // Lookup by the producer id finds it.
    expect((await api('GET', `/v1/topics/${b.topic}/messages/tx-producer-id-1`)).body.body).toEqual({ n: 2 });
    const after = await api('GET', `/v1/transactions/${tx.id}`);
    expect(after.body).toMatchObject({ state: 'committed', decidedBy: 'producer', results });
  });

  it('a consumer reading three topics while the commit happens sees all of the transaction or none of it', async () => {
    for (let round = 0; round < 5; round++) {
      const topics = await Promise.all([0, 1, 2].map(() => topicWithGroup(api, { partitions: 1 })));
      const tx = await prepare(api, { messages: topics.map((t, i) => ({ topic: t.topic, body: { i } })) });
      let committed = false;
      const observations: number[][] = [];
      const reader = (async () => {
        // Reads the topics in the order a topic-by-topic commit would write them: such a commit could be
        // seen as "the first topic has it, a later one not yet" (a 1 before a 0).
        while (!committed || observations.length < 3) {
          const seen: number[] = [];
          for (const t of topics) seen.push((await readPartition(api, t.topic, 0)).length);
          observations.push(seen);
        }
      })();
      const reply = await api('POST', `/v1/transactions/${tx.id}/commit`);
      committed = true;
      await reader;
      expect(reply.status).toBe(200);
      for (const seen of observations) {
        // Atomic: a topic read later never shows less than one read before it (the commit may fall between two reads).
        expect(isMonotonic(seen), JSON.stringify(observations)).toBe(true);
      }
      expect(observations.at(-1)).toEqual([1, 1, 1]);
    }
  });

  it('rollback hides the messages for good; commit and rollback are idempotent; the other one is 409', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const rolled = await prepare(api, { messages: [{ topic: t.topic, body: 'never' }] });
    expect((await api('POST', `/v1/transactions/${rolled.id}/rollback`)).body).toEqual({ id: rolled.id, state: 'rolledBack' });
    expect((await api('POST', `/v1/transactions/${rolled.id}/rollback`)).status).toBe(200);
    const late = await api('POST', `/v1/transactions/${rolled.id}/commit`);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('Conflict');
    expect(await readPartition(api, t.topic, 0)).toEqual([]);
    expect((await api('GET', `/v1/transactions/${rolled.id}`)).body).toMatchObject({ state: 'rolledBack', decidedBy: 'producer' });

    const kept = await prepare(api, { messages: [{ topic: t.topic, body: 'once' }] });
    const first = await api('POST', `/v1/transactions/${kept.id}/commit`);
    const again = await api('POST', `/v1/transactions/${kept.id}/commit`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await api('POST', `/v1/transactions/${kept.id}/rollback`)).status).toBe(409);
    expect((await readPartition(api, t.topic, 0)).map((m) => m.body)).toEqual(['once']);
  });

  it('commit racing rollback: exactly one wins, the loser gets 409, and the log agrees with the winner', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    let commits = 0;
    for (let i = 0; i < 10; i++) {
      const tx = await prepare(api, { messages: [{ topic: t.topic, body: i }] });
      const [commit, rollback] = await Promise.all([
        api('POST', `/v1/transactions/${tx.id}/commit`),
        api('POST', `/v1/transactions/${tx.id}/rollback`),
      ]);
      expect([commit.status, rollback.status].sort()).toEqual([200, 409]);
      if (commit.status === 200) commits++;
    }
    const bodies = (await readPartition(api, t.topic, 0)).map((m) => m.body);
    expect(bodies).toHaveLength(commits);
  });

  it('two commits racing answer the same results and append once', async () => {
    const t = await topicWithGroup(api, { partitions: 2 });
    const tx = await prepare(api, { messages: [{ topic: t.topic, body: 'x', partition: 1 }, { topic: t.topic, body: 'y', partition: 0 }] });
    const replies = await Promise.all([0, 1, 2, 3].map(() => api('POST', `/v1/transactions/${tx.id}/commit`)));
    for (const r of replies) expect(r.body).toEqual(replies[0]!.body);
    expect((await readPartition(api, t.topic, 0)).length + (await readPartition(api, t.topic, 1)).length).toBe(2);
  });

  it('commits racing plain producers on the same partitions leave no gap and no overwrite', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    const txs = await Promise.all([0, 1, 2, 3, 4].map((i) => prepare(api, { messages: [{ topic: t.topic, body: `tx-${i}` }] })));
    await Promise.all([
      ...txs.map((tx) => api('POST', `/v1/transactions/${tx.id}/commit`).then((r) => expect(r.status).toBe(200))),
      ...[0, 1, 2, 3, 4].map((i) => produce(api, t.topic, [{ body: `plain-${i}` }])),
    ]);
    const log = await readPartition(api, t.topic, 0);
    expect(log.map((m) => m.offset)).toEqual([...Array(10).keys()]);
    expect(new Set(log.map((m) => m.body)).size).toBe(10);
  });

  it('a producer id appended outside the transaction meanwhile answers duplicate with its original place', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    const tx = await prepare(api, { messages: [{ topic: t.topic, body: 'from tx', id: 'shared-id' }, { topic: t.topic, body: 'other' }] });
    const [original] = await produce(api, t.topic, [{ body: 'plain', id: 'shared-id' }]);
    const committed = await api('POST', `/v1/transactions/${tx.id}/commit`);
    expect(committed.status).toBe(200);
    expect(committed.body.results[0]).toMatchObject({ id: 'shared-id', offset: original!.offset, duplicate: true });
    expect((await readPartition(api, t.topic, 0)).map((m) => m.body)).toEqual(['plain', 'other']);
  });

  it('a topic deleted while the transaction is prepared: commit is 409 and rolls back; a re-created topic gets nothing', async () => {
    const kept = await topicWithGroup(api, { partitions: 1 });
    const doomed = await topicWithGroup(api, { partitions: 1 });
    const tx = await prepare(api, { messages: [{ topic: kept.topic, body: 'k' }, { topic: doomed.topic, body: 'd' }] });
    expect((await api('DELETE', `/v1/topics/${doomed.topic}`)).status).toBe(204);
    expect((await api('PUT', `/v1/topics/${doomed.topic}`, { partitions: 1 })).status).toBe(201);
    const reply = await api('POST', `/v1/transactions/${tx.id}/commit`);
    expect(reply.status).toBe(409);
    expect(reply.body.error.message).toContain(doomed.topic);
    expect((await api('GET', `/v1/transactions/${tx.id}`)).body).toMatchObject({ state: 'rolledBack', decidedBy: 'topicDeleted' });
    expect(await readPartition(api, kept.topic, 0)).toEqual([]);
    expect(await readPartition(api, doomed.topic, 0)).toEqual([]);
  });

  it('bad input is a 4xx in the documented shape and stores nothing', async () => {
    const t = await topicWithGroup(api, { partitions: 2 });
    const big = 'x'.repeat(200 * 1024);
    const cases: Array<[unknown, number, string]> = [
      [{ messages: [] }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic }] }, 400, 'ValidationError'],
      [{ messages: [{ topic: 'no-such-topic-' + t.topic, body: 1 }] }, 404, 'TopicNotFound'],
      [{ messages: [{ topic: t.topic, body: 1, delaySeconds: 5 }] }, 400, 'NotSupported'],
      [{ messages: [{ topic: t.topic, body: 1, partition: 2 }] }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: 1, id: 'a' }, { topic: t.topic, body: 2, id: 'a' }] }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: 1 }], timeoutSeconds: 0 }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: 1 }], timeoutSeconds: 86_401 }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: 1 }], maxChecks: 101 }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: 1 }], checkIntervalSeconds: 3601 }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: 1 }], checkBack: { url: 'ftp://x' } }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: 1 }], checkBack: { functionArn: 'nope' } }, 400, 'ValidationError'],
      [{ messages: [{ topic: t.topic, body: big }, { topic: t.topic, body: big }] }, 400, 'TransactionTooLarge'],
      [{ messages: Array.from({ length: 100 }, (_, i) => ({ topic: t.topic, body: i, id: `id-${i}` })) }, 400, 'TransactionTooLarge'],
      [{ messages: Array.from({ length: 101 }, (_, i) => ({ topic: t.topic, body: i })) }, 400, 'ValidationError'],
    ];
    for (const [body, status, code] of cases) {
      const reply = await api('POST', '/v1/transactions', body);
      expect(reply.status, JSON.stringify(body).slice(0, 200)).toBe(status);
      expect(reply.body.error.code).toBe(code);
      expect(typeof reply.body.error.message).toBe('string');
    }
    expect(await storedTransactionsMentioning(t.topic)).toEqual([]);
    // 99 producer ids in one partition fit: 1 + 1 segment + 99 ids would not; 98 do.
    expect((await api('POST', '/v1/transactions', { messages: Array.from({ length: 98 }, (_, i) => ({ topic: t.topic, body: i, id: `ok-${i}`, partition: 0 })) })).status).toBe(201);
    expect((await api('GET', '/v1/transactions/not-an-id')).status).toBe(400);
    const missing = await api('GET', '/v1/transactions/txAAAAAAAAAAAAAAAAAAAAAA');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('TransactionNotFound');
    expect((await api('POST', '/v1/transactions/txAAAAAAAAAAAAAAAAAAAAAA/commit')).status).toBe(404);
    expect((await api('POST', '/v1/transactions/txAAAAAAAAAAAAAAAAAAAAAA/rollback')).status).toBe(404);
  });

  it('prepare hands out one signing secret for URL check-backs, the same every time', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    const replies = await Promise.all(
      [0, 1, 2].map(() => api('POST', '/v1/transactions', { messages: [{ topic: t.topic, body: 1 }], checkBack: { url: 'http://127.0.0.1:9/check' } })),
    );
    const secrets = new Set(replies.map((r) => r.body.signingSecret));
    expect(secrets.size).toBe(1);
    expect([...secrets][0]).toMatch(/^whsec_/);
    const lambda = await api('POST', '/v1/transactions', {
      messages: [{ topic: t.topic, body: 1 }],
      checkBack: { functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:checker' },
    });
    expect(lambda.body.signingSecret).toBeUndefined();
  });
});

describe('transactions under lost replies and crashes', () => {
  const api = useApi();
  afterEach(() => clearFault());

  async function countCalls(run: () => Promise<unknown>) {
    let calls = 0;
    observeDynamoCalls(() => calls++);
    try {
      await run();
    } finally {
      observeDynamoCalls(undefined);
    }
    return calls;
  }

  async function preparedAcross(partitions: number) {
    const a = await topicWithGroup(api, { partitions });
    const b = await topicWithGroup(api, { partitions: 1 });
    const tx = await prepare(api, { messages: [{ topic: a.topic, body: 'a', id: uniqueName('pid') }, { topic: b.topic, body: 'b' }] });
    return { a, b, tx };
  }

  async function expectAllOrNothing(a: string, b: string, id: string) {
    const shown = (await api('GET', `/v1/transactions/${id}`)).body;
    const visible = (await readPartition(api, a, 0)).length + (await readPartition(api, b, 0)).length;
    if (shown.state === 'committed') expect(visible).toBe(2);
    else expect(visible).toBe(0);
    return shown.state as string;
  }

  it('commit with any one AWS call losing its reply commits once, with the answer of the applied write', async () => {
    const { a, b, tx } = await preparedAcross(1);
    const calls = await countCalls(() => api('POST', `/v1/transactions/${tx.id}/commit`));
    expect(calls).toBeGreaterThan(2);
    for (let nth = 1; nth <= calls; nth++) {
      const fresh = await preparedAcross(1);
      injectFault({ command: '*', when: 'lostReply', nth });
      const reply = await api('POST', `/v1/transactions/${fresh.tx.id}/commit`);
      expect(faultFired()).toBe(true);
      expect(reply.status, `call ${nth}: ${JSON.stringify(reply.body)}`).toBe(200);
      expect(await expectAllOrNothing(fresh.a.topic, fresh.b.topic, fresh.tx.id)).toBe('committed');
      expect(reply.body.results.map((r: { offset: number }) => r.offset)).toEqual([0, 0]);
    }
    expect(await expectAllOrNothing(a.topic, b.topic, tx.id)).toBe('committed');
  });

  it('commit killed after any one AWS call: nothing partial, and the retried commit finishes it', async () => {
    const probe = await preparedAcross(1);
    const calls = await countCalls(() => api('POST', `/v1/transactions/${probe.tx.id}/commit`));
    for (let nth = 1; nth <= calls; nth++) {
      for (const when of ['before', 'after'] as const) {
        const fresh = await preparedAcross(1);
        injectFault({ command: '*', when, nth });
        const crashed = await api('POST', `/v1/transactions/${fresh.tx.id}/commit`);
        expect(faultFired()).toBe(true);
        expect(crashed.status).toBe(500);
        await expectAllOrNothing(fresh.a.topic, fresh.b.topic, fresh.tx.id);
        const retried = await api('POST', `/v1/transactions/${fresh.tx.id}/commit`);
        expect(retried.status).toBe(200);
        expect(await expectAllOrNothing(fresh.a.topic, fresh.b.topic, fresh.tx.id)).toBe('committed');
        expect(retried.body.results.map((r: { offset: number }) => r.offset)).toEqual([0, 0]);
      }
    }
  });

  it('prepare and rollback with any one AWS call losing its reply: one transaction, prepared, then rolled back once', async () => {
    for (let nth = 1; ; nth++) {
      const t = await topicWithGroup(api, { partitions: 1 });
      injectFault({ command: '*', when: 'lostReply', nth });
      const reply = await api('POST', '/v1/transactions', { messages: [{ topic: t.topic, body: 1 }], checkBack: { url: 'http://127.0.0.1:9/x' }, timeoutSeconds: 3600 });
      const fired = faultFired();
      clearFault();
      expect(reply.status, `prepare, call ${nth}: ${JSON.stringify(reply.body)}`).toBe(201);
      expect(await storedTransactionsMentioning(t.topic)).toHaveLength(1);
      if (!fired) break;
    }
    for (let nth = 1; ; nth++) {
      const t = await topicWithGroup(api, { partitions: 1 });
      const tx = await prepare(api, { messages: [{ topic: t.topic, body: 1 }] });
      injectFault({ command: '*', when: 'lostReply', nth });
      const reply = await api('POST', `/v1/transactions/${tx.id}/rollback`);
      const fired = faultFired();
      clearFault();
      expect(reply.status, `rollback, call ${nth}`).toBe(200);
      expect(reply.body).toEqual({ id: tx.id, state: 'rolledBack' });
      expect((await api('POST', `/v1/transactions/${tx.id}/commit`)).status).toBe(409);
      if (!fired) break;
    }
  });

  it('rollback killed after any one AWS call: the retry answers rolled back, and nothing was committed', async () => {
    for (let nth = 1; nth <= 2; nth++) {
      const t = await topicWithGroup(api, { partitions: 1 });
      const tx = await prepare(api, { messages: [{ topic: t.topic, body: 1 }] });
      injectFault({ command: '*', when: 'after', nth });
      expect((await api('POST', `/v1/transactions/${tx.id}/rollback`)).status).toBe(500);
      expect(faultFired()).toBe(true);
      expect((await api('POST', `/v1/transactions/${tx.id}/rollback`)).body).toEqual({ id: tx.id, state: 'rolledBack' });
      expect(await readPartition(api, t.topic, 0)).toEqual([]);
    }
  });

  it('prepare killed after any one AWS call leaves no transaction that is never checked back', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    const body = { messages: [{ topic: t.topic, body: 1 }], checkBack: { url: 'http://127.0.0.1:9/x' }, timeoutSeconds: 3600 };
    expect((await api('POST', '/v1/transactions', body)).status).toBe(201);
    // The send of the timeout happens before the transaction is stored: a crash after the send leaves nothing stored.
    injectFault({ command: 'SendMessage', when: 'after' });
    const crashed = await api('POST', '/v1/transactions', body);
    expect(faultFired()).toBe(true);
    expect(crashed.status).toBe(500);
    const stored = await storedTransactionsMentioning(t.topic);
    expect(stored).toHaveLength(1); // only the first, successful prepare
  });
});

function isMonotonic(seen: number[]) {
  return seen.every((n, i) => i === 0 || n >= seen[i - 1]!);
}

describe('plain produce after commits it never heard of', () => {
  const api = useApi();

  it('a producer whose tail hint is many segments behind (commits wrote them) appends at once, without walking them', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    await produce(api, t.topic, [{ body: 'first' }]); // this process now holds a tail hint for the partition
    for (let i = 0; i < 30; i++) {
      const tx = await prepare(api, { messages: [{ topic: t.topic, body: `tx-${i}` }] });
      expect((await api('POST', `/v1/transactions/${tx.id}/commit`)).status).toBe(200);
    }
    // Commits do not move this process's hint (on AWS they run in other Lambdas): produce must find the tail.
    let puts = 0;
    observeDynamoCalls((command) => {
      if (command === 'PutItemCommand') puts++;
    });
    try {
      const [result] = await produce(api, t.topic, [{ body: 'after' }]);
      expect(result!.offset).toBe(31);
    } finally {
      observeDynamoCalls(undefined);
    }
    // One failed write at the stale hint, one at the winner's end at most, then the tail read: not 30.
    expect(puts).toBeLessThanOrEqual(3);
  });
});
