import { describe, expect, it } from 'vitest';
import { ack, produce, pullAll, topicWithGroup, useApi } from '../support/api.js';

/** JSONata filter expressions and transforms of consumer groups, through the HTTP API (API.md, "Expression filter and transform"). */
describe('expression filters and transforms', () => {
  const api = useApi();

  it('PUT with an expression that does not compile is 400 with jsonata\'s message and position, and stores nothing', async () => {
    const { groupPath } = await topicWithGroup(api);
    const bad = await api('PUT', groupPath, { startFrom: 'earliest', filter: { expression: 'body.total > (' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({
      code: 'ValidationError',
      message: 'filter.expression has a syntax error (S0203) at position 14: Expected ")" before end of expression.',
    });
    expect((await api('GET', groupPath)).status).toBe(404);

    const badTransform = await api('PUT', groupPath, { transform: '{"a": ' });
    expect(badTransform.status).toBe(400);
    expect(badTransform.body.error.message).toMatch(/^transform has a syntax error \(S\d+\) at position \d+: /);
    expect((await api('GET', groupPath)).status).toBe(404);

    const long = await api('PUT', groupPath, { filter: { expression: `"${'x'.repeat(4095)}"` } });
    expect(long.status).toBe(400);
    expect(long.body.error.message).toBe('filter.expression is 4097 bytes; at most 4096 (UTF-8) are allowed.');
    expect((await api('GET', groupPath)).status).toBe(404);
  });

  it('an existing group keeps its settings when an update has a bad expression; a good one is stored and shown', async () => {
    const { groupPath } = await topicWithGroup(api, { group: { filter: { expression: 'body.ok' }, transform: 'body.inner' } });
    const shown = await api('GET', groupPath);
    expect(shown.body).toMatchObject({ filter: { expression: 'body.ok' }, transform: 'body.inner' });
    expect((await api('PUT', groupPath, { transform: '$$$(' })).status).toBe(400);
    expect((await api('GET', groupPath)).body).toMatchObject({ filter: { expression: 'body.ok' }, transform: 'body.inner' });
    // A PUT without them removes them (PUT replaces the settings).
    const cleared = await api('PUT', groupPath, {});
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ filter: null, transform: null });
  });

  it('a filter expression delivers only matching messages; the rest count as acknowledged', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 2, group: { filter: { expression: 'body.total > 100' } } });
    await produce(api, topic, [
      { body: { total: 50 }, partition: 0 },
      { body: { total: 150 }, partition: 0 },
      { body: { total: 100 }, partition: 1 },
      { body: { total: 200 }, partition: 1 },
      { bodyBase64: 'AAEC', partition: 1 }, // no body: `body.total` has no result → not truthy
      { body: 'no total', partition: 0 },
    ]);
    const got = await pullAll(api, groupPath);
    expect(got.map((m) => m.body.total).sort()).toEqual([150, 200]);
    // Lag counts from the oldest unacknowledged offset (1 on each partition): the filtered-out offset
    // after it counts until the delivered one is acked.
    const during = await api('GET', groupPath);
    expect(during.body.partitions.map((p: { ackedThrough: number; inFlight: number }) => [p.ackedThrough, p.inFlight])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(await pullAll(api, groupPath)).toEqual([]);
    expect(await ack(api, groupPath, got.map((m) => m.receipt))).toEqual({ acked: 2, stale: [] });
    const after = await api('GET', groupPath);
    expect(after.body.lag).toBe(0);
    expect(after.body.partitions.map((p: { ackedThrough: number }) => p.ackedThrough)).toEqual([3, 3]);
    expect((await api('GET', `${groupPath}/dead-letters`)).body.messages).toEqual([]);
  });

  it('a long poll does not back off while it is only passing over filtered-out messages', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { filter: { expression: 'body.n = 290' } } });
    await produce(api, topic, Array.from({ length: 300 }, (_, n) => ({ body: { n } })));
    // max 10 reads 10 offsets per sweep: 30 sweeps to reach 290. Backing off between them (50 ms up to
    // 500 ms each) would take ~13 s, past this poll's 6 s.
    const started = Date.now();
    const got = await pullAll(api, groupPath, { max: 10, waitSeconds: 6 });
    expect(got.map((m) => m.body.n)).toEqual([290]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('tags and an expression together: both must pass', async () => {
    const { topic, groupPath } = await topicWithGroup(api, {
      group: { filter: { tags: { any: ['eu'] }, expression: '$contains(key, "vip")' } },
    });
    await produce(api, topic, [
      { body: 1, key: 'vip-1', tags: ['eu'] },
      { body: 2, key: 'vip-2', tags: ['us'] },
      { body: 3, key: 'plain', tags: ['eu'] },
      { body: 4, tags: ['eu'] },
    ]);
    expect((await pullAll(api, groupPath)).map((m) => m.body)).toEqual([1]);
  });

  it('a transform reshapes the delivered body and sees every documented field; redeliveries are transformed too', async () => {
    const transform = '{"order": body.id, "big": body.total > 100, "key": key, "eu": "eu" in tags, "h": headers.src, "at": [partition, offset], "when": producedAt}';
    const { topic, groupPath } = await topicWithGroup(api, { group: { transform } });
    const [result] = await produce(api, topic, [{ body: { id: 'o-1', total: 150, noise: 'x'.repeat(100) }, key: 'c-7', tags: ['eu'], headers: { src: 'web' } }]);
    const [m] = await pullAll(api, groupPath);
    expect(m!.body).toEqual({ order: 'o-1', big: true, key: 'c-7', eu: true, h: 'web', at: [0, result!.offset], when: m!.producedAt });
    // The rest of the message is as produced.
    expect(m).toMatchObject({ key: 'c-7', tags: ['eu'], headers: { src: 'web' }, deliveryCount: 1 });
    expect((await api('POST', `${groupPath}/nack`, { receipts: [m!.receipt], retryAfterSeconds: 0 })).body.nacked).toBe(1);
    const [again] = await pullAll(api, groupPath);
    expect(again).toMatchObject({ deliveryCount: 2, body: m!.body });
    // Browsing the partition still shows the stored message.
    const browsed = await api('GET', `/v1/topics/${topic}/partitions/0/messages`);
    expect(browsed.body.messages[0].body).toEqual({ id: 'o-1', total: 150, noise: 'x'.repeat(100) });
  });

  it('a transform without a result delivers null; a base64 message is delivered with the JSON result as body', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { transform: '$exists(bodyBase64) ? {"bytes": $length(bodyBase64)} : body.missing' } });
    await produce(api, topic, [{ body: { other: 1 } }, { bodyBase64: 'AAECAw==' }]);
    const got = await pullAll(api, groupPath);
    expect(got).toHaveLength(2);
    expect(got[0]!.body).toBeNull();
    expect(got[1]!.body).toEqual({ bytes: 8 });
    expect(got[1]).not.toHaveProperty('bodyBase64');
  });

  it('an expression that throws or loops sends exactly those messages to the dead letters, with the reason', async () => {
    const { topic, groupPath } = await topicWithGroup(api, {
      group: { filter: { expression: 'body.loop ? ($f := function($x){$f($x)}; $f(1)) : $number(body.n) > 0' } },
    });
    await produce(api, topic, [
      { body: { n: '1' }, id: 'ok-1' },
      { body: { n: 'abc' }, id: 'bad-1' },
      { body: { loop: true }, id: 'loop-1' },
      { body: { n: '-5' }, id: 'skip-1' },
      { body: { n: '2' }, id: 'ok-2' },
    ]);
    const started = Date.now();
    const got = await pullAll(api, groupPath);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(got.map((m) => m.id)).toEqual(['ok-1', 'ok-2']);
    const dead = await api('GET', `${groupPath}/dead-letters`);
    expect(dead.body.messages).toHaveLength(2);
    const byId = Object.fromEntries((dead.body.messages as Array<{ id: string }>).map((l) => [l.id, l]));
    expect(byId['bad-1']).toMatchObject({
      body: { n: 'abc' },
      deliveryCount: 0,
      reason: 'filter.expression failed: D3030 Unable to cast value to a number: "abc" (at position 58)',
    });
    expect(byId['loop-1']).toMatchObject({
      body: { loop: true },
      reason: expect.stringMatching(/^filter\.expression failed: D1012 Evaluation timeout after 50 milliseconds/),
    });
    await ack(api, groupPath, got.map((m) => m.receipt));
    expect((await api('GET', groupPath)).body.lag).toBe(0);
  });

  it('a transform that fails dead-letters the message; a letter redriven after the fix is delivered', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { transform: '{"v": $number(body)}' } });
    await produce(api, topic, [{ body: '7', id: 'num' }, { body: 'seven', id: 'word' }]);
    expect((await pullAll(api, groupPath)).map((m) => m.body)).toEqual([{ v: 7 }]);
    const [letter] = (await api('GET', `${groupPath}/dead-letters`)).body.messages;
    expect(letter).toMatchObject({ id: 'word', body: 'seven', reason: expect.stringMatching(/^transform failed: D3030 /) });
    expect((await api('PUT', groupPath, { transform: '{"v": body}' })).status).toBe(200);
    expect((await api('POST', `${groupPath}/dead-letters/redrive`)).body).toEqual({ redriven: 1, deferred: 0 });
    await new Promise((r) => setTimeout(r, 1100)); // settings reach warm handlers within 1 s
    const [back] = await pullAll(api, groupPath);
    expect(back).toMatchObject({ id: 'word', body: { v: 'seven' }, deliveryCount: 1 });
  });

  it('dead letters of maxDeliveries carry their reason too', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { group: { maxDeliveries: 1 } });
    await produce(api, topic, [{ body: 'once' }]);
    const [m] = await pullAll(api, groupPath);
    await api('POST', `${groupPath}/nack`, { receipts: [m!.receipt], retryAfterSeconds: 0 });
    expect(await pullAll(api, groupPath)).toEqual([]);
    const [letter] = (await api('GET', `${groupPath}/dead-letters`)).body.messages;
    expect(letter).toMatchObject({ body: 'once', deliveryCount: 1, reason: 'maxDeliveries (1) reached' });
  });

  it('transformed bodies count toward the reply limit: a pull stops short of 6 MB and the next pull continues', async () => {
    // Each delivered body becomes ~200 KB: 30 of them (6 MB) cannot go in one reply.
    const { topic, groupPath } = await topicWithGroup(api, { group: { transform: '{"n": body, "pad": $pad("", 200000, "x")}' } });
    await produce(api, topic, Array.from({ length: 30 }, (_, n) => ({ body: n })));
    const first = await api('POST', `${groupPath}/pull`, { max: 100 });
    expect(first.status).toBe(200);
    const firstCount = first.body.messages.length;
    expect(firstCount).toBeGreaterThan(0);
    expect(firstCount).toBeLessThan(30);
    const seen = (first.body.messages as Array<{ body: { n: number; pad: string } }>).map((m) => m.body.n);
    expect(first.body.messages[0].body.pad).toHaveLength(200000);
    for (let i = 0; i < 5 && seen.length < 30; i++) seen.push(...(await pullAll(api, groupPath)).map((m) => m.body.n));
    expect(seen).toEqual(Array.from({ length: 30 }, (_, n) => n));
  });

  it('broadcast groups: each consumer gets the matching messages, transformed; failures are skipped, not dead-lettered', async () => {
    const { topic, groupPath } = await topicWithGroup(api, {
      group: { mode: 'broadcast', filter: { expression: '$number(body.n) >= 2' }, transform: '{"n": $number(body.n)}' },
    });
    await produce(api, topic, [{ body: { n: '1' } }, { body: { n: '2' } }, { body: { n: 'x' } }, { body: { n: '3' } }]);
    for (const consumerId of ['c1', 'c2']) {
      const got = await pullAll(api, groupPath, { consumerId });
      expect(got.map((m) => m.body)).toEqual([{ n: 2 }, { n: 3 }]);
      expect(await pullAll(api, groupPath, { consumerId })).toEqual([]);
    }
    expect((await api('GET', `${groupPath}/dead-letters`)).body.messages).toEqual([]);
    const view = await api('GET', groupPath);
    expect(view.body.consumers).toEqual(
      expect.arrayContaining([
        { consumerId: 'c1', lag: 0 },
        { consumerId: 'c2', lag: 0 },
      ]),
    );
  });
});
