import { describe, expect, it } from 'vitest';
import { produce, topicWithGroup, useApi } from '../support/api.js';

describe('produce, browse and lookup', () => {
  const api = useApi();

  it('returns one result per message in request order, with gap-free offsets per partition', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 3 });
    const messages = Array.from({ length: 30 }, (_, i) => ({ body: { i }, partition: i % 3 }));
    const results = await produce(api, topic, messages);
    expect(results).toHaveLength(30);
    results.forEach((r, i) => {
      expect(r.partition).toBe(i % 3);
      expect(r.offset).toBe(Math.floor(i / 3));
    });
    const page = await api('GET', `${base}/partitions/1/messages?from=0&limit=100`);
    expect(page.body.messages.map((m: { body: { i: number } }) => m.body.i)).toEqual(
      Array.from({ length: 10 }, (_, k) => k * 3 + 1),
    );
    expect(page.body.next).toBe(10);
  });

  it('routes by key so that one key keeps its order on one partition', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 8 });
    const results = await produce(
      api,
      topic,
      Array.from({ length: 40 }, (_, i) => ({ body: i, key: `customer-${i % 4}` })),
    );
    for (let k = 0; k < 4; k++) {
      const mine = results.filter((_, i) => i % 4 === k);
      expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
      const offsets = mine.map((r) => r.offset);
      expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
    }
  });

  it('unkeyed messages of one request share one segment', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 4 });
    const results = await produce(api, topic, Array.from({ length: 10 }, (_, i) => ({ body: i })));
    expect(new Set(results.map((r) => r.partition)).size).toBe(1);
    expect(results.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('de-duplicates producer ids within a request and across requests', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 2 });
    const first = await produce(api, topic, [
      { body: 'a', id: 'order-1', partition: 1 },
      { body: 'b', id: 'order-2', partition: 1 },
      { body: 'a again', id: 'order-1', partition: 1 },
    ]);
    expect(first[0]).toEqual({ id: 'order-1', partition: 1, offset: 0 });
    expect(first[1]).toEqual({ id: 'order-2', partition: 1, offset: 1 });
    expect(first[2]).toEqual({ id: 'order-1', partition: 1, offset: 0, duplicate: true });
    const retry = await produce(api, topic, [
      { body: 'b', id: 'order-2', partition: 1 },
      { body: 'c', id: 'order-3', partition: 1 },
    ]);
    expect(retry[0]).toEqual({ id: 'order-2', partition: 1, offset: 1, duplicate: true });
    expect(retry[1]).toEqual({ id: 'order-3', partition: 1, offset: 2 });
    const info = await api('GET', `/v1/topics/${topic}`);
    expect(info.body.partitionsInfo[1].endOffset).toBe(3);
  });

  it('keeps bodies, keys, tags, headers and binary bodies as sent, and finds messages by id', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 2 });
    const [json, binary, own] = await produce(api, topic, [
      { body: { nested: [1, 'two', null] }, key: 'k', tags: ['a', 'b'], headers: { trace: 'x-1' } },
      { bodyBase64: Buffer.from([0, 1, 2, 255]).toString('base64') },
      { body: 'mine', id: 'my-id-1' },
    ]);
    const a = await api('GET', `/v1/topics/${topic}/messages/${json!.id}`);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      id: json!.id,
      partition: json!.partition,
      offset: json!.offset,
      body: { nested: [1, 'two', null] },
      key: 'k',
      tags: ['a', 'b'],
      headers: { trace: 'x-1' },
    });
    const b = await api('GET', `/v1/topics/${topic}/messages/${binary!.id}`);
    expect(Buffer.from(b.body.bodyBase64, 'base64')).toEqual(Buffer.from([0, 1, 2, 255]));
    const c = await api('GET', `/v1/topics/${topic}/messages/${own!.id}`);
    expect(c.body).toMatchObject({ id: 'my-id-1', body: 'mine' });
  });

  it('splits a large batch into several segments without breaking order or offsets', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 1 });
    const big = 'x'.repeat(100 * 1024);
    const results = await produce(api, topic, Array.from({ length: 8 }, (_, i) => ({ body: `${i}:${big}` })));
    expect(results.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const page = await api('GET', `${base}/partitions/0/messages?from=3&limit=2`);
    expect(page.body.messages.map((m: { body: string }) => m.body.split(':')[0])).toEqual(['3', '4']);
    expect(page.body.next).toBe(5);
  });

  it('accepts 500 messages in one request', async () => {
    const { topic } = await topicWithGroup(api, { partitions: 1 });
    const results = await produce(api, topic, Array.from({ length: 500 }, (_, i) => ({ body: i, id: `m-${i}` })));
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });
});
