import { describe, expect, it } from 'vitest';
import { formatReceipt, newLeaseToken, parseReceipt, parseServerMessageId, serverMessageId } from '../../functions/domain/ids.js';
import { matchesFilter } from '../../functions/domain/groups/filter.js';
import { partitionForKey } from '../../functions/domain/partitioner.js';
import { parseTime } from '../../functions/domain/time.js';

describe('message ids', () => {
  it('encode produce time, partition and offset, and decode back', () => {
    const id = serverMessageId(1_763_683_200_123, 63, 123_456_789);
    expect(id).toHaveLength(22);
    expect(parseServerMessageId(id)).toEqual({ producedAt: 1_763_683_200_123, partition: 63, offset: 123_456_789 });
  });

  it('sort by produce time', () => {
    const ids = [serverMessageId(2000, 1, 5), serverMessageId(1000, 3, 900), serverMessageId(3000, 0, 0)];
    expect([...ids].sort()).toEqual([ids[1], ids[0], ids[2]]);
  });

  it('producer ids do not decode as server ids', () => {
    expect(parseServerMessageId('order-17')).toBeUndefined();
  });

  it('an id whose offset is beyond 2^53 is not a server id', () => {
    expect(parseServerMessageId('00000000000zzzzzzzzzzz')).toBeUndefined();
  });
});

describe('receipts', () => {
  it('round-trip', () => {
    const receipt = { partition: 3, offset: 1234567, delivery: 2, token: newLeaseToken() };
    expect(parseReceipt(formatReceipt(receipt))).toEqual(receipt);
  });

  it.each(['', 'garbage', '1.2.3', '1.2.3.!!!!!!', '1.2.x.abcdef12', '1000.1.1.abcdef12'])('reject %j', (text) => {
    expect(parseReceipt(text)).toBeUndefined();
  });
});

describe('tag filters (QMQ semantics)', () => {
  it('no filter matches everything, even untagged messages', () => {
    expect(matchesFilter(undefined, [])).toBe(true);
  });
  it('a message without tags never matches a tag filter', () => {
    expect(matchesFilter({ tags: { any: ['a'] } }, [])).toBe(false);
    expect(matchesFilter({ tags: { all: ['a'] } }, undefined)).toBe(false);
  });
  it('any needs one shared tag; all needs every tag', () => {
    expect(matchesFilter({ tags: { any: ['a', 'b'] } }, ['b', 'z'])).toBe(true);
    expect(matchesFilter({ tags: { any: ['a', 'b'] } }, ['z'])).toBe(false);
    expect(matchesFilter({ tags: { all: ['a', 'b'] } }, ['a', 'b', 'c'])).toBe(true);
    expect(matchesFilter({ tags: { all: ['a', 'b'] } }, ['a'])).toBe(false);
  });
});

describe('key routing', () => {
  it('is stable and spreads keys over partitions', () => {
    expect(partitionForKey('customer-7', 8)).toBe(partitionForKey('customer-7', 8));
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 4000; i++) counts[partitionForKey(`k${i}`, 8)]++;
    for (const c of counts) expect(c).toBeGreaterThan(350);
  });
});

describe('times', () => {
  it('accept ISO-8601 and epoch milliseconds, refuse the rest', () => {
    expect(parseTime('2026-01-02T03:04:05Z', 't')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(parseTime(1234, 't')).toBe(1234);
    expect(parseTime('1234', 't')).toBe(1234);
    expect(() => parseTime('yesterday', 't')).toThrow(/ISO-8601/);
    expect(() => parseTime(-1, 't')).toThrow();
  });
});
