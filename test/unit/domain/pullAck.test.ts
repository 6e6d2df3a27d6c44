/** Pulls that acknowledge the previous batch (`ackReceipts`): one call, and per partition one progress write. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pullAndAck } from '../../../functions/domain/groups/consume.js';
import { bodies, offsetsOf, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => {
  vi.restoreAllMocks();
});

describe('pull with ackReceipts', () => {
  it('acks the previous batch (each receipt once) and leases the next; without receipts it answers no acks', async () => {
    const w = await world();
    await w.produce(bodies(3));
    const first = await pullAndAck(w.stores, w.name, w.group, { max: 2, waitSeconds: 0 });
    expect(first).toStrictEqual({ deliveries: first.deliveries });
    expect(offsetsOf(first.deliveries)).toEqual([0, 1]);
    const receipts = first.deliveries.map((d) => d.receipt);
    const next = await pullAndAck(w.stores, w.name, w.group, { max: 10, waitSeconds: 0, ackReceipts: [...receipts, receipts[0]!] });
    expect(offsetsOf(next.deliveries)).toEqual([2]);
    expect(next.acks).toEqual({ settled: 2, stale: [] });
    // The acked ones never come back; the unacked one does once its lease is over.
    clock.advance(31_000);
    expect(offsetsOf(await w.pull())).toEqual([2]);
  });

  it('acks partitions the reply has no room for, and partitions with nothing new', async () => {
    const w = await world({ partitions: 3 });
    await w.produce([...bodies(1, { partition: 0 }), ...bodies(1, { partition: 1 }), ...bodies(1, { partition: 2 })]);
    const leased = await w.pull();
    expect(leased).toHaveLength(3);
    await w.produce(bodies(2, { partition: 0 }));
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const out = await pullAndAck(w.stores, w.name, w.group, { max: 1, waitSeconds: 0, ackReceipts: leased.map((d) => d.receipt) });
    expect(out.deliveries.map((d) => [d.partition, d.offset])).toEqual([[0, 1]]);
    expect(out.acks).toEqual({ settled: 3, stale: [] });
    clock.advance(31_000);
    expect((await w.pull()).map((d) => [d.partition, d.offset])).toEqual([
      [0, 1],
      [0, 2],
    ]);
  });

  it('settles after the sweep the acks of a partition the sweep could not read', async () => {
    const w = await world({ partitions: 2 });
    await w.produce([...bodies(1, { partition: 0 }), ...bodies(1, { partition: 1 })]);
    const leased = await w.pull();
    const real = w.stores.groupState.getProgress.bind(w.stores.groupState);
    let failures = 1;
    vi.spyOn(w.stores.groupState, 'getProgress').mockImplementation(async (key, partition, consistent) => {
      if (partition === 1 && failures-- > 0) throw new Error('throttled');
      return real(key, partition, consistent);
    });
    await w.produce(bodies(1, { partition: 0 }));
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const out = await pullAndAck(w.stores, w.name, w.group, { max: 10, waitSeconds: 0, ackReceipts: leased.map((d) => d.receipt) });
    expect(out.deliveries.map((d) => [d.partition, d.offset])).toEqual([[0, 1]]);
    expect(out.acks).toEqual({ settled: 2, stale: [] });
    clock.advance(31_000);
    expect((await w.pull()).map((d) => [d.partition, d.offset])).toEqual([[0, 1]]);
  });

  it('a receipt acked already counts as settled again (as an ack answers), and a broadcast consumer’s receipts are acked', async () => {
    const w = await world();
    await w.produce(bodies(1));
    const [d] = await w.pull();
    await w.ack([d!.receipt]);
    clock.advance(31_000);
    const again = await pullAndAck(w.stores, w.name, w.group, { max: 10, waitSeconds: 0, ackReceipts: [d!.receipt] });
    expect(again.acks).toEqual({ settled: 1, stale: [] });
    expect(again.acks).toEqual(await w.ack([d!.receipt]));

    const b = await world({ group: { mode: 'broadcast' } });
    await b.produce(bodies(2));
    const got = await b.pull({ consumerId: 'c', max: 1 });
    const out = await pullAndAck(b.stores, b.name, b.group, { max: 10, waitSeconds: 0, consumerId: 'c', ackReceipts: got.map((x) => x.receipt) });
    expect(out.acks).toEqual({ settled: 1, stale: [] });
    expect(offsetsOf(out.deliveries)).toEqual([1]);
  });
});
