import { afterEach, describe, expect, it, vi } from 'vitest';
import { topicKeyOf, type Topic } from '../../../functions/domain/ports.js';
import { memoryStores, type MemoryStores } from '../../memory/stores.js';
import { T0, unique } from '../../memory/fixtures.js';

/**
 * The retention pass with TTL at its edges (functions/domain/log/retention.ts, log/expiry.ts; docs/retention.md,
 * "TTL"): the thresholds to the second, where a deadline stops it, where a walk ends, what each pass costs.
 *
 * Every test loads the retention module afresh inside the test (`load`). The module-level definitions (the
 * key order, the "untouchable" shortcut, the grace and protection constants of log/expiry.ts) then run within
 * a test, so mutation testing counts these tests as covering them; loaded once at import time they are
 * "static" and Stryker would try them only against the few tests that happen to load the module lazily.
 */
async function load() {
  vi.resetModules();
  return import('../../../functions/domain/log/retention.js');
}

afterEach(() => vi.restoreAllMocks());

const HOUR = 3_600_000;
const SECOND = 1000;
/** The expiry the docs give a segment, written out here rather than taken from log/expiry.ts: produce time (rounded up to the second) + retention + one day. */
const expiryOf = (producedAt: number, retentionHours: number) => Math.ceil(producedAt / 1000) + retentionHours * 3600 + 86_400;
/** The pass protects a newest segment whose expiry is less than 12 hours away. */
const PROTECTION = 12 * 3600;

interface Layout {
  readonly producedAt: number;
  /** Omitted: written without expiry (before TTL, or a protected newest segment since overtaken). */
  readonly expiresAt?: number;
  readonly partition?: number;
}

/** A topic whose segments are written straight into the log store (no call counted), one base after another per partition. */
async function topicWith(stores: MemoryStores, segments: readonly Layout[], settings: Partial<Topic> = {}) {
  const topic: Topic = { name: unique('edge'), partitions: 1, retentionHours: 1, createdAt: T0, epoch: unique('e'), ...settings };
  await stores.catalog.createTopic(topic);
  const next = new Map<number, number>();
  for (const s of segments) {
    const partition = s.partition ?? 0;
    const base = next.get(partition) ?? 0;
    next.set(partition, base + 1);
    stores.log.store(topicKeyOf(topic), { partition, base, producedAt: s.producedAt, records: [{ b: base }], ...(s.expiresAt !== undefined ? { expiresAt: s.expiresAt } : {}) });
  }
  return topic;
}

const bases = (stores: MemoryStores, topic: Topic, partition = 0) =>
  (stores.log.partitions.get(`${topicKeyOf(topic)}#${partition}`) ?? []).map((s) => s.base);
const storedExpiry = (stores: MemoryStores, topic: Topic, base: number, partition = 0) => stores.log.expiryOf(topicKeyOf(topic), partition, base);
const logCalls = (stores: MemoryStores) => stores.calls.filter((c) => c.startsWith('log.'));

/** A deadline clock that is late from its `k`th reading on (the pass reads it before every call it starts). */
const lateFrom = (k: number) => {
  let readings = 0;
  return { deadline: 5, clock: () => (++readings >= k ? 5 : 0), concurrency: 1 };
};

describe('the expiry a pass writes', () => {
  it('an expiry earlier than the retention gives moves to produce time (rounded up to the second) + retention + exactly one day', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const producedAt = T0 + 500;
    // Written for a 1-hour retention; the topic keeps 24 hours.
    const topic = await topicWith(stores, [{ producedAt, expiresAt: expiryOf(producedAt, 1) }, { producedAt: T0 + 2 * HOUR, expiresAt: expiryOf(T0 + 2 * HOUR, 24) }], { retentionHours: 24 });
    const pass = await trimAllTopics(stores, T0 + 3 * HOUR);
    expect(pass).toEqual({ deleted: 0, protected: 0, extended: 1, complete: true, topics: 1, started: 1, forgotten: 0 });
    // T0 is a whole second: 500 ms round up to the next second.
    expect(storedExpiry(stores, topic, 0)).toBe(T0 / 1000 + 1 + 24 * 3600 + 86_400);
    expect(storedExpiry(stores, topic, 1)).toBe(T0 / 1000 + 2 * 3600 + 24 * 3600 + 86_400);
  });
});

describe('the newest segment: protected once its expiry is less than 12 hours away, to the second', () => {
  it('with an older segment that does not make the partition untouchable, the threshold is the tail\u2019s own', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const tailAt = T0 + 2 * HOUR;
    const tailExpiry = expiryOf(tailAt, 1);
    const topic = await topicWith(stores, [
      { producedAt: T0, expiresAt: expiryOf(T0, 1) },
      { producedAt: tailAt, expiresAt: tailExpiry },
    ]);
    // Exactly 12 hours before the tail expires: read, and left alone.
    stores.calls.length = 0;
    const exactly = await trimAllTopics(stores, (tailExpiry - PROTECTION) * SECOND);
    expect(exactly).toMatchObject({ protected: 0, deleted: 0, extended: 0, complete: true });
    expect(logCalls(stores)).toEqual(['log.segmentKeysFrom', 'log.tail']);
    expect(storedExpiry(stores, topic, 1)).toBe(tailExpiry);
    // A second later it is within 12 hours: its expiry goes; the older segment is TTL's and keeps its own.
    stores.calls.length = 0;
    const later = await trimAllTopics(stores, (tailExpiry - PROTECTION + 1) * SECOND);
    expect(later).toMatchObject({ protected: 1, deleted: 0, extended: 0, complete: true });
    expect(logCalls(stores)).toEqual(['log.segmentKeysFrom', 'log.tail', 'log.setSegmentExpiry']);
    expect(storedExpiry(stores, topic, 1)).toBeUndefined();
    expect(storedExpiry(stores, topic, 0)).toBe(expiryOf(T0, 1));
    expect(bases(stores, topic)).toEqual([0, 1]);
  });
});

describe('a partition whose oldest segment is younger than 13 hours costs one read', () => {
  // 13 hours: the shortest retention (1 hour) + the day of grace - the 12 hours of protection.
  async function young(retentionHours: number) {
    const stores = memoryStores();
    const topic = await topicWith(
      stores,
      [
        { producedAt: T0, expiresAt: expiryOf(T0, retentionHours) },
        { producedAt: T0 + 1000, expiresAt: expiryOf(T0 + 1000, retentionHours) },
      ],
      { retentionHours },
    );
    return { stores, topic };
  }

  it('13 hours old to the second: one read, and the pass is complete (no cursor left)', async () => {
    const { trimAllTopics } = await load();
    for (const retentionHours of [1, 72]) {
      const { stores, topic } = await young(retentionHours);
      const pass = await trimAllTopics(stores, T0 + 13 * HOUR);
      expect(pass).toEqual({ deleted: 0, protected: 0, extended: 0, complete: true, topics: 1, started: 1, forgotten: 0 });
      expect(logCalls(stores)).toEqual(['log.segmentKeysFrom']);
      expect(stores.catalog.retentionCursor).toBeUndefined();
      expect(bases(stores, topic)).toEqual([0, 1]);
    }
  });

  it('half an hour younger than that: one read too', async () => {
    const { trimAllTopics } = await load();
    const { stores } = await young(1);
    await trimAllTopics(stores, T0 + 12.5 * HOUR);
    expect(logCalls(stores)).toEqual(['log.segmentKeysFrom']);
  });

  it('a second older: the newest segment is read as well (and, 12 hours from expiring, left alone)', async () => {
    const { trimAllTopics } = await load();
    const { stores, topic } = await young(1);
    const pass = await trimAllTopics(stores, T0 + 13 * HOUR + SECOND);
    expect(pass).toMatchObject({ deleted: 0, protected: 0, extended: 0, complete: true });
    expect(logCalls(stores)).toEqual(['log.segmentKeysFrom', 'log.tail']);
    expect(storedExpiry(stores, topic, 1)).toBe(expiryOf(T0 + 1000, 1));
  });
});

describe('a segment the eventually consistent listing still shows but the log no longer has', () => {
  it('no newest segment on the strong read: the pass writes nothing for the partition and completes', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const topic = await topicWith(stores, [{ producedAt: T0 }, { producedAt: T0 + 1000 }]);
    stores.replica.freeze();
    // TTL (or another pass) deleted both; the replica the listing reads has not caught up.
    stores.log.partitions.set(`${topicKeyOf(topic)}#0`, []);
    const pass = await trimAllTopics(stores, T0 + 48 * HOUR);
    expect(pass).toEqual({ deleted: 0, protected: 0, extended: 0, complete: true, topics: 1, started: 1, forgotten: 0 });
    expect(logCalls(stores)).toEqual(['log.segmentKeysFrom', 'log.tail']);
    expect(stores.catalog.retentionCursor).toBeUndefined();
  });
});

describe('where a deadline stops the TTL work', () => {
  it('between reading the newest segment and protecting it: nothing written, the pass is unfinished and hands on', async () => {
    const { trimAllTopics } = await load();
    const setup = async () => {
      const stores = memoryStores();
      const tailAt = T0 + HOUR;
      const topic = await topicWith(stores, [
        { producedAt: T0, expiresAt: expiryOf(T0, 1) },
        { producedAt: tailAt, expiresAt: expiryOf(tailAt, 1) },
      ]);
      return { stores, topic, now: (expiryOf(tailAt, 1) - PROTECTION + 1) * SECOND };
    };
    // Clock readings: (1) before starting the partition, (2) before its oldest segment, (3) before the
    // newest, (4) before the protecting write, (5) before the next partition.
    const stopped = await setup();
    const late = await trimAllTopics(stopped.stores, stopped.now, lateFrom(4));
    expect(late).toEqual({ deleted: 0, protected: 0, extended: 0, complete: false, topics: 1, started: 1, forgotten: 0 });
    expect(storedExpiry(stopped.stores, stopped.topic, 1)).toBe(expiryOf(T0 + HOUR, 1));
    expect(stopped.stores.catalog.retentionCursor).toBe(topicKeyOf(stopped.topic));

    const inTime = await setup();
    const done = await trimAllTopics(inTime.stores, inTime.now, lateFrom(5));
    expect(done).toEqual({ deleted: 0, protected: 1, extended: 0, complete: true, topics: 1, started: 1, forgotten: 0 });
    expect(storedExpiry(inTime.stores, inTime.topic, 1)).toBeUndefined();
    expect(inTime.stores.catalog.retentionCursor).toBeUndefined();
  });

  it('before moving an expiry on: nothing written, the pass is unfinished', async () => {
    const { trimAllTopics } = await load();
    const setup = async () => {
      const stores = memoryStores();
      const topic = await topicWith(
        stores,
        [
          { producedAt: T0, expiresAt: expiryOf(T0, 1) },
          { producedAt: T0 + HOUR, expiresAt: expiryOf(T0 + HOUR, 24) },
          { producedAt: T0 + 2 * HOUR, expiresAt: expiryOf(T0 + 2 * HOUR, 24) },
        ],
        { retentionHours: 24 },
      );
      return { stores, topic };
    };
    // Readings: (1) partition, (2) oldest, (3) newest, (4) the key page, (5) the expiry update, (6) the next partition.
    const stopped = await setup();
    const late = await trimAllTopics(stopped.stores, T0 + 3 * HOUR, lateFrom(5));
    expect(late).toEqual({ deleted: 0, protected: 0, extended: 0, complete: false, topics: 1, started: 1, forgotten: 0 });
    expect(storedExpiry(stopped.stores, stopped.topic, 0)).toBe(expiryOf(T0, 1));

    const inTime = await setup();
    const done = await trimAllTopics(inTime.stores, T0 + 3 * HOUR, lateFrom(6));
    expect(done).toEqual({ deleted: 0, protected: 0, extended: 1, complete: true, topics: 1, started: 1, forgotten: 0 });
    expect(storedExpiry(inTime.stores, inTime.topic, 0)).toBe(expiryOf(T0, 24));
  });

  it('inside the last partition of the pass: the pass is unfinished although the partitions before it finished', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const suffix = unique('');
    const layout = [{ producedAt: T0 }, { producedAt: T0 + 10 * HOUR, expiresAt: expiryOf(T0 + 10 * HOUR, 1) }];
    const first = await topicWith(stores, layout, { name: `a${suffix}` });
    const last = await topicWith(stores, layout, { name: `b${suffix}` });
    // Readings: the first topic (1) partition, (2) oldest, (3) newest, (4) key page, (5) delete; the last
    // topic (6) partition, (7) oldest, (8) newest: late there.
    const pass = await trimAllTopics(stores, T0 + 11 * HOUR, lateFrom(8));
    expect(pass).toEqual({ deleted: 1, protected: 0, extended: 0, complete: false, topics: 2, started: 2, forgotten: 0 });
    expect(bases(stores, first)).toEqual([1]);
    expect(bases(stores, last)).toEqual([0, 1]);
    expect(stores.catalog.retentionCursor).toBe(topicKeyOf(last));
  });
});

describe('where a walk ends', () => {
  it('at the first segment TTL takes, even at the start of a later key page: nothing after it is deleted (no hole), and no further page is read', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const at = (base: number) => T0 + base * SECOND;
    // 0..99: without expiry (overtaken protected segments, or from before TTL), past retention: deleted.
    // 100: TTL's, and so is everything after it as far as the pass is concerned, though 150 and 200 have no expiry.
    const layout: Layout[] = Array.from({ length: 201 }, (_, base) =>
      base < 100 || base === 150 || base === 200 ? { producedAt: at(base) } : { producedAt: at(base), expiresAt: expiryOf(at(base), 1) },
    );
    layout.push({ producedAt: T0 + 9 * HOUR, expiresAt: expiryOf(T0 + 9 * HOUR, 1) });
    const topic = await topicWith(stores, layout);
    const pass = await trimAllTopics(stores, T0 + 10 * HOUR);
    expect(pass).toMatchObject({ deleted: 100, protected: 0, extended: 0, complete: true });
    expect(bases(stores, topic)).toEqual(Array.from({ length: 102 }, (_, i) => 100 + i));
    // The probe, the page 0..99, the page from 100 (which starts with TTL's segment); four deletes of 25.
    expect(logCalls(stores)).toEqual([
      'log.segmentKeysFrom',
      'log.tail',
      'log.segmentKeysFrom',
      ...Array.from({ length: 4 }, () => 'log.deleteSegments'),
      'log.segmentKeysFrom',
    ]);
  });

  it('at the newest segment, when it closes a full key page: no further page is read', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    // 99 old segments without expiry, then the newest (base 99, the 100th key): one full page.
    const layout: Layout[] = Array.from({ length: 99 }, (_, base) => ({ producedAt: T0 + base }));
    layout.push({ producedAt: T0 + 9 * HOUR, expiresAt: expiryOf(T0 + 9 * HOUR, 1) });
    const topic = await topicWith(stores, layout);
    const pass = await trimAllTopics(stores, T0 + 10 * HOUR);
    expect(pass).toMatchObject({ deleted: 99, protected: 0, complete: true });
    expect(bases(stores, topic)).toEqual([99]);
    expect(logCalls(stores).filter((c) => c === 'log.segmentKeysFrom')).toHaveLength(2);
  });
});

describe('the order of a pass over topics and graves', () => {
  it('each unfinished pass starts after the topic the last one started, in key order with graves among topics, and wraps', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const suffix = unique('');
    const old = [{ producedAt: T0 }, { producedAt: T0 }];
    const b = await topicWith(stores, old, { name: `b${suffix}` });
    const c = await topicWith(stores, old, { name: `c${suffix}` });
    const d = await topicWith(stores, old, { name: `d${suffix}` });
    await stores.catalog.buryTopic(c);
    await stores.catalog.deleteTopic(c.name);
    // Listed live topics first (b, d), then graves (c); worked in key order: b, c, d.
    const cursors: string[] = [];
    for (let i = 0; i < 4; i++) {
      // Late from the third clock reading: each pass starts one partition and no more.
      const pass = await trimAllTopics(stores, T0, lateFrom(3));
      expect(pass).toMatchObject({ complete: false, topics: 3, started: 1 });
      cursors.push(stores.catalog.retentionCursor!);
    }
    expect(cursors).toEqual([b, c, d, b].map(topicKeyOf));
  });
});

describe('graves', () => {
  it('an emptied grave is forgotten after one strongly consistent look at each of its partitions', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const dead = await topicWith(stores, [{ producedAt: T0 }, { partition: 1, producedAt: T0 }], { partitions: 2 });
    await stores.catalog.buryTopic(dead);
    await stores.catalog.deleteTopic(dead.name);
    expect(await trimAllTopics(stores, T0)).toMatchObject({ deleted: 2, forgotten: 0, complete: true });
    stores.calls.length = 0;
    expect(await trimAllTopics(stores, T0)).toMatchObject({ deleted: 0, forgotten: 1, complete: true });
    expect(logCalls(stores)).toEqual(['log.segmentKeysFrom', 'log.segmentKeysFrom', 'log.head', 'log.head']);
    expect(await stores.catalog.listBuriedTopics()).toEqual([]);
  });
});

describe('a pass whose resume point cannot be written', () => {
  it('fails with that error, and what it deleted stays deleted', async () => {
    const { trimAllTopics } = await load();
    const stores = memoryStores();
    const suffix = unique('');
    const layout = [{ producedAt: T0 }, { producedAt: T0 + 10 * HOUR, expiresAt: expiryOf(T0 + 10 * HOUR, 1) }];
    const first = await topicWith(stores, layout, { name: `a${suffix}` });
    const second = await topicWith(stores, layout, { name: `b${suffix}` });
    const boom = new Error('catalog throttled');
    vi.spyOn(stores.catalog, 'putRetentionCursor').mockRejectedValue(boom);
    // Readings: the first topic (1) partition, (2) oldest, (3) newest, (4) key page, (5) delete; (6) before the second: late.
    await expect(trimAllTopics(stores, T0 + 11 * HOUR, lateFrom(6))).rejects.toBe(boom);
    expect(bases(stores, first)).toEqual([1]);
    expect(bases(stores, second)).toEqual([0, 1]);
    expect(stores.catalog.retentionCursor).toBeUndefined();
  });
});
