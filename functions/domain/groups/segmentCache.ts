import type { Segment } from '../messages.js';
import type { LogStore } from '../ports.js';

/**
 * Segments a warm process has read, for the pulls that come after: a segment never changes once written
 * (offsets are never reused: retention never removes a partition's newest segment, and a topic's next
 * incarnation has other keys), so a read of the log can be answered from what was read before, as long as
 * the answer is exactly what the store would answer:
 * - "the segments from base b on" (segmentsFrom) comes from here only when the first segment at or after b
 *   is known (it starts at b, or right after a known segment that holds b) and so are the following ones,
 *   back to back, as many as asked; else the store is asked for what is missing, after the known run;
 * - "the segment holding offset o" (segmentAtOrBefore) when a known segment holds o.
 * Strongly consistent segmentsFrom reads (a reader confirming a hole that retention made) always go to the store.
 *
 * Retention is what could make a known segment wrong (gone from the store). A known segment is served only
 * while it is younger than the topic's retention by RETENTION_MARGIN_MS: the retention pass deletes only
 * segments older than the retention by its own clock, and DynamoDB TTL only segments older than the retention
 * and a day (log/expiry.ts), so none of those served can be gone, whichever process deleted them (clocks
 * agreeing within the margin). Deletes through a cached view are dropped from it too.
 *
 * Read-ahead: a Query is billed on the summed size of its items, rounded up to 4 KB (eventually consistent: ½
 * RRU per 4 KB), so when a partition's segments are small a read asks for as many as fit in one read unit
 * (at most MAX_READ_AHEAD) at the price of one, and the next pulls of this process find them here. Beyond
 * that, read-ahead costs what reading the same segments later would (no more: one read's rounding instead
 * of several), unless another process consumes them meanwhile; so it grows only while this process keeps
 * using what it read ahead (`ahead`), and stops at the first segment read ahead and passed over (for
 * QUIET_AFTER_WASTE_MS; then it tries one segment again).
 *
 * Bounds: segments are kept at most TTL_MS, MAX_SEGMENTS_PER_PARTITION per partition (the oldest go first)
 * and about MAX_BYTES of records in all (the partitions used least recently go first). One cache per log
 * store object, like progressCache.ts: another store object is another process.
 */
const TTL_MS = 60_000;
const RETENTION_MARGIN_MS = 5 * 60_000;
const MAX_SEGMENTS_PER_PARTITION = 64;
const MAX_BYTES = 8 * 1024 * 1024;
const READ_UNIT_BYTES = 4096;
const MAX_READ_AHEAD = 16;
/** Read-ahead beyond one read unit stays below this many bytes of records per read. */
const MAX_READ_AHEAD_BYTES = 512 * 1024;
const QUIET_AFTER_WASTE_MS = 10_000;

interface Known {
  readonly segment: Segment;
  readonly bytes: number;
  readonly at: number;
  /** Handed to a reader (a segment read ahead is not, until a later read takes it from here). */
  served: boolean;
}

interface PartitionSegments {
  /** By base, ascending. */
  list: Known[];
  /** Moving average of the segments' sizes here (read-ahead). */
  averageBytes: number;
  /**
   * Segments to read ahead beyond what is asked and what fits one read unit: doubled (up to MAX_READ_AHEAD)
   * each time a read is answered from here in full, back to 0 when a segment read ahead was passed over
   * unread (another process consumed it: the read-ahead was paid for nothing).
   */
  ahead: number;
  /** After a read-ahead passed over, none until then; then one segment again, to see whether it is used now. */
  quietUntil: number;
}

/** About what a segment weighs as stored (uncompressed records: compression only makes it smaller). */
const sizeOf = (segment: Segment) => JSON.stringify(segment.records).length + 48;
const endOf = (s: Segment) => s.base + s.count;

class SegmentCache {
  private readonly partitions = new Map<string, PartitionSegments>();
  private bytes = 0;

  private fresh(key: string, now: number): PartitionSegments | undefined {
    const entry = this.partitions.get(key);
    if (!entry) return undefined;
    const kept = entry.list.filter((k) => now - k.at < TTL_MS);
    if (kept.length !== entry.list.length) {
      for (const k of entry.list) if (now - k.at >= TTL_MS) this.bytes -= k.bytes;
      entry.list = kept;
    }
    // Used now: the map's order is least recently used first.
    this.partitions.delete(key);
    this.partitions.set(key, entry);
    return entry;
  }

  /** The known segments from `fromBase` on, back to back, when the first of them is surely the store's first. */
  runFrom(key: string, fromBase: number, limit: number, servable: (s: Segment) => boolean, now = Date.now()): { run: Segment[]; next: number } {
    const entry = this.fresh(key, now);
    const list = entry?.list ?? [];
    for (const k of list) {
      if (endOf(k.segment) > fromBase) break;
      if (!k.served) {
        k.served = true; // counted once
        entry!.ahead = 0;
        entry!.quietUntil = now + QUIET_AFTER_WASTE_MS;
      }
    }
    let i = list.findIndex((k) => k.segment.base >= fromBase);
    // Where the store's first segment at or after fromBase starts: fromBase, or the end of a known segment holding it.
    const holder = i === 0 ? undefined : list[(i < 0 ? list.length : i) - 1];
    let next = holder && endOf(holder.segment) > fromBase ? endOf(holder.segment) : fromBase;
    const run: Segment[] = [];
    if (i < 0) return { run, next };
    while (i < list.length && run.length < limit && list[i]!.segment.base === next && servable(list[i]!.segment)) {
      list[i]!.served = true;
      run.push(list[i]!.segment);
      next = endOf(list[i]!.segment);
      i++;
    }
    if (entry && run.length >= limit) entry.ahead = Math.min(MAX_READ_AHEAD, Math.max(1, entry.ahead * 2));
    return { run, next };
  }

  /** How many segments a read that needs `wanted` asks the store for. */
  toAsk(key: string, wanted: number, now = Date.now()): number {
    const entry = this.partitions.get(key);
    if (!entry) return wanted;
    const free = Math.floor(READ_UNIT_BYTES / entry.averageBytes);
    const extra = entry.ahead > 0 ? entry.ahead : now >= entry.quietUntil ? 1 : 0;
    const paid = Math.min(wanted + extra, Math.floor(MAX_READ_AHEAD_BYTES / entry.averageBytes));
    return Math.max(wanted, Math.min(MAX_READ_AHEAD, Math.max(free, paid)));
  }

  holding(key: string, offset: number, servable: (s: Segment) => boolean, now = Date.now()): Segment | undefined {
    const known = this.fresh(key, now)?.list.find((k) => k.segment.base <= offset && offset < endOf(k.segment))?.segment;
    return known && servable(known) ? known : undefined;
  }

  /** Segments deleted (by a retention pass of this process). */
  drop(key: string, bases: readonly number[]) {
    const entry = this.partitions.get(key);
    if (!entry) return;
    const gone = new Set(bases);
    for (const k of entry.list) if (gone.has(k.segment.base)) this.bytes -= k.bytes;
    entry.list = entry.list.filter((k) => !gone.has(k.segment.base));
  }

  /** Segments read from the store; the first `served` of them go to the reader now, the rest were read ahead. */
  add(key: string, segments: readonly Segment[], served = segments.length, now = Date.now()) {
    if (segments.length === 0) return;
    let entry = this.fresh(key, now);
    if (!entry) {
      entry = { list: [], averageBytes: sizeOf(segments[0]!), ahead: 0, quietUntil: 0 };
      this.partitions.set(key, entry);
    }
    segments.forEach((segment, n) => {
      const bytes = sizeOf(segment);
      entry.averageBytes = (entry.averageBytes * 3 + bytes) / 4;
      const at = entry.list.findIndex((k) => k.segment.base >= segment.base);
      if (at >= 0 && entry.list[at]!.segment.base === segment.base) return;
      entry.list.splice(at < 0 ? entry.list.length : at, 0, { segment, bytes, at: now, served: n < served });
      this.bytes += bytes;
    });
    while (entry.list.length > MAX_SEGMENTS_PER_PARTITION) this.bytes -= entry.list.shift()!.bytes;
    for (const [other, oldest] of this.partitions) {
      if (this.bytes <= MAX_BYTES) break;
      if (other === key) continue;
      for (const k of oldest.list) this.bytes -= k.bytes;
      this.partitions.delete(other);
    }
    while (this.bytes > MAX_BYTES && entry.list.length > 1) this.bytes -= entry.list.shift()!.bytes;
  }
}

let caches = new WeakMap<LogStore, SegmentCache>();

/**
 * Forgets every process-wide segment cache (tests: a new Lambda instance). A test that moves the TTL clock
 * ahead deletes segments a real process could never still serve: TTL takes a segment a day after retention,
 * the cache serves one only until 5 minutes before retention.
 */
export function forgetKnownSegments(): void {
  caches = new WeakMap();
}
const keyOf = (topicKey: string, partition: number) => `${partition}/${topicKey}`;

function cacheOf(log: LogStore): SegmentCache {
  let cache = caches.get(log);
  if (!cache) {
    cache = new SegmentCache();
    caches.set(log, cache);
  }
  return cache;
}

/**
 * `log` with reads answered from this process's known segments where that gives the store's own answer,
 * for a topic whose retention is `retentionHours`.
 */
export function cachedLog(log: LogStore, retentionHours: number): LogStore {
  const horizon = retentionHours * 3600_000 - RETENTION_MARGIN_MS;
  return withCache(log, cacheOf(log), (s) => s.producedAt > Date.now() - horizon);
}

function withCache(log: LogStore, cache: SegmentCache, servable: (s: Segment) => boolean): LogStore {
  return {
    tail: (topicKey, partition) => log.tail(topicKey, partition),
    head: (topicKey, partition) => log.head(topicKey, partition),
    appendSegment: (...args) => log.appendSegment(...args),
    // Deletes through this view are dropped here, before and after (a read in between may have learned them again).
    async deleteSegments(topicKey, partition, bases) {
      cache.drop(keyOf(topicKey, partition), bases);
      try {
        await log.deleteSegments(topicKey, partition, bases);
      } finally {
        cache.drop(keyOf(topicKey, partition), bases);
      }
    },
    segmentKeysFrom: (topicKey, partition, fromBase, limit) => log.segmentKeysFrom(topicKey, partition, fromBase, limit),
    setSegmentExpiry: (topicKey, partition, base, expiresAt) => log.setSegmentExpiry(topicKey, partition, base, expiresAt),

    async segmentAtOrBefore(topicKey, partition, offset) {
      const key = keyOf(topicKey, partition);
      const known = cache.holding(key, offset, servable);
      if (known) return known;
      const segment = await log.segmentAtOrBefore(topicKey, partition, offset);
      if (segment) cache.add(key, [segment]);
      return segment;
    },

    async segmentsFrom(topicKey, partition, fromBase, limit, consistent = true) {
      const key = keyOf(topicKey, partition);
      if (consistent) {
        const segments = await log.segmentsFrom(topicKey, partition, fromBase, limit, true);
        cache.add(key, segments);
        return segments;
      }
      const { run, next } = cache.runFrom(key, fromBase, limit, servable);
      if (run.length >= limit) return run;
      const wanted = limit - run.length;
      const read = await log.segmentsFrom(topicKey, partition, next, cache.toAsk(key, wanted), false);
      cache.add(key, read, wanted);
      return [...run, ...read.slice(0, wanted)];
    },
  };
}
