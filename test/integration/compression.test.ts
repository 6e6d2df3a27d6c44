/**
 * Segment compression (functions/adapters/segmentCodec.ts): compressible segments are stored as brotli
 * (`z`), string bodies side by side (`c`) when that is cheaper, small or incompressible ones as JSON (`m`), segments written before compression stay readable,
 * and a compressed append losing its reply is still recognised as its own.
 */
import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/adapters/dynamoClient.js';
import { clearFault, faultFired, injectFault } from '../../functions/adapters/faults.js';
import { serverMessageId } from '../../functions/domain/ids.js';
import { produce, pullAll, topicWithGroup, useApi } from '../support/api.js';


async function storedSegment(topicKey: string, partition: number, base: number) {
  return (await dynamo().send(new GetCommand({ TableName: process.env.LOG_TABLE!, Key: { pk: `${topicKey}#${partition}`, sk: base }, ConsistentRead: true }))).Item;
}

async function topicKey(topic: string) {
  const { dynamoStores } = await import('../../functions/adapters/stores.js');
  const { loadConfig } = await import('../../functions/config.js');
  const t = await dynamoStores(loadConfig()).catalog.getTopic(topic);
  return `${t!.name}@${t!.epoch}`;
}

const order = (i: number) => ({
  orderId: `ord-${100000 + i}`,
  customer: { id: `c-${i}`, name: 'Jane Doe', email: `jane${i}@example.com` },
  items: [{ sku: 'SKU-1234', qty: 2, price: 19.99 }],
  status: 'created',
  note: 'naïve café ☕',
});

async function progressItem(topic: string, group: string, partition: number) {
  const key = await topicKey(topic);
  return (
    await dynamo().send(
      new GetCommand({ TableName: process.env.GROUP_STATE_TABLE!, Key: { pk: `${key}/${group}`, sk: `p#${String(partition).padStart(3, '0')}` }, ConsistentRead: true }),
    )
  ).Item;
}

describe('group progress compression', () => {
  const api = useApi();

  it('a progress item with many leases is stored compressed (fz) and works as before; one with few stays JSON (f)', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 60 } });
    await produce(api, t.topic, Array.from({ length: 100 }, (_, i) => ({ body: i })));
    const many = await pullAll(api, t.groupPath, { max: 100 });
    const compressed = await progressItem(t.topic, t.group, 0);
    expect(compressed!.fz).toBeInstanceOf(Uint8Array);
    expect(compressed!.f).toBeUndefined();
    expect((compressed!.fz as Uint8Array).length).toBeLessThan(1024);
    // Leases read back from the compressed item: acks of them count, and nothing is redelivered.
    const acked = await api('POST', `${t.groupPath}/ack`, { receipts: many.slice(0, 98).map((m) => m.receipt) });
    expect(acked.body).toEqual({ acked: 98, stale: [] });
    const small = await progressItem(t.topic, t.group, 0);
    expect(typeof small!.f).toBe('string');
    expect(small!.fz).toBeUndefined();
    expect(await pullAll(api, t.groupPath, { max: 100, waitSeconds: 0 })).toEqual([]);
    expect((await api('POST', `${t.groupPath}/ack`, { receipts: many.slice(98).map((m) => m.receipt) })).body).toEqual({ acked: 2, stale: [] });
  });
});

describe('segment compression', () => {
  const api = useApi();
  afterEach(() => clearFault());

  it('a compressible batch is stored compressed and reads back exactly (pull, browse, lookup), base64 bodies included', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const messages = Array.from({ length: 100 }, (_, i) => (i % 10 === 9 ? { bodyBase64: Buffer.from(`binary ${i}`).toString('base64') } : { body: order(i), key: `c-${i}`, tags: ['order'] }));
    const results = await produce(api, t.topic, messages);
    const item = await storedSegment(await topicKey(t.topic), 0, 0);
    expect(item!.z).toBeInstanceOf(Uint8Array);
    expect(item!.m).toBeUndefined();
    const json = Buffer.byteLength(JSON.stringify(messages));
    expect((item!.z as Uint8Array).length).toBeLessThan(json / 5);
    const pulled = await pullAll(api, t.groupPath);
    expect(pulled).toHaveLength(100);
    // Unkeyed messages may be appended apart from keyed ones: compare each message at the offset produce answered.
    const sent = new Map(results.map((r, i) => [r.offset, messages[i]!]));
    for (const m of pulled) {
      const original = sent.get(m.offset)!;
      if ('body' in original) expect(m).toMatchObject({ body: original.body, key: original.key, tags: ['order'] });
      else expect(m.bodyBase64).toBe(original.bodyBase64);
    }
    const browsed = await api('GET', `/v1/topics/${t.topic}/partitions/0/messages?from=0&limit=100`);
    expect(browsed.body.messages.map((m: { body?: unknown; bodyBase64?: string }) => m.body ?? m.bodyBase64)).toEqual(pulled.map((m) => m.body ?? m.bodyBase64));
    expect((await api('GET', `/v1/topics/${t.topic}/messages/${results[42]!.id}`)).body.body).toEqual(order(42));
  });

  it('small and incompressible segments stay JSON (compression would not save a billed kilobyte)', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    await produce(api, t.topic, [{ body: 'tiny' }]);
    // ~1.5 KB of base64 random bytes: brotli gets it to ~1.1 KB, both two billed kilobytes.
    await produce(api, t.topic, [{ bodyBase64: randomBytes(1100).toString('base64') }]);
    const key = await topicKey(t.topic);
    expect((await storedSegment(key, 0, 0))!.m).toBe(JSON.stringify([{ b: 'tiny' }]));
    const random = await storedSegment(key, 0, 1);
    expect(typeof random!.m).toBe('string');
    expect(random!.z).toBeUndefined();
  });

  it('segments written before compression (JSON in m) stay readable next to compressed ones', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const key = await topicKey(t.topic);
    const producedAt = Date.now();
    // Exactly the item the previous version wrote.
    await dynamo().send(
      new PutCommand({
        TableName: process.env.LOG_TABLE!,
        Item: { pk: `${key}#0`, sk: 0, n: 2, ts: producedAt, m: JSON.stringify([{ b: { old: 1 } }, { b: { old: 2 }, k: 'k' }]), w: 'old' },
      }),
    );
    await produce(api, t.topic, Array.from({ length: 50 }, (_, i) => ({ body: order(i) })));
    expect((await storedSegment(key, 0, 2))!.z).toBeDefined();
    const pulled = await pullAll(api, t.groupPath);
    expect(pulled.slice(0, 2).map((m) => m.body)).toEqual([{ old: 1 }, { old: 2 }]);
    expect(pulled).toHaveLength(52);
    expect((await api('GET', `/v1/topics/${t.topic}/messages/${serverMessageId(producedAt, 0, 1)}`)).body).toMatchObject({ body: { old: 2 }, key: 'k' });
  });

  it('string bodies of random hex take the columnar layout (c): 10 KB for 100, read back exactly; a lost reply still sets one offset', async () => {
    const t = await topicWithGroup(api, { partitions: 1, group: {} });
    const messages = Array.from({ length: 100 }, (_, i) => ({ body: randomBytes(100).toString('hex'), ...(i % 25 === 0 ? { headers: { n: `${i}` }, tags: ['t'] } : {}) }));
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const results = await produce(api, t.topic, messages);
    expect(faultFired()).toBe(true);
    const item = await storedSegment(await topicKey(t.topic), 0, 0);
    expect(item!.c).toBeInstanceOf(Uint8Array);
    expect(item!.z).toBeUndefined();
    expect((item!.c as Uint8Array).length).toBeLessThan(10 * 1024);
    const byOffset = new Map(results.map((r, i) => [r.offset, messages[i]!]));
    expect(byOffset.size).toBe(100);
    const pulled = await pullAll(api, t.groupPath);
    expect(pulled).toHaveLength(100);
    for (const m of pulled) {
      const sent = byOffset.get(m.offset)!;
      expect(m).toMatchObject({ body: sent.body, tags: sent.tags ?? [], headers: sent.headers ?? {} });
    }
    expect((await api('GET', `/v1/topics/${t.topic}/messages/${results[7]!.id}`)).body.body).toBe(messages[7]!.body);
  });

  it('a compressed append whose reply is lost is recognised as its own on the retry: one offset set', async () => {
    const t = await topicWithGroup(api, { partitions: 1 });
    injectFault({ command: 'PutItem', when: 'lostReply' });
    const results = await produce(api, t.topic, Array.from({ length: 60 }, (_, i) => ({ body: order(i) })));
    expect(faultFired()).toBe(true);
    expect(results.map((r) => r.offset)).toEqual([...Array(60).keys()]);
    const browsed = await api('GET', `/v1/topics/${t.topic}/partitions/0/messages?from=0&limit=100`);
    expect(browsed.body.messages).toHaveLength(60);
    expect((await storedSegment(await topicKey(t.topic), 0, 0))!.z).toBeDefined();
  });
});
