import { topicKeyOf } from '../../../functions/domain/ports.js';
import { retentionAt } from '../../memory/stores.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  describeGroup,
  offsetAtTime,
  parsePosition,
  putGroup,
  requireGroup,
  resetGroup,
  resolvePosition,
  retryOnConflict,
} from '../../../functions/domain/groups/groups.js';
import { listDeadLetters, redriveDeadLetters } from '../../../functions/domain/groups/deadLetters.js';
import { LIMITS } from '../../../functions/domain/limits.js';
import { VersionConflict } from '../../../functions/domain/ports.js';
import { createTopic } from '../../../functions/domain/topics.js';
import { bodies, defaults, offsetsOf, rejection, T0, useClock, world } from '../../memory/fixtures.js';

const clock = useClock();

afterEach(() => vi.restoreAllMocks());

const http = { type: 'http' as const, url: 'https://example.com/hook', batchSize: 10, maxConcurrency: 2, timeoutSeconds: 5 };

describe('group settings', () => {
  it('creates a group once; the same PUT again changes nothing; new settings update it', async () => {
    const w = await world({ group: null });
    const created = await putGroup(w.stores, w.name, 'g', { ...defaults, startFrom: 'latest' }, T0);
    expect(created.created).toBe(true);
    expect(created.group).toMatchObject({ topic: w.name, name: 'g', topicEpoch: w.topic.epoch, mode: 'shared', startFrom: 'latest', startOffsets: [0], createdAt: T0 });
    expect(created.signingSecret).toBeUndefined();
    const update = vi.spyOn(w.stores.catalog, 'updateGroup');
    const same = await putGroup(w.stores, w.name, 'g', { ...defaults, startFrom: 'latest' });
    expect(same).toEqual({ created: false, group: created.group });
    expect(update).not.toHaveBeenCalled();
    const changed = await putGroup(w.stores, w.name, 'g', {
      ...defaults,
      maxDeliveries: 7,
      visibilitySeconds: 60,
      filter: { tags: { all: ['a'] } },
      transform: 'body',
    });
    expect(changed.group).toMatchObject({ maxDeliveries: 7, visibilitySeconds: 60, filter: { tags: { all: ['a'] } }, transform: 'body', startFrom: 'latest' });
    expect(update).toHaveBeenCalledTimes(1);
    // Rules left out of a PUT are removed.
    const plain = await putGroup(w.stores, w.name, 'g', defaults);
    expect(plain.group.filter).toBeUndefined();
    expect(plain.group.transform).toBeUndefined();
    expect((await w.stores.catalog.getGroup(w.name, 'g'))!.filter).toBeUndefined();
  });

  it("a group's mode cannot change; broadcast cannot be pushed; expressions are checked before anything is stored", async () => {
    const w = await world({ group: null });
    await putGroup(w.stores, w.name, 'g', defaults);
    expect(await rejection(putGroup(w.stores, w.name, 'g', { ...defaults, mode: 'ordered' }))).toMatchObject({ code: 'Conflict' });
    expect(await rejection(putGroup(w.stores, w.name, 'b', { ...defaults, mode: 'broadcast', delivery: http }))).toMatchObject({
      code: 'ValidationError',
    });
    const bad = await rejection(putGroup(w.stores, w.name, 'x', { ...defaults, filter: { expression: 'body.(' } }));
    expect(bad).toMatchObject({ code: 'ValidationError' });
    expect(bad.message).toContain('filter.expression');
    const badTransform = await rejection(putGroup(w.stores, w.name, 'x', { ...defaults, transform: '$$$(' }));
    expect(badTransform.message).toContain('transform');
    expect(await w.stores.catalog.getGroup(w.name, 'x')).toBeUndefined();
    expect(await w.stores.catalog.getGroup(w.name, 'b')).toBeUndefined();
    // A pull delivery is stored as no delivery; broadcast may say so.
    const pulled = await putGroup(w.stores, w.name, 'p', { ...defaults, mode: 'broadcast', delivery: { type: 'pull' } });
    expect(pulled.group.delivery).toBeUndefined();
  });

  it('an HTTP push group gets a signing secret when created, on rotation, and when it has none; never otherwise', async () => {
    const w = await world({ group: null });
    const created = await putGroup(w.stores, w.name, 'h', { ...defaults, delivery: http });
    expect(created.signingSecret).toMatch(/^whsec_/);
    expect(created.group.delivery).toEqual(http);
    const again = await putGroup(w.stores, w.name, 'h', { ...defaults, delivery: http });
    expect(again.signingSecret).toBeUndefined();
    const rotated = await putGroup(w.stores, w.name, 'h', { ...defaults, delivery: http, rotateSecret: true });
    expect(rotated.signingSecret).toMatch(/^whsec_/);
    expect(rotated.signingSecret).not.toBe(created.signingSecret);
    expect(await w.stores.secrets.get(`${w.topicKey}/h`)).toBe(rotated.signingSecret);
    w.stores.secrets.secrets.clear();
    expect((await putGroup(w.stores, w.name, 'h', { ...defaults, delivery: http })).signingSecret).toMatch(/^whsec_/);
    const lambda = await putGroup(w.stores, w.name, 'l', {
      ...defaults,
      delivery: { type: 'lambda', functionArn: 'arn:x', batchSize: 1, maxConcurrency: 1, timeoutSeconds: 1 },
    });
    expect(lambda.signingSecret).toBeUndefined();
  });

  it('a group left from an earlier incarnation of the topic does not exist for the new one, and is replaced', async () => {
    const w = await world();
    // The topic went (its group left behind, as a delete that died half way leaves it) and came back.
    await w.stores.catalog.deleteTopic(w.name);
    const { topic } = await createTopic(w.stores, w.name, { partitions: 1, retentionHours: 72 });
    expect(topic.epoch).not.toBe(w.topic.epoch);
    expect(await rejection(requireGroup(w.stores, w.name, w.group))).toMatchObject({ code: 'GroupNotFound' });
    const again = await putGroup(w.stores, w.name, w.group, defaults);
    expect(again.created).toBe(true);
    expect(again.group.topicEpoch).toBe(topic.epoch);
  });

  it('startFrom: earliest, latest, a time, or epoch ms (stored as ISO)', async () => {
    const w = await world({ group: null, retentionHours: 1 });
    await w.produce(bodies(2));
    clock.advance(60_000);
    await w.produce(bodies(3));
    clock.advance(60_000);
    const earliest = await putGroup(w.stores, w.name, 'e', { ...defaults, startFrom: 'earliest' });
    const latest = await putGroup(w.stores, w.name, 'l', { ...defaults, startFrom: 'latest' });
    const byTime = await putGroup(w.stores, w.name, 't', { ...defaults, startFrom: new Date(T0 + 30_000).toISOString() });
    const byMs = await putGroup(w.stores, w.name, 'm', { ...defaults, startFrom: T0 + 60_000 });
    expect([earliest, latest, byTime, byMs].map((g) => g.group.startOffsets)).toEqual([[0], [5], [2], [2]]);
    expect(byMs.group.startFrom).toBe(new Date(T0 + 60_000).toISOString());
    expect(await rejection(putGroup(w.stores, w.name, 'z', { ...defaults, startFrom: 'yesterday' }))).toMatchObject({ code: 'ValidationError' });
  });
});

describe('positions', () => {
  it('offsetAtTime finds the first segment produced at or after a time, by binary search', async () => {
    const w = await world({ group: null });
    // Segments at T0, T0+10s, ... each of 2 messages.
    for (let i = 0; i < 9; i++) {
      await w.produce(bodies(2));
      clock.advance(10_000);
    }
    const at = (ms: number) => offsetAtTime(w.stores, w.topic, 0, ms);
    expect(await at(T0 - 1)).toBe(0);
    expect(await at(T0)).toBe(0);
    expect(await at(T0 + 1)).toBe(2);
    expect(await at(T0 + 10_000)).toBe(2);
    expect(await at(T0 + 45_000)).toBe(10);
    expect(await at(T0 + 80_000)).toBe(16);
    expect(await at(T0 + 80_001)).toBe(18);
    expect(await at(T0 + 10_000_000)).toBe(18);
  });

  it('offsetAtTime skips over what retention removed', async () => {
    const w = await world({ group: null, retentionHours: 1 });
    await w.produce(bodies(2));
    clock.advance(26 * 3600_000);
    await w.produce(bodies(2));
    await w.produce(bodies(2));
    await retentionAt(w.stores, w.name);
    expect(await offsetAtTime(w.stores, w.topic, 0, T0)).toBe(2);
    expect(await offsetAtTime(w.stores, w.topic, 0, Date.now() + 1)).toBe(6);
  });

  it('offsetAtTime finds the first message at or after a time across holes TTL left anywhere', async () => {
    const w = await world({ group: null, retentionHours: 1 });
    const key = topicKeyOf(w.topic);
    // Twelve one-message segments an hour apart; TTL deletes expired items in no particular order.
    const holes = [[], [2, 3, 4], [1, 3, 5, 7, 9], [5, 6, 7, 8, 9], [10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]];
    for (const gone of holes) {
      const kept = [...Array(12).keys()].filter((b) => !gone.includes(b));
      w.stores.log.partitions.delete(`${key}#0`);
      for (const base of kept) w.stores.log.store(key, { partition: 0, base, producedAt: T0 + base * 3600_000, records: [{ b: base }] });
      for (let hour = -1; hour <= 12; hour++) {
        const time = T0 + hour * 3600_000 - 1;
        const found = await offsetAtTime(w.stores, w.topic, 0, time);
        // Nothing older than `time` at or after the answer, and nothing still there skipped before it.
        const firstKept = kept.find((b) => T0 + b * 3600_000 >= time) ?? 12;
        expect({ gone, hour, found: kept.find((b) => b >= found) ?? 12 }).toEqual({ gone, hour, found: firstKept });
        expect(found).toBeLessThanOrEqual(firstKept);
      }
    }
  });

  it('an explicit offset must lie within the partition', async () => {
    const w = await world({ group: null });
    await w.produce(bodies(3));
    expect(await resolvePosition(w.stores, w.topic, 0, { partition: 0, offset: 3 })).toBe(3);
    expect(await resolvePosition(w.stores, w.topic, 0, { partition: 0, offset: 0 })).toBe(0);
    const error = await rejection(resolvePosition(w.stores, w.topic, 0, { partition: 0, offset: 4 }));
    expect(error.message).toContain('0..3');
    expect(parsePosition('earliest')).toBe('earliest');
    expect(parsePosition('latest')).toBe('latest');
    expect(parsePosition(5)).toEqual({ time: 5 });
  });
});

describe('describe and reset', () => {
  it('lag counts what is neither acknowledged nor dead, per partition', async () => {
    const w = await world({ partitions: 2 });
    await w.produce([...bodies(3, { partition: 0 }), ...bodies(1, { partition: 1 })]);
    const got = await w.pull({ max: 100 });
    await w.ack(got.filter((d) => d.partition === 0 && d.offset === 0).map((d) => d.receipt));
    const view = await describeGroup(w.stores, w.name, w.group);
    expect(view.lag).toBe(3);
    expect(view.partitions).toEqual([
      { partition: 0, ackedThrough: 1, endOffset: 3, inFlight: 2, lag: 2 },
      { partition: 1, ackedThrough: 0, endOffset: 1, inFlight: 1, lag: 1 },
    ]);
    clock.advance(30_000);
    expect((await describeGroup(w.stores, w.name, w.group)).partitions.map((p) => p.inFlight)).toEqual([0, 0]);
    expect(await rejection(describeGroup(w.stores, w.name, 'nope'))).toMatchObject({ code: 'GroupNotFound' });
  });

  it('a group that starts after the end has no lag', async () => {
    const w = await world({ group: null });
    await w.produce(bodies(2));
    await putGroup(w.stores, w.name, 'late', { ...defaults, startFrom: 'latest' });
    const view = await describeGroup(w.stores, w.name, 'late');
    expect(view.partitions[0]).toEqual({ partition: 0, ackedThrough: 2, endOffset: 2, inFlight: 0, lag: 0 });
  });

  it('reset to latest, to an offset of one partition, and to a time; leases are dropped', async () => {
    const w = await world({ partitions: 2 });
    await w.produce([...bodies(3, { partition: 0 }), ...bodies(2, { partition: 1 })]);
    const leased = await w.pull();
    const latest = await resetGroup(w.stores, w.name, w.group, 'latest');
    expect(latest.partitions).toEqual([
      { partition: 0, offset: 3 },
      { partition: 1, offset: 2 },
    ]);
    // Below the new start with no lease: they count as acknowledged, and nothing comes back.
    expect(await w.ack(leased.map((d) => d.receipt))).toMatchObject({ settled: 5 });
    clock.advance(30_000);
    expect(await w.pull()).toEqual([]);
    const one = await resetGroup(w.stores, w.name, w.group, { partition: 1, offset: 1 });
    expect(one.partitions).toEqual([{ partition: 1, offset: 1 }]);
    expect((await w.pull()).map((d) => `${d.partition}.${d.offset}`)).toEqual(['1.1']);
    expect(await rejection(resetGroup(w.stores, w.name, w.group, { partition: 2, offset: 0 }))).toMatchObject({ code: 'ValidationError' });
    const byTime = await resetGroup(w.stores, w.name, w.group, { time: T0 });
    expect(byTime.partitions.map((p) => p.offset)).toEqual([0, 0]);
  });

  it('reset retries a progress write that lost a race', async () => {
    const w = await world();
    await w.produce(bodies(2));
    await w.pull();
    const real = w.stores.groupState.putProgress.bind(w.stores.groupState);
    vi.spyOn(w.stores.groupState, 'putProgress')
      .mockImplementationOnce(async () => {
        throw new VersionConflict();
      })
      .mockImplementation(real);
    await resetGroup(w.stores, w.name, w.group, 'earliest');
    expect(offsetsOf(await w.pull())).toEqual([0, 1]);
  });

  it('retryOnConflict gives up with Throttled after its attempts, and passes other errors on at once', async () => {
    vi.useRealTimers();
    let calls = 0;
    const error = await rejection(
      retryOnConflict(async () => {
        calls++;
        throw new VersionConflict();
      }, 3),
    );
    expect(error).toMatchObject({ code: 'Throttled' });
    expect(calls).toBe(3);
    calls = 0;
    const boom = new Error('boom');
    expect(
      await rejection(
        retryOnConflict(async () => {
          calls++;
          throw boom;
        }),
      ),
    ).toBe(boom);
    expect(calls).toBe(1);
    expect(await retryOnConflict(async () => 7)).toBe(7);
  });
});

describe('dead letters', () => {
  async function withDead(n: number, partitions = 1) {
    const w = await world({ partitions, group: { maxDeliveries: 1 } });
    for (let p = 0; p < partitions; p++) await w.produce(bodies(n, { partition: p }));
    while ((await w.pull()).length > 0);
    clock.advance(30_000);
    while ((await listDeadLetters(w.stores, w.name, w.group, 1000)).letters.length < n * partitions) await w.pull();
    return w;
  }

  it('lists oldest first and pages with next; a foreign cursor is refused', async () => {
    const w = await withDead(3);
    const first = await listDeadLetters(w.stores, w.name, w.group, 2);
    expect(first.letters.map((l) => l.offset)).toEqual([0, 1]);
    expect(first.next).toBeDefined();
    const rest = await listDeadLetters(w.stores, w.name, w.group, 2, first.next);
    expect(rest.letters.map((l) => l.offset)).toEqual([2]);
    expect(rest.next).toBeUndefined();
    expect(rest.letters[0]).toMatchObject({ deliveryCount: 1, reason: 'maxDeliveries (1) reached' });
    expect(await rejection(listDeadLetters(w.stores, w.name, w.group, 2, 'x'))).toMatchObject({ code: 'ValidationError' });
  });

  it('redrive brings every letter back as a fresh delivery, across partitions and batches', async () => {
    const w = await withDead(30, 2);
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 60, deferred: 0 });
    expect((await listDeadLetters(w.stores, w.name, w.group, 100)).letters).toEqual([]);
    const back = await w.pull({ max: 100 });
    expect(back).toHaveLength(60);
    expect(back.every((d) => d.deliveryCount === 1)).toBe(true);
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 0, deferred: 0 });
  });

  it('after a reset moved the group back, redriven offsets come from the log once, their letters dropped', async () => {
    const w = await withDead(2);
    await resetGroup(w.stores, w.name, w.group, 'earliest');
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 2, deferred: 0 });
    expect((await listDeadLetters(w.stores, w.name, w.group, 100)).letters).toEqual([]);
    expect(offsetsOf(await w.pull())).toEqual([0, 1]);
  });

  it('the same offset dead twice (a reset between) comes back once', async () => {
    const w = await withDead(1);
    await resetGroup(w.stores, w.name, w.group, 'earliest');
    await w.pull();
    clock.advance(30_000);
    await w.pull();
    await resetGroup(w.stores, w.name, w.group, 'latest');
    expect((await listDeadLetters(w.stores, w.name, w.group, 100)).letters.map((l) => l.offset)).toEqual([0, 0]);
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 2, deferred: 0 });
    expect((await w.pull()).map((d) => d.offset)).toEqual([0]);
    expect(await w.pull()).toEqual([]);
  });

  it('letters beyond the in-flight window stay dead until there is room', async () => {
    const w = await withDead(3);
    // Fill the window with the next messages.
    await w.produce(bodies(LIMITS.maxInFlightPerPartition - 1));
    while ((await w.pull()).length > 0);
    expect(await redriveDeadLetters(w.stores, w.name, w.group)).toEqual({ redriven: 1, deferred: 2 });
    expect((await listDeadLetters(w.stores, w.name, w.group, 100)).letters.map((l) => l.offset)).toEqual([1, 2]);
  });

  it('a redrive stops at its deadline', async () => {
    const w = await withDead(2);
    expect(await redriveDeadLetters(w.stores, w.name, w.group, Date.now() - 1)).toEqual({ redriven: 0, deferred: 0 });
  });
});
