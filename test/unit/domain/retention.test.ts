import { afterEach, describe, expect, it, vi } from 'vitest';
import { clearBuriedTopic, trimAllTopics, trimTopic } from '../../../functions/domain/log/retention.js';
import { topicKeyOf, type Topic } from '../../../functions/domain/ports.js';
import { memoryStores, type MemoryStores } from '../../memory/stores.js';
import { T0, unique, useClock } from '../../memory/fixtures.js';

useClock();

afterEach(() => vi.restoreAllMocks());

const HOUR = 3600_000;

async function topicWith(stores: MemoryStores, segments: Array<{ partition?: number; producedAt: number; count?: number }>, settings: Partial<Topic> = {}) {
  const topic: Topic = { name: unique('r'), partitions: 2, retentionHours: 1, createdAt: T0, epoch: unique('e'), ...settings };
  await stores.catalog.createTopic(topic);
  const next = new Map<number, number>();
  for (const s of segments) {
    const p = s.partition ?? 0;
    const base = next.get(p) ?? 0;
    const count = s.count ?? 1;
    await stores.log.appendSegment(topicKeyOf(topic), { partition: p, base, producedAt: s.producedAt, records: Array.from({ length: count }, () => ({ b: 1 })) }, [], 0);
    next.set(p, base + count);
  }
  return topic;
}

const bases = (stores: MemoryStores, topic: Topic, partition = 0) =>
  (stores.log.partitions.get(`${topicKeyOf(topic)}#${partition}`) ?? []).map((s) => s.base);

describe('retention', () => {
  it('deletes segments older than the retention, oldest first, and never the newest of a partition', async () => {
    const stores = memoryStores();
    const topic = await topicWith(stores, [
      { producedAt: T0, count: 2 },
      { producedAt: T0 + 10 },
      { producedAt: T0 + 2 * HOUR },
      { partition: 1, producedAt: T0 },
    ]);
    expect(await trimTopic(stores, topic.name, T0 + HOUR + 11)).toBe(2);
    expect(bases(stores, topic)).toEqual([3]);
    // The only (newest) segment of partition 1 stays, however old.
    expect(bases(stores, topic, 1)).toEqual([0]);
  });

  it('the threshold: a segment exactly as old as the retention stays; a millisecond older goes', async () => {
    const stores = memoryStores();
    const topic = await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 + 5 * HOUR }], { retentionHours: 3 });
    expect(await trimTopic(stores, topic.name, T0 + 3 * HOUR)).toBe(0);
    expect(await trimTopic(stores, topic.name, T0 + 3 * HOUR - 1)).toBe(0);
    expect(await trimTopic(stores, topic.name, T0 + 3 * HOUR + 1)).toBe(1);
    expect(bases(stores, topic)).toEqual([1]);
  });

  it('stops at the first segment to keep, even when older ones follow it (no holes)', async () => {
    const stores = memoryStores();
    const topic = await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 + 3 * HOUR }, { producedAt: T0 }, { producedAt: T0 }]);
    expect(await trimTopic(stores, topic.name, T0 + 2 * HOUR)).toBe(1);
    expect(bases(stores, topic)).toEqual([1, 2, 3]);
  });

  it('pages through many expired segments, 25 to a delete call', async () => {
    const stores = memoryStores();
    const topic = await topicWith(stores, Array.from({ length: 251 }, () => ({ producedAt: T0 })), { partitions: 1 });
    const deletes = vi.spyOn(stores.log, 'deleteSegments');
    const listing = vi.spyOn(stores.log, 'segmentKeysFrom');
    expect(await trimTopic(stores, topic.name, T0 + 2 * HOUR)).toBe(250);
    expect(bases(stores, topic)).toEqual([250]);
    expect(deletes.mock.calls.map((c) => c[2].length)).toEqual(Array.from({ length: 10 }, () => 25));
    // The probe, then pages of 100 keys: 0..99, 100..199, 200..250.
    expect(listing.mock.calls.map((c) => [c[2], c[3]])).toEqual([
      [0, 1],
      [0, 100],
      [100, 100],
      [200, 100],
    ]);
  });

  it('a missing topic trims nothing', async () => {
    expect(await trimTopic(memoryStores(), unique('none'), T0)).toBe(0);
  });

  it('a pass covers every topic and grave, forgets graves found empty, and leaves no cursor when complete', async () => {
    const stores = memoryStores();
    const live = await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 }]);
    const dead = await topicWith(stores, [{ producedAt: T0 + 10 * HOUR }, { partition: 1, producedAt: T0 }]);
    await stores.catalog.buryTopic(dead);
    await stores.catalog.deleteTopic(dead.name);
    const first = await trimAllTopics(stores, T0 + 2 * HOUR);
    expect(first).toEqual({ deleted: 3, complete: true, topics: 2, started: 2, forgotten: 0, protected: 0, extended: 0 });
    expect(bases(stores, live)).toEqual([1]);
    expect(bases(stores, dead)).toEqual([]);
    expect(bases(stores, dead, 1)).toEqual([]);
    const second = await trimAllTopics(stores, T0 + 2 * HOUR);
    expect(second).toEqual({ deleted: 0, complete: true, topics: 2, started: 2, forgotten: 1, protected: 0, extended: 0 });
    expect(await stores.catalog.listBuriedTopics()).toEqual([]);
    expect(stores.catalog.retentionCursor).toBeUndefined();
  });

  it('a grave is not forgotten while a segment is still there (a late produce)', async () => {
    const stores = memoryStores();
    const dead = await topicWith(stores, [{ producedAt: T0 }]);
    await stores.catalog.buryTopic(dead);
    const head = vi.spyOn(stores.log, 'head').mockResolvedValueOnce({ base: 5, count: 1, producedAt: T0 });
    expect(await clearBuriedTopic(stores, dead)).toBe(1);
    expect((await trimAllTopics(stores, T0)).forgotten).toBe(0);
    expect(head).toHaveBeenCalled();
    expect(await stores.catalog.listBuriedTopics()).toHaveLength(1);
    expect((await trimAllTopics(stores, T0)).forgotten).toBe(1);
  });

  it('a pass stops starting work at its deadline, records where, and the next pass resumes after it', async () => {
    const stores = memoryStores();
    const topics = [];
    for (let i = 0; i < 3; i++) topics.push(await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 }], { partitions: 1 }));
    const sorted = [...topics].sort((a, b) => (topicKeyOf(a) < topicKeyOf(b) ? -1 : 1));
    // A clock that says "late" after the first partition has been probed.
    let ticks = 0;
    const clock = () => (ticks++ < 3 ? 0 : 10);
    const stopped = await trimAllTopics(stores, T0 + 2 * HOUR, { deadline: 5, clock, concurrency: 1 });
    expect(stopped.complete).toBe(false);
    expect(stopped.started).toBe(1);
    expect(stores.catalog.retentionCursor).toBe(topicKeyOf(sorted[0]!));
    const resumed = await trimAllTopics(stores, T0 + 2 * HOUR, { concurrency: 1 });
    expect(resumed.complete).toBe(true);
    expect(resumed.deleted).toBe(3 - stopped.deleted);
    for (const t of topics) expect(bases(stores, t)).toEqual([1]);
  });

  it('a cursor past every topic wraps to the first', async () => {
    const stores = memoryStores();
    const t = await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 }], { partitions: 1 });
    stores.catalog.retentionCursor = '~~~';
    expect((await trimAllTopics(stores, T0 + 2 * HOUR)).deleted).toBe(1);
    expect(bases(stores, t)).toEqual([1]);
  });

  it('a deadline already past starts nothing', async () => {
    const stores = memoryStores();
    await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 }]);
    const result = await trimAllTopics(stores, T0 + 2 * HOUR, { deadline: 0, clock: () => 1 });
    expect(result).toMatchObject({ deleted: 0, complete: false, started: 0 });
    expect(stores.catalog.retentionCursor).toBeUndefined();
  });

  it('an error in one partition does not stop the others; the pass reports it at the end', async () => {
    const stores = memoryStores();
    const topic = await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 }, { partition: 1, producedAt: T0 }, { partition: 1, producedAt: T0 }]);
    const real = stores.log.tail.bind(stores.log);
    const boom = new Error('throttled');
    vi.spyOn(stores.log, 'tail').mockImplementation(async (key, p) => {
      if (p === 0) throw boom;
      return real(key, p);
    });
    await expect(trimAllTopics(stores, T0 + 2 * HOUR)).rejects.toBe(boom);
    expect(bases(stores, topic, 0)).toEqual([0, 1]);
    expect(bases(stores, topic, 1)).toEqual([1]);
  });

  it('partitions are trimmed several at a time', async () => {
    const stores = memoryStores();
    await topicWith(
      stores,
      Array.from({ length: 8 }, (_, p) => [{ partition: p, producedAt: T0 }, { partition: p, producedAt: T0 }]).flat(),
      { partitions: 8 },
    );
    let running = 0;
    let most = 0;
    const real = stores.log.segmentKeysFrom.bind(stores.log);
    vi.spyOn(stores.log, 'segmentKeysFrom').mockImplementation(async (...args) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      running--;
      return real(...args);
    });
    expect((await trimAllTopics(stores, T0 + 2 * HOUR, { concurrency: 3 })).deleted).toBe(8);
    expect(most).toBe(3);
  });
});

describe('retention: where a deadline stops a pass', () => {
  /** One topic of one partition with 60 expired segments before its newest. */
  async function sixty(stores: MemoryStores) {
    return topicWith(stores, [...Array.from({ length: 60 }, () => ({ producedAt: T0 })), { producedAt: T0 + 10 * HOUR }], { partitions: 1 });
  }

  it('checks the deadline before every call: what each stopping point leaves', async () => {
    // The pass reads the clock before starting the partition (1), before its oldest segment (2), before the
    // tail (3), before the key page (4) and before each delete of 25 (5, 6, 7). Late from check k:
    const expected = [
      { deleted: 0, complete: false, started: 0 },
      { deleted: 0, complete: false, started: 1 },
      { deleted: 0, complete: false, started: 1 },
      { deleted: 0, complete: false, started: 1 },
      { deleted: 0, complete: false, started: 1 },
      { deleted: 25, complete: false, started: 1 },
      { deleted: 50, complete: false, started: 1 },
      { deleted: 60, complete: true, started: 1 },
    ];
    for (const [i, outcome] of expected.entries()) {
      const stores = memoryStores();
      const topic = await sixty(stores);
      let ticks = 0;
      // Late from the (i + 1)th check on: the clock reaches the deadline exactly.
      const clock = () => (++ticks > i ? 5 : 0);
      const result = await trimAllTopics(stores, T0 + 2 * HOUR, { deadline: 5, clock, concurrency: 1 });
      expect({ k: i + 1, ...result }).toEqual({ k: i + 1, ...outcome, topics: 1, forgotten: 0, protected: 0, extended: 0 });
      expect(bases(stores, topic)).toHaveLength(61 - outcome.deleted);
    }
  });

  it('a segment exactly as old as the retention stays even behind an older one', async () => {
    const stores = memoryStores();
    const cutoff = T0 + 10 * HOUR - HOUR;
    const topic = await topicWith(stores, [{ producedAt: cutoff - 1 }, { producedAt: cutoff }, { producedAt: T0 + 10 * HOUR }], { partitions: 1 });
    expect(await trimTopic(stores, topic.name, T0 + 10 * HOUR)).toBe(1);
    expect(bases(stores, topic)).toEqual([1, 2]);
  });

  it('orders topics and graves together by key, so the cursor hands on in that order', async () => {
    const stores = memoryStores();
    const suffix = unique('');
    const live = await topicWith(stores, [{ producedAt: T0 }], { name: `b${suffix}`, partitions: 1 });
    const grave = await topicWith(stores, [{ producedAt: T0 }], { name: `a${suffix}`, partitions: 1 });
    await stores.catalog.buryTopic(grave);
    await stores.catalog.deleteTopic(grave.name);
    const startsOne = () => {
      let ticks = 0;
      return { deadline: 5, clock: () => (++ticks > 2 ? 5 : 0), concurrency: 1 };
    };
    expect((await trimAllTopics(stores, T0, startsOne())).started).toBe(1);
    expect(stores.catalog.retentionCursor).toBe(topicKeyOf(grave));
    await trimAllTopics(stores, T0, startsOne());
    expect(stores.catalog.retentionCursor).toBe(topicKeyOf(live));
    await trimAllTopics(stores, T0, startsOne());
    expect(stores.catalog.retentionCursor).toBe(topicKeyOf(grave));
  });
});
