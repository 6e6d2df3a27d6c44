import { afterEach, describe, expect, it, vi } from 'vitest';
import { browsePartition } from '../../../functions/domain/log/browse.js';
import { serverMessageId } from '../../../functions/domain/ids.js';
import { LIMITS } from '../../../functions/domain/limits.js';
import type { MessageInput } from '../../../functions/domain/messages.js';
import { partitionForKey } from '../../../functions/domain/partitioner.js';
import { topicKeyOf } from '../../../functions/domain/ports.js';
import { produce } from '../../../functions/domain/produce.js';
import { createTopic } from '../../../functions/domain/topics.js';
import { decisionOf, httpCheckAnswer, lambdaCheckAnswer } from '../../../functions/domain/transactions/answer.js';
import { checkPayload, onTransactionTimeout, runCheck } from '../../../functions/domain/transactions/checkBack.js';
import { commitTransaction, requireTransaction, rollbackTransaction } from '../../../functions/domain/transactions/decide.js';
import { TX } from '../../../functions/domain/transactions/limits.js';
import type { PreparedMessage, Transaction } from '../../../functions/domain/transactions/model.js';
import { prepareTransaction, TRANSACTION_ID, type PrepareInput } from '../../../functions/domain/transactions/prepare.js';
import { segmentPlan } from '../../../functions/domain/transactions/segments.js';
import { memoryStores, type MemoryStores } from '../../memory/stores.js';
import { memoryTransactionPorts, type MemoryTransactionPorts } from '../../memory/transactions.js';
import { rejection, T0, unique, useClock } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => {
  vi.restoreAllMocks();
});

interface TxWorld {
  readonly stores: MemoryStores;
  readonly ports: MemoryTransactionPorts;
  readonly name: string;
  readonly other: string;
  prepare(input: Partial<PrepareInput> & { messages: PrepareInput['messages'] }): Promise<string>;
  commit(id: string, deadline?: number): Promise<Transaction>;
  stored(id: string): Transaction;
  /** The messages of a partition of a topic, in log order. */
  log(topic: string, partition?: number): Promise<Array<{ offset: number; body?: unknown; id: string }>>;
}

/** Two topics (`name` with `partitions`, `other` with 2) over fresh in-memory stores and transaction ports. */
async function txWorld(partitions = 1): Promise<TxWorld> {
  const stores = memoryStores();
  const ports = memoryTransactionPorts(stores);
  const name = unique('topic');
  const other = unique('other');
  await createTopic(stores, name, { partitions, retentionHours: 72 });
  await createTopic(stores, other, { partitions: 2, retentionHours: 72 });
  return {
    stores,
    ports,
    name,
    other,
    prepare: async (input) => (await prepareTransaction(stores, ports, input)).id,
    commit: (id, deadline = Date.now() + 60_000) => commitTransaction(stores, ports.transactions, id, 'producer', deadline),
    stored: (id) => ports.transactions.items.get(id)!,
    log: async (topic, partition = 0) => (await browsePartition(stores, topic, partition, undefined, 1000)).messages,
  };
}

/** A JSON string body that makes its record exactly `bytes` bytes encoded ({"b":"…"} is 8 bytes around it). */
const sized = (bytes: number): MessageInput => ({ body: 'x'.repeat(bytes - 8) });

// ---------------------------------------------------------------------------------------------- prepare

describe('prepareTransaction', () => {
  it('stores a prepared transaction with the defaults, queues its timeout first, and shows nothing in the log', async () => {
    const w = await txWorld();
    const prepared = await prepareTransaction(w.stores, w.ports, { messages: [{ topic: w.name, body: 1 }] });
    expect(prepared).toEqual({ id: prepared.id, state: 'prepared', expiresAt: T0 + 60_000 });
    expect(prepared.id).toMatch(TRANSACTION_ID);
    expect(w.ports.calls).toEqual(['timeouts.send', 'transactions.create']);
    expect(w.ports.timeouts.sent).toEqual([{ id: prepared.id, delaySeconds: 60 }]);
    const tx = w.stored(prepared.id);
    expect(tx).toEqual({
      id: prepared.id,
      state: 'prepared',
      messages: [{ topic: w.name, topicKey: topicKeyOf((await w.stores.catalog.getTopic(w.name))!), partition: 0, record: { b: 1 } }],
      createdAt: T0,
      expiresAt: T0 + 60_000,
      maxChecks: 15,
      checkIntervalSeconds: 10,
      checks: [],
    });
    expect(await w.log(w.name)).toEqual([]);
  });

  it('takes its settings: timeout (the queue delay capped at the queue maximum), check-back, checks and interval', async () => {
    const w = await txWorld();
    const now = T0 + 5000;
    const prepared = await prepareTransaction(
      w.stores,
      w.ports,
      { messages: [{ topic: w.name, body: 1 }], timeoutSeconds: 2000, checkBack: { functionArn: 'arn:fn' }, maxChecks: 3, checkIntervalSeconds: 7 },
      now,
    );
    expect(prepared).toEqual({ id: prepared.id, state: 'prepared', expiresAt: now + 2_000_000 });
    expect(w.ports.timeouts.sent).toEqual([{ id: prepared.id, delaySeconds: 900 }]);
    expect(w.stored(prepared.id)).toMatchObject({ createdAt: now, expiresAt: now + 2_000_000, checkBack: { functionArn: 'arn:fn' }, maxChecks: 3, checkIntervalSeconds: 7 });
    // Lambda check-backs are not signed: no secret is made or handed out.
    expect(w.ports.transactions.secretsMade).toBe(0);
    const short = await prepareTransaction(w.stores, w.ports, { messages: [{ topic: w.name, body: 1 }], timeoutSeconds: 900 });
    expect(w.ports.timeouts.sent[1]).toEqual({ id: short.id, delaySeconds: 900 });
    const shorter = await prepareTransaction(w.stores, w.ports, { messages: [{ topic: w.name, body: 1 }], timeoutSeconds: 5 });
    expect(w.ports.timeouts.sent[2]).toEqual({ id: shorter.id, delaySeconds: 5 });
  });

  it('hands out the deployment signing secret for URL check-backs, made once', async () => {
    const w = await txWorld();
    const a = await prepareTransaction(w.stores, w.ports, { messages: [{ topic: w.name, body: 1 }], checkBack: { url: 'https://x.test/check' } });
    const b = await prepareTransaction(w.stores, w.ports, { messages: [{ topic: w.name, body: 2 }], checkBack: { url: 'https://x.test/check' } });
    expect(a.signingSecret).toMatch(/^whsec_/);
    expect(b.signingSecret).toBe(a.signingSecret);
    expect(w.ports.transactions.secretsMade).toBe(1);
    expect(w.stored(a.id).checkBack).toEqual({ url: 'https://x.test/check' });
  });

  it('stores nothing when the timeout cannot be queued', async () => {
    const w = await txWorld();
    w.ports.timeouts.failing = new Error('queue down');
    expect((await rejection(prepareTransaction(w.stores, w.ports, { messages: [{ topic: w.name, body: 1 }] }))).message).toBe('queue down');
    expect(w.ports.transactions.items.size).toBe(0);
  });

  it('places messages: explicit partitions, keys by hash, the unkeyed ones of a topic together', async () => {
    const w = await txWorld(8);
    const id = await w.prepare({
      messages: [
        { topic: w.name, body: 'a' },
        { topic: w.name, body: 'b', key: 'k1' },
        { topic: w.name, body: 'c' },
        { topic: w.name, body: 'd', partition: 7 },
        { topic: w.name, body: 'e' },
        { topic: w.other, body: 'f', key: 'k2' },
      ],
    });
    const placed = w.stored(id).messages.map((m) => m.partition);
    expect(placed[1]).toBe(partitionForKey('k1', 8));
    expect(placed[3]).toBe(7);
    expect(placed[2]).toBe(placed[0]);
    expect(placed[4]).toBe(placed[0]);
    expect(placed[5]).toBe(partitionForKey('k2', 2));
    expect(w.stored(id).messages.map((m) => m.topic)).toEqual([w.name, w.name, w.name, w.name, w.name, w.other]);
    expect(w.stored(id).messages[1]!.record).toEqual({ b: 'b', k: 'k1' });
  });

  it('refuses unknown topics, delays, partitions out of range and repeated ids, storing nothing', async () => {
    const w = await txWorld(2);
    const refused = async (messages: PrepareInput['messages']) => rejection(w.prepare({ messages }));
    expect(await refused([{ topic: w.name, body: 1 }, { topic: 'nope', body: 1 }])).toMatchObject({ code: 'TopicNotFound' });
    const notSupported = `messages[1]: delaySeconds, deliverAt and repeat are not supported in transactions.`;
    expect(await refused([{ topic: w.name, body: 1 }, { topic: w.name, body: 1, delaySeconds: 5 }])).toMatchObject({ code: 'NotSupported', message: notSupported });
    expect(await refused([{ topic: w.name, body: 1 }, { topic: w.name, body: 1, deliverAt: '2030-01-02T00:00:00Z' }])).toMatchObject({ code: 'NotSupported', message: notSupported });
    expect(
      await refused([{ topic: w.name, body: 1 }, { topic: w.name, body: 1, repeat: { everySeconds: 60 } } as unknown as PrepareInput['messages'][number]]),
    ).toMatchObject({ code: 'NotSupported', message: notSupported });
    expect(await refused([{ topic: w.name, body: 1, partition: 2 }])).toMatchObject({
      code: 'ValidationError',
      message: `messages[0].partition must be below topic '${w.name}'s 2 partitions.`,
    });
    expect(await refused([{ topic: w.name, id: 'a' }, { topic: w.name, id: 'b' }, { topic: w.name, id: 'a' }])).toMatchObject({
      code: 'ValidationError',
      message: 'messages[2].id repeats messages[0].id in the same topic.',
    });
    expect(w.ports.transactions.items.size).toBe(0);
    expect(w.ports.timeouts.sent).toEqual([]);
    // The highest partition is fine, as is one id in two topics.
    const id = await w.prepare({ messages: [{ topic: w.name, id: 'a', partition: 1 }, { topic: w.other, id: 'a' }] });
    expect(w.stored(id).messages.map((m) => [m.partition, m.record.i])).toEqual([
      [1, 'a'],
      [expect.any(Number), 'a'],
    ]);
  });

  it('refuses a message over the message limit, and a transaction over the prepared bytes (each at its edge)', async () => {
    const w = await txWorld();
    await w.prepare({ messages: [{ topic: w.name, ...sized(LIMITS.maxMessageBytes) }] });
    expect(await rejection(w.prepare({ messages: [{ topic: w.name, body: 1 }, { topic: w.name, ...sized(LIMITS.maxMessageBytes + 1) }] }))).toMatchObject({
      code: 'PayloadTooLarge',
      message: `messages[1] is ${LIMITS.maxMessageBytes + 1} bytes encoded; the limit is ${LIMITS.maxMessageBytes}.`,
    });
    const half = TX.maxPreparedBytes / 2;
    await w.prepare({ messages: [{ topic: w.name, ...sized(half) }, { topic: w.name, ...sized(half) }] });
    expect(await rejection(w.prepare({ messages: [{ topic: w.name, ...sized(half) }, { topic: w.name, ...sized(half + 1) }] }))).toMatchObject({
      code: 'TransactionTooLarge',
      message: `The transaction's messages are ${TX.maxPreparedBytes + 1} bytes encoded; a transaction holds ${TX.maxPreparedBytes} (its prepared messages live in one DynamoDB item, 400 KB at most).`,
    });
    expect(w.ports.transactions.items.size).toBe(2);
  });

  it('refuses a transaction whose commit takes more than 100 writes: one per segment, one per producer id, one for itself', async () => {
    const w = await txWorld(50);
    const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ topic: w.name, id: `m${i}`, partition: 0 }));
    // 1 + 1 segment + 98 ids = 100.
    await w.prepare({ messages: ids(98) });
    const tooMany = await rejection(w.prepare({ messages: ids(99) }));
    expect(tooMany).toMatchObject({
      code: 'TransactionTooLarge',
      message:
        'Committing this transaction takes 101 writes (one per segment, one per producer id, one for the transaction); ' +
        'a DynamoDB transaction takes 100. Use fewer partitions or fewer producer ids.',
    });
    // 1 + 50 segments + 49 ids = 100; messages without ids take no write of their own.
    const spread = (withIds: number) =>
      Array.from({ length: 50 }, (_, p) => ({ topic: w.name, partition: p, ...(p < withIds ? { id: `s${p}` } : { body: p }) }));
    await w.prepare({ messages: [...spread(49), { topic: w.name, partition: 0, body: 'extra' }] });
    expect((await rejection(w.prepare({ messages: spread(50) }))).message).toMatch(/^Committing this transaction takes 101 writes/);
  });
});

// ---------------------------------------------------------------------------------------------- segments

describe('segmentPlan', () => {
  const message = (topicKey: string, partition: number, bytes: number): PreparedMessage => ({
    topic: topicKey,
    topicKey,
    partition,
    record: { b: 'x'.repeat(bytes - 8) },
  });

  it('groups by partition in prepare order, and starts a segment only when one would pass the segment size', () => {
    // Each message counts its encoded size + 1: two of half the segment fit exactly.
    const half = TX.maxSegmentBytes / 2 - 1;
    expect(segmentPlan([message('t', 0, half), message('u', 0, 10), message('t', 0, half), message('t', 1, 10)])).toEqual([
      { topicKey: 't', partition: 0, indexes: [0, 2] },
      { topicKey: 'u', partition: 0, indexes: [1] },
      { topicKey: 't', partition: 1, indexes: [3] },
    ]);
    expect(segmentPlan([message('t', 0, half), message('t', 0, half + 1), message('t', 0, 10)])).toEqual([
      { topicKey: 't', partition: 0, indexes: [0] },
      { topicKey: 't', partition: 0, indexes: [1, 2] },
    ]);
  });

  it('puts a message bigger than a segment alone in its own, and leaves out skipped messages', () => {
    expect(segmentPlan([message('t', 0, TX.maxSegmentBytes + 10)])).toEqual([{ topicKey: 't', partition: 0, indexes: [0] }]);
    expect(segmentPlan([message('t', 0, 10), message('t', 1, 10), message('t', 0, 10)], new Set([0, 1]))).toEqual([
      { topicKey: 't', partition: 0, indexes: [2] },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------- commit / rollback

describe('commit and rollback', () => {
  it('commits every message at the partitions’ tails in one step, with producer ids that de-duplicate later produces', async () => {
    const w = await txWorld(2);
    await produce(w.stores, w.name, [{ body: 'before', partition: 0 }]);
    const id = await w.prepare({
      messages: [
        { topic: w.name, body: 'a', id: 'p1', partition: 0 },
        { topic: w.name, body: 'b', partition: 0 },
        { topic: w.other, body: 'c', partition: 1 },
        { topic: w.name, body: 'd', partition: 1 },
      ],
    });
    clock.advance(1500);
    const tx = await w.commit(id);
    const at = T0 + 1500;
    expect(tx).toEqual({
      ...w.stored(id),
      state: 'committed',
      messages: [],
      decidedBy: 'producer',
      decidedAt: at,
      results: [
        { topic: w.name, id: 'p1', partition: 0, offset: 1 },
        { topic: w.name, id: serverMessageId(at, 0, 2), partition: 0, offset: 2 },
        { topic: w.other, id: serverMessageId(at, 1, 0), partition: 1, offset: 0 },
        { topic: w.name, id: serverMessageId(at, 1, 0), partition: 1, offset: 0 },
      ],
    });
    expect((await w.log(w.name, 0)).map((m) => [m.offset, m.body])).toEqual([
      [0, 'before'],
      [1, 'a'],
      [2, 'b'],
    ]);
    expect((await w.log(w.name, 1)).map((m) => [m.offset, m.body, m.id])).toEqual([[0, 'd', serverMessageId(at, 1, 0)]]);
    expect((await w.log(w.other, 1)).map((m) => m.body)).toEqual(['c']);
    const topicKey = topicKeyOf((await w.stores.catalog.getTopic(w.name))!);
    expect(w.stores.dedup.ids.get(`${topicKey}#p1`)).toEqual({ id: 'p1', partition: 0, offset: 1, exp: Math.floor(at / 1000) + 72 * 3600 });
    expect(await produce(w.stores, w.name, [{ id: 'p1', body: 'again' }])).toEqual([{ id: 'p1', partition: 0, offset: 1, duplicate: true }]);
  });

  it('remembers its producer ids as produce does: for the retention when that is longer than the dedup window', async () => {
    // Both topics keep messages 72 h; a produce 48 h after the commit is still a duplicate (README: "at least 24 h, or the retention").
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, id: 'late', body: 1 }] });
    await w.commit(id);
    const topicKey = topicKeyOf((await w.stores.catalog.getTopic(w.name))!);
    expect(w.stores.dedup.ids.get(`${topicKey}#late`)!.exp).toBe(Math.floor(T0 / 1000) + 72 * 3600);
    clock.advance(48 * 3600 * 1000);
    expect(await produce(w.stores, w.name, [{ id: 'late', body: 2 }])).toEqual([{ id: 'late', partition: 0, offset: 0, duplicate: true }]);
    // A topic kept 1 h: the dedup window (24 h).
    const short = unique('short');
    await createTopic(w.stores, short, { partitions: 1, retentionHours: 1 });
    const other = await w.prepare({ messages: [{ topic: short, id: 's', body: 1 }] });
    await w.commit(other);
    const shortKey = topicKeyOf((await w.stores.catalog.getTopic(short))!);
    expect(w.stores.dedup.ids.get(`${shortKey}#s`)!.exp).toBe(Math.floor(Date.now() / 1000) + LIMITS.dedupWindowSeconds);
  });

  it('is idempotent: a second commit answers the stored results and writes nothing', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    const first = await w.commit(id);
    clock.advance(1000);
    const second = await commitTransaction(w.stores, w.ports.transactions, id, 'checkBack', Date.now() + 1000);
    expect(second).toEqual(first);
    expect(second.decidedBy).toBe('producer');
    expect(await w.log(w.name)).toHaveLength(1);
    expect(w.ports.calls.filter((c) => c === 'transactions.commit')).toHaveLength(1);
  });

  it('answers TransactionNotFound for an unknown id, to commit, rollback and requireTransaction', async () => {
    const w = await txWorld();
    const message = "Transaction 'txnope' does not exist (or its record expired).";
    expect(await rejection(w.commit('txnope'))).toMatchObject({ code: 'TransactionNotFound', message });
    expect(await rejection(rollbackTransaction(w.ports.transactions, 'txnope', 'producer'))).toMatchObject({ code: 'TransactionNotFound', message });
    expect(await rejection(requireTransaction(w.ports.transactions, 'txnope'))).toMatchObject({ code: 'TransactionNotFound', message });
  });

  it('rolls back once (idempotent), then refuses to commit; a committed one refuses to roll back', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    clock.advance(700);
    const rolled = await rollbackTransaction(w.ports.transactions, id, 'producer');
    expect(rolled).toMatchObject({ id, state: 'rolledBack', decidedBy: 'producer', decidedAt: T0 + 700, messages: [] });
    clock.advance(700);
    expect(await rollbackTransaction(w.ports.transactions, id, 'checkBack')).toEqual(rolled);
    expect(await rejection(w.commit(id))).toMatchObject({ code: 'Conflict', message: `Transaction '${id}' is rolled back already.` });
    expect(await w.log(w.name)).toEqual([]);

    const other = await w.prepare({ messages: [{ topic: w.name, body: 2 }] });
    await w.commit(other);
    expect(await rejection(rollbackTransaction(w.ports.transactions, other, 'producer'))).toMatchObject({
      code: 'Conflict',
      message: `Transaction '${other}' is committed already.`,
    });
    expect(w.stored(other).state).toBe('committed');
  });

  for (const [what, gone] of [
    ['deleted', (s: MemoryStores, name: string) => s.catalog.deleteTopic(name)],
    ['being deleted', async (s: MemoryStores, name: string) => s.catalog.markTopicDeleting((await s.catalog.getTopic(name))!, Date.now())],
    [
      're-created (another incarnation)',
      async (s: MemoryStores, name: string) => {
        await s.catalog.deleteTopic(name);
        clock.advance(1000);
        await createTopic(s, name, { partitions: 2, retentionHours: 72 });
      },
    ],
  ] as const) {
    it(`rolls back (decidedBy topicDeleted) and answers Conflict when a topic was ${what} since prepare`, async () => {
      const w = await txWorld();
      const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }, { topic: w.other, body: 2 }] });
      await gone(w.stores, w.other);
      expect(await rejection(w.commit(id))).toMatchObject({
        code: 'Conflict',
        message: `Topic '${w.other}' was deleted after transaction '${id}' was prepared: the transaction is rolled back.`,
      });
      expect(w.stored(id)).toMatchObject({ state: 'rolledBack', decidedBy: 'topicDeleted' });
      expect(await w.log(w.name)).toEqual([]);
    });
  }

  it('answers the commit when a topic is deleted after another process committed it', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    // This commit reads the transaction prepared; meanwhile another commits it and the topic is deleted.
    w.ports.transactions.afterGet = async () => {
      w.ports.transactions.afterGet = undefined;
      await commitTransaction(w.stores, w.ports.transactions, id, 'checkBack', Date.now() + 1000);
      await w.stores.catalog.deleteTopic(w.name);
    };
    const tx = await w.commit(id);
    expect(tx).toMatchObject({ state: 'committed', decidedBy: 'checkBack' });
    expect(tx.results).toHaveLength(1);
  });

  it('commits a partition too big for one segment as consecutive segments', async () => {
    const w = await txWorld();
    await produce(w.stores, w.name, [{ body: 'before', partition: 0 }]);
    // Two messages of 170 KB: within the prepared bytes, but not one segment (300 KB).
    const big = 170 * 1024;
    const id = await w.prepare({ messages: [{ topic: w.name, ...sized(big) }, { topic: w.name, ...sized(big) }] });
    const tx = await w.commit(id);
    expect(tx.results!.map((r) => r.offset)).toEqual([1, 2]);
    const topicKey = topicKeyOf((await w.stores.catalog.getTopic(w.name))!);
    expect(w.stores.log.partitions.get(`${topicKey}#0`)!.map((s) => [s.base, s.count])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
  });

  it('passes on a commit failure that is not a cancellation', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    w.ports.transactions.beforeCommit = () => {
      throw new Error('ProvisionedThroughputExceeded');
    };
    expect((await rejection(w.commit(id))).message).toBe('ProvisionedThroughputExceeded');
    expect(w.stored(id).state).toBe('prepared');
  });

  it('re-reads the tails after an offset race and commits after the winner', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 'tx1' }, { topic: w.name, body: 'tx2' }] });
    w.ports.transactions.beforeCommit = async (attempt) => {
      if (attempt < 3) await produce(w.stores, w.name, [{ body: `racer${attempt}`, partition: 0 }]);
    };
    const tx = await w.commit(id);
    expect(tx.results!.map((r) => r.offset)).toEqual([3, 4]);
    expect((await w.log(w.name)).map((m) => m.body)).toEqual(['racer0', 'racer1', 'racer2', 'tx1', 'tx2']);
    expect(w.ports.calls.filter((c) => c === 'transactions.commit')).toHaveLength(4);
  });

  it('answers producer ids appended meanwhile as duplicates with their original place, and commits the rest', async () => {
    const w = await txWorld(2);
    const id = await w.prepare({
      messages: [
        { topic: w.name, body: 'a', id: 'dup', partition: 0 },
        { topic: w.name, body: 'b', id: 'fresh', partition: 0 },
        { topic: w.other, body: 'c', id: 'dup', partition: 0 },
        { topic: w.name, body: 'd', partition: 0 },
      ],
    });
    // The same id lands outside the transaction, on another partition (no offset of the commit is taken).
    w.ports.transactions.beforeCommit = async (attempt) => {
      if (attempt === 0) await produce(w.stores, w.name, [{ id: 'dup', body: 'outside', partition: 1 }]);
    };
    const tx = await w.commit(id);
    expect(tx.results).toEqual([
      { topic: w.name, id: 'dup', partition: 1, offset: 0, duplicate: true },
      { topic: w.name, id: 'fresh', partition: 0, offset: 0 },
      { topic: w.other, id: 'dup', partition: 0, offset: 0 },
      { topic: w.name, id: expect.any(String), partition: 0, offset: 1 },
    ]);
    expect((await w.log(w.name, 0)).map((m) => m.body)).toEqual(['b', 'd']);
    expect((await w.log(w.name, 1)).map((m) => m.body)).toEqual(['outside']);
    expect((await w.log(w.other, 0)).map((m) => m.body)).toEqual(['c']);
  });

  it('ignores producer ids that expired: the commit takes them over', async () => {
    const w = await txWorld();
    await produce(w.stores, w.name, [{ id: 'old', body: 'old', partition: 0 }]);
    // Produce remembers ids for the retention when it is longer than the dedup window (72 h here).
    clock.advance((72 * 3600 + 2) * 1000);
    const id = await w.prepare({ messages: [{ topic: w.name, id: 'old', body: 'new' }] });
    const tx = await w.commit(id);
    expect(tx.results).toEqual([{ topic: w.name, id: 'old', partition: 0, offset: 1 }]);
  });

  it('answers the transaction as another process left it when it was decided during the commit', async () => {
    const w = await txWorld();
    const rolled = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    w.ports.transactions.beforeCommit = async () => {
      w.ports.transactions.beforeCommit = undefined;
      await rollbackTransaction(w.ports.transactions, rolled, 'producer');
    };
    expect(await rejection(w.commit(rolled))).toMatchObject({ code: 'Conflict', message: `Transaction '${rolled}' is rolled back already.` });

    const committed = await w.prepare({ messages: [{ topic: w.name, body: 2 }] });
    w.ports.transactions.beforeCommit = async () => {
      w.ports.transactions.beforeCommit = undefined;
      await commitTransaction(w.stores, w.ports.transactions, committed, 'checkBack', Date.now() + 1000);
    };
    expect(await w.commit(committed)).toMatchObject({ state: 'committed', decidedBy: 'checkBack' });
    expect((await w.log(w.name)).map((m) => m.body)).toEqual([2]);
  });

  it('gives up with Throttled when the next backoff would pass the deadline', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    let racers = 0;
    w.ports.transactions.beforeCommit = async () => {
      await produce(w.stores, w.name, [{ body: `racer${racers++}`, partition: 0 }]);
    };
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    // Waits of 5, 10, 20, 40 ms (half of 10 · 2^attempt): the fourth reaches a deadline 40 ms away.
    expect(await rejection(w.commit(id, Date.now() + 40))).toMatchObject({
      code: 'Throttled',
      message: `The partitions of transaction '${id}' are contended; retry the commit.`,
    });
    expect(racers).toBe(4);
    expect(w.stored(id).state).toBe('prepared');
    // A deadline just past a wait lets it sleep and try again.
    racers = 0;
    w.ports.transactions.beforeCommit = async () => {
      if (racers < 1) await produce(w.stores, w.name, [{ body: `racer${racers++}`, partition: 0 }]);
    };
    expect((await w.commit(id, Date.now() + 6)).state).toBe('committed');
  });

  it('caps the backoff at 500 ms', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    let racers = 0;
    w.ports.transactions.beforeCommit = async () => {
      if (racers < 7) await produce(w.stores, w.name, [{ body: `racer${racers++}`, partition: 0 }]);
    };
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    // Waits of ~10, 20, 40, 80, 160, 320, then 500 (not 640): all below a deadline 501 ms away.
    expect((await w.commit(id, Date.now() + 501)).state).toBe('committed');
    expect(racers).toBe(7);
  });

  it('tries 100 times at most', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    w.ports.transactions.beforeCommit = async (attempt) => {
      await produce(w.stores, w.name, [{ body: attempt, partition: 0 }]);
    };
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect(await rejection(w.commit(id, Date.now() + 1))).toMatchObject({ code: 'Throttled' });
    expect(w.ports.calls.filter((c) => c === 'transactions.commit')).toHaveLength(100);
  });
});

// ---------------------------------------------------------------------------------------------- timeouts

describe('onTransactionTimeout', () => {
  it('answers missing and decided transactions without doing anything', async () => {
    const w = await txWorld();
    expect(await onTransactionTimeout(w.ports, 'txnope')).toBe('missing');
    const committed = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    await w.commit(committed);
    const rolled = await w.prepare({ messages: [{ topic: w.name, body: 1 }] });
    await rollbackTransaction(w.ports.transactions, rolled, 'producer');
    clock.advance(120_000);
    expect(await onTransactionTimeout(w.ports, committed)).toBe('decided');
    expect(await onTransactionTimeout(w.ports, rolled)).toBe('decided');
    expect(w.ports.machine.starts).toEqual([]);
    expect(w.ports.timeouts.sent).toHaveLength(2);
  });

  it('sends a timeout further out than a second back to the queue, in hops of at most the queue maximum', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }], timeoutSeconds: 2000, checkBack: { url: 'https://x.test' } });
    expect(await onTransactionTimeout(w.ports, id)).toBe('requeued');
    expect(w.ports.timeouts.sent.at(-1)).toEqual({ id, delaySeconds: 900 });
    expect(await onTransactionTimeout(w.ports, id, T0 + 1_500_000)).toBe('requeued');
    expect(w.ports.timeouts.sent.at(-1)).toEqual({ id, delaySeconds: 500 });
    // 1001 ms left: a whole second more (SQS delays are whole seconds).
    expect(await onTransactionTimeout(w.ports, id, T0 + 2_000_000 - 1001)).toBe('requeued');
    expect(w.ports.timeouts.sent.at(-1)).toEqual({ id, delaySeconds: 2 });
    expect(w.ports.machine.starts).toEqual([]);
    expect(w.stored(id).state).toBe('prepared');
  });

  it('waits out up to a second of earliness, then starts the check-back (once per transaction)', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }], timeoutSeconds: 30, checkBack: { url: 'https://x.test' }, maxChecks: 4, checkIntervalSeconds: 3 });
    const sent = w.ports.timeouts.sent.length;
    const started = performance.now();
    expect(await onTransactionTimeout(w.ports, id, T0 + 30_000 - 300)).toBe('started');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(w.ports.timeouts.sent).toHaveLength(sent);
    expect(w.ports.machine.starts).toEqual([{ id, check: 1, maxChecks: 4, waitSeconds: 3 }]);
    clock.advance(30_000);
    expect(await onTransactionTimeout(w.ports, id)).toBe('started');
    expect(w.ports.machine.executions.size).toBe(1);
    expect(w.stored(id).state).toBe('prepared');
  });

  it('waits (does not requeue) at exactly a second early', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }], timeoutSeconds: 30, checkBack: { functionArn: 'arn:fn' } });
    expect(await onTransactionTimeout(w.ports, id, T0 + 29_000)).toBe('started');
    expect(w.ports.timeouts.sent).toHaveLength(1);
  });

  it('rolls back a transaction without check-back at its timeout (decidedBy timeout)', async () => {
    const w = await txWorld();
    const id = await w.prepare({ messages: [{ topic: w.name, body: 1 }], timeoutSeconds: 10 });
    clock.advance(12_000);
    expect(await onTransactionTimeout(w.ports, id)).toBe('rolledBack');
    expect(w.stored(id)).toMatchObject({ state: 'rolledBack', decidedBy: 'timeout', decidedAt: T0 + 12_000 });
    expect(w.ports.machine.starts).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------- check-back

describe('runCheck', () => {
  const deadline = () => Date.now() + 60_000;

  async function checked(checkBack: PrepareInput['checkBack'] | null = { url: 'https://x.test/check' }) {
    const w = await txWorld();
    const id = await w.prepare({
      messages: [
        { topic: w.name, body: 1, id: 'p1', key: 'k' },
        { topic: w.other, body: 2 },
      ],
      ...(checkBack ? { checkBack } : {}),
    });
    return { w, id };
  }

  it('asks a URL endpoint with the signing secret, a request id per check and the payload, and commits on "commit"', async () => {
    const { w, id } = await checked();
    w.ports.caller.answer({ answer: 'commit' });
    clock.advance(3000);
    const payload = checkPayload(w.stored(id), 2);
    const outcome = await runCheck(w.stores, w.ports, { id, check: 2, taskToken: 'tt1' }, deadline());
    expect(outcome).toEqual({ state: 'committed' });
    expect(w.ports.machine.answers.get('tt1')).toEqual({ state: 'committed' });
    expect(w.ports.caller.asks).toEqual([
      { target: { url: 'https://x.test/check' }, secret: w.ports.transactions.secret, requestId: `${id}.2`, payload },
    ]);
    expect(JSON.parse(w.ports.caller.asks[0]!.payload)).toEqual({
      id,
      check: 2,
      messages: [
        { topic: w.name, id: 'p1', key: 'k' },
        { topic: w.other },
      ],
    });
    expect(w.stored(id)).toMatchObject({ state: 'committed', decidedBy: 'checkBack' });
    expect((await w.log(w.name)).map((m) => m.body)).toEqual([1]);
  });

  it('rolls back on "rollback", and asks a Lambda check-back without a secret', async () => {
    const { w, id } = await checked({ functionArn: 'arn:fn' });
    w.ports.caller.answer({ answer: 'rollback' });
    expect(await runCheck(w.stores, w.ports, { id, check: 1, taskToken: 'tt' }, deadline())).toEqual({ state: 'rolledBack' });
    expect(w.ports.caller.asks[0]).toMatchObject({ target: { functionArn: 'arn:fn' }, secret: '' });
    expect(w.ports.transactions.secretsMade).toBe(0);
    expect(w.stored(id)).toMatchObject({ state: 'rolledBack', decidedBy: 'checkBack' });
  });

  it('records each check by number (unknown, error with its reason) and stays prepared', async () => {
    const { w, id } = await checked();
    w.ports.caller.answer({ answer: 'unknown' }, { answer: 'error', reason: 'endpoint answered 500' }, { answer: 'unknown' });
    expect(await runCheck(w.stores, w.ports, { id, check: 1, taskToken: 't1' }, deadline())).toEqual({ state: 'prepared' });
    clock.advance(10_000);
    expect(await runCheck(w.stores, w.ports, { id, check: 2, taskToken: 't2' }, deadline())).toEqual({ state: 'prepared' });
    expect(w.stored(id).checks).toEqual([
      { check: 1, at: T0, answer: 'unknown' },
      { check: 2, at: T0 + 10_000, answer: 'error', reason: 'endpoint answered 500' },
    ]);
    // The same request again (SQS delivers at least once): check 2 is recorded once, answered once.
    clock.advance(1000);
    expect(await runCheck(w.stores, w.ports, { id, check: 2, taskToken: 't2' }, deadline())).toEqual({ state: 'prepared' });
    expect(w.stored(id).checks).toEqual([
      { check: 1, at: T0, answer: 'unknown' },
      { check: 2, at: T0 + 11_000, answer: 'unknown' },
    ]);
    expect([...w.ports.machine.answers.keys()]).toEqual(['t1', 't2']);
    expect(w.stored(id).state).toBe('prepared');
  });

  it('rolls back on giveUp (decidedBy checkLimit) without asking, and a transaction without check-back by timeout', async () => {
    const { w, id } = await checked();
    expect(await runCheck(w.stores, w.ports, { id, check: 16, taskToken: 't', giveUp: true }, deadline())).toEqual({ state: 'rolledBack' });
    expect(w.stored(id)).toMatchObject({ state: 'rolledBack', decidedBy: 'checkLimit' });
    const plain = await checked(null);
    expect(await runCheck(plain.w.stores, plain.w.ports, { id: plain.id, check: 1, taskToken: 't' }, deadline())).toEqual({ state: 'rolledBack' });
    expect(plain.w.stored(plain.id)).toMatchObject({ state: 'rolledBack', decidedBy: 'timeout' });
    expect([...w.ports.caller.asks, ...plain.w.ports.caller.asks]).toEqual([]);
  });

  it('answers the state of a decided or missing transaction without asking', async () => {
    const { w, id } = await checked();
    await w.commit(id);
    expect(await runCheck(w.stores, w.ports, { id, check: 3, taskToken: 'a' }, deadline())).toEqual({ state: 'committed' });
    expect(await runCheck(w.stores, w.ports, { id, check: 3, taskToken: 'b', giveUp: true }, deadline())).toEqual({ state: 'committed' });
    expect(await runCheck(w.stores, w.ports, { id: 'txgone', check: 1, taskToken: 'c' }, deadline())).toEqual({ state: 'rolledBack' });
    expect(w.ports.caller.asks).toEqual([]);
    expect(w.ports.machine.answers.get('c')).toEqual({ state: 'rolledBack' });
    expect(w.stored(id).state).toBe('committed');
  });

  it('answers the state someone else decided while the producer was asked (Conflict is not a failure)', async () => {
    const { w, id } = await checked();
    w.ports.caller.answer(async () => {
      await rollbackTransaction(w.ports.transactions, id, 'producer');
      return { answer: 'commit' };
    });
    expect(await runCheck(w.stores, w.ports, { id, check: 1, taskToken: 't' }, deadline())).toEqual({ state: 'rolledBack' });
    expect(w.stored(id).decidedBy).toBe('producer');

    const other = await checked();
    other.w.ports.caller.answer(async () => {
      await other.w.commit(other.id);
      return { answer: 'rollback' };
    });
    expect(await runCheck(other.w.stores, other.w.ports, { id: other.id, check: 1, taskToken: 't' }, deadline())).toEqual({ state: 'committed' });
    expect(other.w.stored(other.id).decidedBy).toBe('producer');
  });

  it('answers rolledBack when the transaction someone else decided is gone by the time it is read again', async () => {
    const { w, id } = await checked();
    w.ports.caller.answer(async () => {
      await w.commit(id);
      return { answer: 'rollback' };
    });
    // The rollback finds it committed (Conflict); its record expires before the state is read again.
    const rollback = w.ports.transactions.rollback.bind(w.ports.transactions);
    w.ports.transactions.rollback = async (...args) => {
      const state = await rollback(...args);
      w.ports.transactions.items.delete(id);
      return state;
    };
    expect(await runCheck(w.stores, w.ports, { id, check: 1, taskToken: 't' }, deadline())).toEqual({ state: 'rolledBack' });
    expect(w.ports.machine.answers.get('t')).toEqual({ state: 'rolledBack' });
  });

  it('answers rolledBack when "commit" finds a topic deleted', async () => {
    const { w, id } = await checked();
    await w.stores.catalog.deleteTopic(w.other);
    w.ports.caller.answer({ answer: 'commit' });
    expect(await runCheck(w.stores, w.ports, { id, check: 1, taskToken: 't' }, deadline())).toEqual({ state: 'rolledBack' });
    expect(w.stored(id).decidedBy).toBe('topicDeleted');
  });

  it('leaves the request to be tried again when asking or committing fails: no answer to the state machine', async () => {
    const { w, id } = await checked();
    w.ports.caller.answer(new Error('endpoint unreachable'));
    expect((await rejection(runCheck(w.stores, w.ports, { id, check: 1, taskToken: 't' }, deadline()))).message).toBe('endpoint unreachable');
    expect(w.stored(id).checks).toEqual([]);
    // A contended commit past its deadline: Throttled, not an answer.
    w.ports.caller.answer({ answer: 'commit' });
    w.ports.transactions.beforeCommit = async () => {
      await produce(w.stores, w.name, [{ body: 'racer', partition: 0 }]);
    };
    expect(await rejection(runCheck(w.stores, w.ports, { id, check: 1, taskToken: 't' }, Date.now()))).toMatchObject({ code: 'Throttled' });
    expect(w.ports.machine.answers.size).toBe(0);
    expect(w.stored(id).state).toBe('prepared');
  });
});

// ---------------------------------------------------------------------------------------------- answers

describe('check-back answers', () => {
  const noDecision = { answer: 'error', reason: 'the reply has no "decision" of commit, rollback or unknown' };

  it('reads the decision of a reply, and nothing else', () => {
    expect(decisionOf({ decision: 'commit' })).toEqual({ answer: 'commit' });
    expect(decisionOf({ decision: 'rollback' })).toEqual({ answer: 'rollback' });
    expect(decisionOf({ decision: 'unknown' })).toEqual({ answer: 'unknown' });
    for (const reply of [{ decision: 'Commit' }, { decision: 1 }, {}, null, 'commit', ['commit'], undefined]) expect(decisionOf(reply)).toEqual(noDecision);
  });

  it('reads HTTP replies: a 2xx with JSON, anything else an error with its reason', () => {
    expect(httpCheckAnswer(200, '{"decision":"commit"}')).toEqual({ answer: 'commit' });
    expect(httpCheckAnswer(299, '{"decision":"rollback"}')).toEqual({ answer: 'rollback' });
    expect(httpCheckAnswer(199, '{"decision":"commit"}')).toEqual({ answer: 'error', reason: 'endpoint answered 199' });
    expect(httpCheckAnswer(300, '{"decision":"commit"}')).toEqual({ answer: 'error', reason: 'endpoint answered 300' });
    expect(httpCheckAnswer(200, 'commit')).toEqual({ answer: 'error', reason: 'the reply is not JSON' });
    expect(httpCheckAnswer(204, '{}')).toEqual(noDecision);
  });

  it('reads Lambda replies, and keeps 200 characters of a failure', () => {
    expect(lambdaCheckAnswer(undefined, { decision: 'unknown' })).toEqual({ answer: 'unknown' });
    expect(lambdaCheckAnswer('', { decision: 'commit' })).toEqual({ answer: 'commit' });
    expect(lambdaCheckAnswer('Unhandled', { decision: 'commit' })).toEqual({ answer: 'error', reason: 'function error: Unhandled' });
    const long = lambdaCheckAnswer('x'.repeat(300), null);
    expect(long).toEqual({ answer: 'error', reason: `function error: ${'x'.repeat(184)}` });
  });
});
