import { describe, expect, it, vi } from 'vitest';
import { ack, leaseForPush, pull } from '../../../functions/domain/groups/consume.js';
import { describeGroup, putGroup, resetGroup } from '../../../functions/domain/groups/groups.js';
import { listDeadLetters, redriveDeadLetters } from '../../../functions/domain/groups/deadLetters.js';
import { formatReceipt, parseReceipt } from '../../../functions/domain/ids.js';
import { LIMITS } from '../../../functions/domain/limits.js';
import { VersionConflict } from '../../../functions/domain/ports.js';
import { retentionAt } from '../../memory/stores.js';
import { topicKeyOf } from '../../../functions/domain/ports.js';
import { bodies, defaults, offsetsOf, rejection, T0, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

describe('pull, ack and nack over the progress model', () => {
  it('leases new messages once, with receipts that ack them; an acked message never comes back', async () => {
    const w = await world();
    await w.produce(bodies(3));
    const first = await w.pull();
    expect(first.map((d) => [d.offset, d.body, d.deliveryCount])).toEqual([
      [0, 0, 1],
      [1, 1, 1],
      [2, 2, 1],
    ]);
    expect(await w.pull()).toEqual([]);
    const settled = await w.ack(first.map((d) => d.receipt));
    expect(settled).toEqual({ settled: 3, stale: [] });
    clock.advance(31_000);
    expect(await w.pull()).toEqual([]);
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.partitions[0]).toMatchObject({ ackedThrough: 3, endOffset: 3, inFlight: 0, lag: 0 });
  });

  it('an unacked message comes back after the group visibility with delivery count 2 and a new receipt', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [first] = await w.pull();
    clock.advance(29_999);
    expect(await w.pull()).toEqual([]);
    clock.advance(1);
    const [again] = await w.pull();
    expect(again).toMatchObject({ offset: 0, deliveryCount: 2 });
    expect(again!.receipt).not.toBe(first!.receipt);
    expect(await w.ack([first!.receipt])).toEqual({ settled: 0, stale: [first!.receipt] });
    expect(await w.ack([again!.receipt])).toEqual({ settled: 1, stale: [] });
  });

  it("a pull's own visibilitySeconds sets the lease instead of the group's", async () => {
    const w = await world();
    await w.produce(bodies(1));
    await w.pull({ visibilitySeconds: 1 });
    clock.advance(999);
    expect(await w.pull()).toEqual([]);
    clock.advance(1);
    const [again] = await w.pull();
    expect(again).toMatchObject({ offset: 0, deliveryCount: 2 });
    // That pull took the group's 30 s.
    clock.advance(29_999);
    expect(await w.pull()).toEqual([]);
  });

  it('max bounds a pull even when redeliveries are due; redeliveries come first', async () => {
    const w = await world();
    await w.produce(bodies(5));
    expect(await w.pull({ max: 5 })).toHaveLength(5);
    clock.advance(30_000);
    await w.produce(bodies(5));
    const got = await w.pull({ max: 5 });
    expect(got.map((d) => [d.offset, d.deliveryCount])).toEqual([0, 1, 2, 3, 4].map((o) => [o, 2]));
    const next = await w.pull({ max: 3 });
    expect(next.map((d) => [d.offset, d.deliveryCount])).toEqual([5, 6, 7].map((o) => [o, 1]));
  });

  it('max counts across partitions, and a pull visits every partition', async () => {
    const w = await world({ partitions: 4 });
    for (let p = 0; p < 4; p++) await w.produce(bodies(2, { partition: p }));
    const some = await w.pull({ max: 3 });
    expect(some).toHaveLength(3);
    const rest = await w.pull({ max: 100 });
    expect(rest).toHaveLength(5);
    const all = [...some, ...rest].map((d) => `${d.partition}.${d.offset}`).sort();
    expect(all).toEqual(['0.0', '0.1', '1.0', '1.1', '2.0', '2.1', '3.0', '3.1']);
  });

  it('a nack makes a message wait for its backoff (1 s, then 2 s), then it comes back', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [d1] = await w.pull();
    expect(await w.nack([d1!.receipt])).toEqual({ settled: 1, stale: [] });
    clock.advance(999);
    expect(await w.pull()).toEqual([]);
    clock.advance(1);
    const [d2] = await w.pull();
    expect(d2!.deliveryCount).toBe(2);
    await w.nack([d2!.receipt]);
    clock.advance(1999);
    expect(await w.pull()).toEqual([]);
    clock.advance(1);
    expect((await w.pull())[0]!.deliveryCount).toBe(3);
  });

  it('a nack with retryAfterSeconds waits that long; a nacked receipt neither acks nor nacks again', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [d] = await w.pull();
    await w.nack([d!.receipt], 5);
    expect(await w.ack([d!.receipt])).toEqual({ settled: 0, stale: [d!.receipt] });
    expect(await w.nack([d!.receipt])).toEqual({ settled: 0, stale: [d!.receipt] });
    clock.advance(4999);
    expect(await w.pull()).toEqual([]);
    clock.advance(1);
    expect(await w.pull()).toHaveLength(1);
  });

  it('a nack of an expired lease is stale and changes nothing', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [d] = await w.pull();
    clock.advance(30_000);
    expect(await w.nack([d!.receipt], 600)).toEqual({ settled: 0, stale: [d!.receipt] });
    // Had the nack counted, the message would wait 600 s.
    expect(await w.pull()).toHaveLength(1);
  });

  it('after a reset, a receipt from before it neither nacks nor acks the new lease of the same offset', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [old] = await w.pull();
    await resetGroup(w.stores, w.name, w.group, 'earliest');
    const [fresh] = await w.pull();
    // Same offset, same delivery number: only the token tells them apart.
    expect(fresh).toMatchObject({ offset: 0, deliveryCount: 1 });
    expect(await w.nack([old!.receipt], 600)).toEqual({ settled: 0, stale: [old!.receipt] });
    expect(await w.ack([old!.receipt])).toEqual({ settled: 0, stale: [old!.receipt] });
    expect(await w.ack([fresh!.receipt])).toEqual({ settled: 1, stale: [] });
  });

  it('a receipt with the right token but another delivery number is stale for nack', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [d] = await w.pull();
    const r = parseReceipt(d!.receipt)!;
    const other = formatReceipt({ ...r, delivery: 2 });
    expect(await w.nack([other], 600)).toEqual({ settled: 0, stale: [other] });
    expect(await w.ack([d!.receipt])).toEqual({ settled: 1, stale: [] });
  });

  it('acks are idempotent; repeats in one call count once; foreign and malformed receipts', async () => {
    const w = await world({ partitions: 2 });
    await w.produce(bodies(2));
    const [a, b] = await w.pull();
    expect(await w.ack([a!.receipt, a!.receipt])).toEqual({ settled: 1, stale: [] });
    expect(await w.ack([a!.receipt])).toEqual({ settled: 1, stale: [] });
    const outside = formatReceipt({ ...parseReceipt(b!.receipt)!, partition: 2 });
    const notYet = formatReceipt({ ...parseReceipt(b!.receipt)!, offset: 9 });
    expect(await w.ack([outside, notYet, b!.receipt])).toEqual({ settled: 1, stale: [outside, notYet] });
    const error = await rejection(w.ack(['nonsense']));
    expect(error).toMatchObject({ code: 'ValidationError' });
    expect(error.message).toContain('receipts[0]');
  });

  it('a message delivered maxDeliveries times goes to the dead letters, and a late ack of it is stale', async () => {
    const w = await world({ group: { maxDeliveries: 2 } });
    await w.produce(bodies(2));
    const [first] = await w.pull({ max: 1 });
    clock.advance(30_000);
    const [second] = await w.pull({ max: 1 });
    expect(second).toMatchObject({ offset: 0, deliveryCount: 2 });
    clock.advance(30_000);
    const next = await w.pull({ max: 1 });
    expect(next.map((d) => [d.offset, d.deliveryCount])).toEqual([[1, 1]]);
    const { letters } = await listDeadLetters(w.stores, w.name, w.group, 10);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ offset: 0, body: 0, deliveryCount: 2, reason: 'maxDeliveries (2) reached', deadAt: new Date(T0 + 60_000).toISOString() });
    expect(await w.ack([second!.receipt, first!.receipt])).toEqual({ settled: 0, stale: [second!.receipt, first!.receipt] });
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.partitions[0]).toMatchObject({ ackedThrough: 1, inFlight: 1, lag: 1 });
  });

  it(`a pull dead-letters at most ${LIMITS.maxDeadLettersPerPull} messages; the rest follow with the next pulls`, async () => {
    const w = await world({ group: { maxDeliveries: 1 } });
    await w.produce(bodies(25));
    expect(await w.pull()).toHaveLength(25);
    clock.advance(30_000);
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      expect(await w.pull()).toEqual([]);
      counts.push((await listDeadLetters(w.stores, w.name, w.group, 100)).letters.length);
    }
    expect(counts).toEqual([10, 20, 25]);
    const offsets = (await listDeadLetters(w.stores, w.name, w.group, 100)).letters.map((l) => l.offset).sort((a, b) => a - b);
    expect(offsets).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('a pull that dead-letters also leases new messages behind them', async () => {
    const w = await world({ group: { maxDeliveries: 1 } });
    await w.produce(bodies(2));
    await w.pull();
    clock.advance(30_000);
    await w.produce(bodies(1));
    const got = await w.pull();
    expect(got.map((d) => d.offset)).toEqual([2]);
    expect((await listDeadLetters(w.stores, w.name, w.group, 10)).letters).toHaveLength(2);
  });

  it('the in-flight window stops new dispatch on a partition until the head is acked', async () => {
    const w = await world();
    await w.produce(bodies(LIMITS.maxInFlightPerPartition + 5));
    let total = 0;
    let head: string | undefined;
    for (;;) {
      const got = await w.pull();
      if (got.length === 0) break;
      head ??= got[0]!.receipt;
      total += got.length;
    }
    expect(total).toBe(LIMITS.maxInFlightPerPartition);
    await w.ack([head!]);
    expect(offsetsOf(await w.pull())).toEqual([LIMITS.maxInFlightPerPartition]);
  });
});

describe('ordered groups', () => {
  it('a partition is blocked while anything is leased, then the next batch follows', async () => {
    const w = await world({ group: { mode: 'ordered' } });
    await w.produce(bodies(2));
    const first = await w.pull({ max: 1 });
    expect(offsetsOf(first)).toEqual([0]);
    expect(await w.pull()).toEqual([]);
    await w.ack(first.map((d) => d.receipt));
    expect(offsetsOf(await w.pull())).toEqual([1]);
  });

  it('nacked messages come back in order before any new offset, and block until their retry time', async () => {
    const w = await world({ group: { mode: 'ordered' } });
    await w.produce(bodies(3));
    const batch = await w.pull({ max: 2 });
    await w.nack([batch[1]!.receipt], 5);
    // offset 0 still leased, 1 waits: blocked.
    expect(await w.pull()).toEqual([]);
    await w.ack([batch[0]!.receipt]);
    expect(await w.pull()).toEqual([]);
    clock.advance(5000);
    const again = await w.pull();
    expect(again.map((d) => [d.offset, d.deliveryCount])).toEqual([[1, 2]]);
    await w.ack([again[0]!.receipt]);
    expect(offsetsOf(await w.pull())).toEqual([2]);
  });

  it('an ordered group dead-letters a message that reached maxDeliveries and moves on', async () => {
    const w = await world({ group: { mode: 'ordered', maxDeliveries: 1 } });
    await w.produce(bodies(2));
    await w.pull({ max: 1 });
    clock.advance(30_000);
    expect(offsetsOf(await w.pull())).toEqual([1]);
    expect((await listDeadLetters(w.stores, w.name, w.group, 10)).letters.map((l) => l.offset)).toEqual([0]);
  });
});

describe('broadcast groups', () => {
  it('every consumer gets every message once; settling is accepted and changes nothing', async () => {
    const w = await world({ partitions: 2, group: { mode: 'broadcast' } });
    await w.produce([...bodies(2, { partition: 0 }), ...bodies(1, { partition: 1 })]);
    expect(await rejection(w.pull())).toMatchObject({ code: 'ValidationError' });
    const a = await w.pull({ consumerId: 'a' });
    const b = await w.pull({ consumerId: 'b' });
    expect(a).toHaveLength(3);
    expect(b).toHaveLength(3);
    expect(a.every((d) => d.deliveryCount === 1 && d.receipt.endsWith('.b'))).toBe(true);
    expect(await w.pull({ consumerId: 'a' })).toEqual([]);
    clock.advance(3_600_000);
    expect(await w.pull({ consumerId: 'a' })).toEqual([]);
    const forged = a[0]!.receipt.replace(/\.b$/, '.abcdef12');
    expect(await w.ack([a[0]!.receipt, forged])).toEqual({ settled: 1, stale: [forged] });
    await w.produce(bodies(1, { partition: 0 }));
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.lag).toBe(1);
    expect(view.partitions.map((p) => [p.ackedThrough, p.endOffset, p.inFlight])).toEqual([
      [2, 3, 0],
      [1, 1, 0],
    ]);
    expect(view.consumers).toEqual(expect.arrayContaining([{ consumerId: 'a', lag: 1 }, { consumerId: 'b', lag: 1 }]));
    expect(offsetsOf(await w.pull({ consumerId: 'b', max: 5 }))).toEqual([2]);
  });

  it('a new consumer starts at the group start; max bounds the batch', async () => {
    const w = await world({ group: { mode: 'broadcast' } });
    await w.produce(bodies(5));
    expect(offsetsOf(await w.pull({ consumerId: 'x', max: 2 }))).toEqual([0, 1]);
    expect(offsetsOf(await w.pull({ consumerId: 'x', max: 2 }))).toEqual([2, 3]);
    expect(offsetsOf(await w.pull({ consumerId: 'y', max: 10 }))).toEqual([0, 1, 2, 3, 4]);
  });

  it('a broadcast reset moves every consumer and the start of new ones', async () => {
    const w = await world({ group: { mode: 'broadcast' } });
    await w.produce(bodies(3));
    await w.pull({ consumerId: 'a' });
    await resetGroup(w.stores, w.name, w.group, { partition: 0, offset: 1 });
    clock.advance(1000);
    expect(offsetsOf(await w.pull({ consumerId: 'a' }))).toEqual([1, 2]);
    expect(offsetsOf(await w.pull({ consumerId: 'new' }))).toEqual([1, 2]);
  });

  it('a broadcast consumer losing a cursor race retries and still gets each message once', async () => {
    const w = await world({ group: { mode: 'broadcast' } });
    await w.produce(bodies(2));
    const put = w.stores.groupState.putCursor.bind(w.stores.groupState);
    const spy = vi.spyOn(w.stores.groupState, 'putCursor').mockImplementationOnce(async () => {
      throw new VersionConflict();
    });
    spy.mockImplementation(put);
    expect(offsetsOf(await w.pull({ consumerId: 'a' }))).toEqual([0, 1]);
    expect(spy).toHaveBeenCalledTimes(2);
  });
});

describe('filters and transforms on pull', () => {
  it('a tag filter acknowledges messages it does not match; an expression and a transform apply', async () => {
    const w = await world({
      group: { filter: { tags: { any: ['eu'] }, expression: 'body.total > 10' }, transform: '{"t": body.total}' },
    });
    await w.produce([
      { body: { total: 50 }, tags: ['eu'], partition: 0 },
      { body: { total: 5 }, tags: ['eu'], partition: 0 },
      { body: { total: 70 }, tags: ['us'], partition: 0 },
      { body: { total: 90 }, partition: 0 },
      { body: { total: 20 }, tags: ['eu', 'us'], partition: 0 },
    ]);
    const got = await w.pull();
    expect(got.map((d) => [d.offset, d.body])).toEqual([
      [0, { t: 50 }],
      [4, { t: 20 }],
    ]);
    await w.ack(got.map((d) => d.receipt));
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.partitions[0]).toMatchObject({ ackedThrough: 5, lag: 0 });
  });

  it('a message whose expression fails goes to the dead letters with the reason; the pull goes on', async () => {
    const w = await world({ group: { transform: '$error("bad " & $string(body))' } });
    await w.produce(bodies(2));
    expect(await w.pull()).toEqual([]);
    const { letters } = await listDeadLetters(w.stores, w.name, w.group, 10);
    expect(letters.map((l) => [l.offset, l.deliveryCount])).toEqual([
      [0, 0],
      [1, 0],
    ]);
    expect(letters[0]!.reason).toContain('bad 0');
  });

  it('a redelivery meets the current rules: filtered out now is acknowledged, failing now is dead', async () => {
    const w = await world();
    await w.produce([
      { body: 1, tags: ['a'], partition: 0 },
      { body: 2, tags: ['b'], partition: 0 },
      { body: 3, tags: ['b'], partition: 0 },
    ]);
    await w.pull();
    await putGroup(w.stores, w.name, w.group, { ...defaults, filter: { tags: { any: ['b'] }, expression: 'body = 2 or $error("no")' } });
    clock.advance(30_000);
    const again = await w.pull();
    expect(again.map((d) => [d.offset, d.deliveryCount])).toEqual([[1, 2]]);
    const { letters } = await listDeadLetters(w.stores, w.name, w.group, 10);
    expect(letters.map((l) => [l.offset, l.deliveryCount])).toEqual([[2, 1]]);
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.partitions[0]).toMatchObject({ ackedThrough: 1, inFlight: 1 });
  });

  it('broadcast skips a message whose transform fails, for that consumer', async () => {
    const w = await world({ group: { mode: 'broadcast', transform: 'body = 1 ? $error("x") : body' } });
    await w.produce(bodies(3));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(offsetsOf(await w.pull({ consumerId: 'c' }))).toEqual([0, 2]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(JSON.parse(warn.mock.calls[0]![0] as string)).toMatchObject({
      level: 'WARN',
      message: 'broadcast pull skipped a message whose filter expression or transform failed',
      offset: 1,
      consumerId: 'c',
    });
    warn.mockRestore();
  });

  it('a push group cannot be pulled', async () => {
    const w = await world({ group: { delivery: { type: 'lambda', functionArn: 'arn:aws:lambda:x', batchSize: 10, maxConcurrency: 1, timeoutSeconds: 5 } } });
    expect(await rejection(w.pull())).toMatchObject({ code: 'Conflict' });
  });
});

describe('reply size', () => {
  it('a pull stops before the message that would not fit the reply; it comes with the next pull', async () => {
    const w = await world();
    const big = 'x'.repeat(250 * 1024);
    await w.produce(Array.from({ length: 24 }, () => ({ body: big, partition: 0 })));
    const first = await w.pull();
    expect(first.length).toBe(20);
    const second = await w.pull();
    expect(offsetsOf(second)).toEqual([20, 21, 22, 23]);
  });

  it('redeliveries stop at the reply size too, and new messages wait behind them', async () => {
    const w = await world();
    const big = 'x'.repeat(250 * 1024);
    await w.produce(Array.from({ length: 22 }, () => ({ body: big, partition: 0 })));
    expect(await w.pull()).toHaveLength(20);
    clock.advance(30_000);
    const again = await w.pull();
    expect(again.map((d) => [d.offset, d.deliveryCount])).toEqual(Array.from({ length: 20 }, (_, i) => [i, 2]));
    expect(offsetsOf(await w.pull())).toEqual([20, 21]);
  });
});

describe('failures and races', () => {
  it('a partition that lost a race is retried after the others', async () => {
    const w = await world({ partitions: 2 });
    await w.produce([...bodies(1, { partition: 0 }), ...bodies(1, { partition: 1 })]);
    const real = w.stores.groupState.putProgress.bind(w.stores.groupState);
    let conflicts = 0;
    vi.spyOn(w.stores.groupState, 'putProgress').mockImplementation(async (...args) => {
      if (conflicts < 1) {
        conflicts++;
        throw new VersionConflict();
      }
      return real(...args);
    });
    const got = await w.pull();
    expect(got).toHaveLength(2);
    // Both partitions once, then the one that lost once more.
    expect(w.stores.calls.filter((c) => c.startsWith('groupState.getProgress'))).toHaveLength(3);
  });

  it('a partition that keeps losing gives up for this pull and is empty-handed, not an error', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const spy = vi.spyOn(w.stores.groupState, 'putProgress').mockRejectedValue(new VersionConflict());
    expect(await w.pull()).toEqual([]);
    expect(spy).toHaveBeenCalledTimes(4);
    spy.mockRestore();
    expect(await w.pull()).toHaveLength(1);
  });

  it('a failing partition is skipped when another committed; alone, its error reaches the caller', async () => {
    const w = await world({ partitions: 2 });
    await w.produce([...bodies(1, { partition: 0 }), ...bodies(1, { partition: 1 })]);
    const real = w.stores.groupState.getProgress.bind(w.stores.groupState);
    const boom = new Error('throttled');
    vi.spyOn(w.stores.groupState, 'getProgress').mockImplementation(async (key, partition, consistent) => {
      if (partition === 1) throw boom;
      return real(key, partition, consistent);
    });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const got = await w.pull();
    expect(got.map((d) => d.partition)).toEqual([0]);
    expect(JSON.parse(warn.mock.calls[0]![0] as string)).toMatchObject({
      level: 'WARN',
      message: 'pull skipped a failing partition and returned what other partitions committed',
      partitions: [1],
      error: 'Error: throttled',
    });
    warn.mockRestore();
    expect(await rejection(w.pull())).toBe(boom);
  });

  it('an ack that sees a receipt as unknown on a stale replica checks again with a strong read', async () => {
    const w = await world();
    await w.produce(bodies(1));
    w.stores.replica.freeze();
    const [d] = await w.pull();
    // The replica has not seen the lease yet: only the strong read knows the receipt.
    expect(await w.ack([d!.receipt])).toEqual({ settled: 1, stale: [] });
    w.stores.replica.thaw();
  });

  it('an ack that looks settled on a stale replica (before a reset) is checked with a strong read', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [d] = await w.pull();
    await w.ack([d!.receipt]);
    w.stores.replica.freeze();
    await resetGroup(w.stores, w.name, w.group, 'earliest');
    // On the replica offset 0 is acknowledged; in fact the reset made it available again.
    expect(await w.ack([d!.receipt])).toEqual({ settled: 0, stale: [d!.receipt] });
    w.stores.replica.thaw();
  });

  it('a pull that read a stale replica loses its versioned write and retries with a strong read', async () => {
    const w = await world();
    await w.produce(bodies(2));
    w.stores.replica.freeze();
    const first = await w.pull({ max: 1 });
    const second = await w.pull({ max: 1 });
    expect([...offsetsOf(first), ...offsetsOf(second)]).toEqual([0, 1]);
    w.stores.replica.thaw();
  });

  it('an ack racing another write retries on the fresh state', async () => {
    const w = await world();
    await w.produce(bodies(2));
    const [a, b] = await w.pull();
    const real = w.stores.groupState.putProgress.bind(w.stores.groupState);
    let once = true;
    vi.spyOn(w.stores.groupState, 'putProgress').mockImplementation(async (...args) => {
      if (once) {
        once = false;
        // Another consumer acks b first.
        await ack(w.stores, w.name, w.group, [b!.receipt]);
      }
      return real(...args);
    });
    expect(await w.ack([a!.receipt])).toEqual({ settled: 1, stale: [] });
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.partitions[0]).toMatchObject({ ackedThrough: 2, inFlight: 0 });
  });
});

describe('retention and redrive on the consume path', () => {
  it('a redelivery whose segment retention removed is dropped; new messages still come', async () => {
    const w = await world({ retentionHours: 1 });
    await w.produce(bodies(2));
    const leased = await w.pull();
    expect(leased).toHaveLength(2);
    // Past retention (1 h) and the day of grace after it, when TTL may take the segments.
    clock.advance(26 * 3600 * 1000);
    await w.produce(bodies(1));
    expect(await retentionAt(w.stores, w.name)).toBe(1);
    const got = await w.pull();
    expect(got.map((d) => [d.offset, d.deliveryCount])).toEqual([[2, 1]]);
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.partitions[0]).toMatchObject({ ackedThrough: 2, inFlight: 1 });
  });

  it('a hole TTL left in the middle of the log is skipped, and nothing around it is lost', async () => {
    const w = await world({ retentionHours: 1 });
    for (let i = 0; i < 3; i++) await w.produce(bodies(2));
    // TTL deletes expired items in no particular order: here the middle segment (offsets 2, 3) goes first.
    const nowSeconds = Math.floor(Date.now() / 1000);
    expect(await w.stores.log.setSegmentExpiry(topicKeyOf(w.topic), 0, 2, nowSeconds - 1)).toBe(true);
    expect(w.stores.log.sweepExpired(nowSeconds)).toBe(1);
    expect(offsetsOf(await w.pull())).toEqual([0, 1, 4, 5]);
  });

  it('new offsets that retention removed are skipped over', async () => {
    const w = await world({ retentionHours: 1 });
    await w.produce(bodies(2));
    // Past retention (1 h) and the day of grace after it, when TTL may take the segments.
    clock.advance(26 * 3600 * 1000);
    await w.produce(bodies(1));
    await retentionAt(w.stores, w.name);
    expect(offsetsOf(await w.pull())).toEqual([2]);
  });

  it('a redriven letter comes back with a fresh delivery count, from its kept copy when the segment is gone', async () => {
    const w = await world({ retentionHours: 1, group: { maxDeliveries: 1 } });
    await w.produce(bodies(2));
    await w.pull();
    clock.advance(30_000);
    await w.pull();
    expect((await listDeadLetters(w.stores, w.name, w.group, 10)).letters).toHaveLength(2);
    // Past retention (1 h) and the day of grace after it, when TTL may take the segments.
    clock.advance(26 * 3600 * 1000);
    await w.produce(bodies(1));
    await retentionAt(w.stores, w.name);
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 2, deferred: 0 });
    expect((await listDeadLetters(w.stores, w.name, w.group, 10)).letters).toEqual([]);
    const got = await w.pull();
    expect(got.map((d) => [d.offset, d.body, d.deliveryCount])).toEqual([
      [0, 0, 1],
      [1, 1, 1],
      [2, 0, 1],
    ]);
  });
});

describe('long polling', () => {
  it('a long poll returns a message produced while it waits', async () => {
    vi.useRealTimers();
    const w = await world();
    const started = Date.now();
    const polling = w.pull({ waitSeconds: 2 });
    setTimeout(() => void w.produce(bodies(1)), 100);
    const got = await polling;
    expect(offsetsOf(got)).toEqual([0]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('an empty long poll ends when asked, and never past its deadline', async () => {
    vi.useRealTimers();
    const w = await world();
    let started = Date.now();
    expect(await w.pull({ waitSeconds: 0.3 })).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    started = Date.now();
    // A poll ends a second before its deadline, whatever it asked for.
    expect(await pull(w.stores, w.name, w.group, { max: 1, waitSeconds: 5 }, Date.now() + 1200)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a long poll looks again at once after a sweep that only filtered messages out', async () => {
    vi.useRealTimers();
    const w = await world({ group: { filter: { tags: { any: ['yes'] } } } });
    await w.produce(bodies(3));
    const getProgress = vi.spyOn(w.stores.groupState, 'getProgress');
    const started = Date.now();
    expect(await w.pull({ waitSeconds: 0.2 })).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1000);
    // The sweep that skipped the three messages is followed at once by another (no 50 ms wait first).
    expect(getProgress.mock.calls.length).toBeGreaterThanOrEqual(3);
  });
});

describe('push leases', () => {
  it('leaseForPush leases as a pull does, with its own visibility', async () => {
    const w = await world();
    await w.produce(bodies(3));
    const { topic } = w;
    const group = (await w.stores.catalog.getGroup(w.name, w.group))!;
    const got = await leaseForPush(w.stores, topic, group, 0, 2, 5, Date.now() + 10_000);
    expect(offsetsOf(got)).toEqual([0, 1]);
    clock.advance(5000);
    const again = await leaseForPush(w.stores, topic, group, 0, 10, 5, Date.now() + 10_000);
    expect(again.map((d) => [d.offset, d.deliveryCount])).toEqual([
      [0, 2],
      [1, 2],
      [2, 1],
    ]);
  });
});
