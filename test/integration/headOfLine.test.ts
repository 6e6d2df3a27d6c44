/**
 * DESIGN.md: DDMQ and QMQ both stall a partition on one unacked message at its head. Sluice bounds it:
 * a shared group stops dispatching 1024 offsets past its oldest unacked message, and an ordered group's
 * blocked partition moves on once the head message has used its maxDeliveries.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../functions/domain/limits.js';
import { ack, produce, pullAll, topicWithGroup, useApi } from '../support/api.js';

describe('head-of-line bounds', () => {
  const api = useApi();

  it('a shared group hands out at most the in-flight window past an unacked head, and moves on once it is acked', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: { visibilitySeconds: 600 } });
    const total = LIMITS.maxInFlightPerPartition + 76;
    for (let i = 0; i < total; i += 500) {
      await produce(api, topic, Array.from({ length: Math.min(500, total - i) }, (_, k) => ({ body: i + k })));
    }
    const delivered: Array<{ offset: number; receipt: string }> = [];
    for (;;) {
      const got = await pullAll(api, groupPath);
      if (got.length === 0) break;
      delivered.push(...got.map((m) => ({ offset: m.offset, receipt: m.receipt })));
      // Ack everything except the head (offset 0), which stays leased.
      await ack(api, groupPath, got.filter((m) => m.offset !== 0).map((m) => m.receipt));
    }
    expect(delivered).toHaveLength(LIMITS.maxInFlightPerPartition);
    const view = await api('GET', groupPath);
    expect(view.body.partitions[0]).toMatchObject({ ackedThrough: 0, inFlight: 1, lag: total });

    await ack(api, groupPath, [delivered.find((d) => d.offset === 0)!.receipt]);
    const rest = await pullAll(api, groupPath);
    expect(rest.map((m) => m.offset)).toEqual(Array.from({ length: 76 }, (_, i) => LIMITS.maxInFlightPerPartition + i));
  });

  it('an ordered partition blocked by a failing head message moves on after maxDeliveries, in order', async () => {
    const { topic, groupPath } = await topicWithGroup(api, { partitions: 1, group: { mode: 'ordered', maxDeliveries: 3 } });
    await produce(api, topic, [{ body: 'poison' }, { body: 'next-1' }, { body: 'next-2' }]);
    for (let delivery = 1; delivery <= 3; delivery++) {
      const batch = await pullAll(api, groupPath);
      expect(batch.map((m) => [m.body, m.deliveryCount])).toEqual([
        ['poison', delivery],
        ['next-1', delivery],
        ['next-2', delivery],
      ]);
      // The consumer fails on the head and gives the whole ordered batch back.
      await api('POST', `${groupPath}/nack`, { receipts: batch.map((m) => m.receipt), retryAfterSeconds: 0 });
    }
    // All three reached maxDeliveries together; an ordered consumer that always fails the head would
    // stall forever without the bound. Here they go to the dead letters in order and the partition is free.
    expect(await pullAll(api, groupPath)).toEqual([]);
    const dead = await api('GET', `${groupPath}/dead-letters`);
    expect(dead.body.messages.map((m: { body: string }) => m.body)).toEqual(['poison', 'next-1', 'next-2']);
    await produce(api, topic, [{ body: 'later' }]);
    expect((await pullAll(api, groupPath)).map((m) => m.body)).toEqual(['later']);
  });
});
