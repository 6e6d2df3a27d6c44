import { describe, expect, it } from 'vitest';
import {
  ackFloor,
  applyAcks,
  applyNacks,
  applyPull,
  applyRedrive,
  applyReset,
  backoffSeconds,
  freshProgress,
  leasedCount,
  planPull,
  rememberDead,
  type PartitionProgress,
} from '../../functions/domain/groups/progress.js';

const NOW = 1_000_000;
const shared = { ordered: false, maxDeliveries: 3 };
const ordered = { ordered: true, maxDeliveries: 3 };

function leaseNew(progress: PartitionProgress, offsets: number[], until = NOW + 30_000) {
  return applyPull(progress, {
    redelivered: [],
    removed: new Set(),
    newMatching: offsets,
    nextDispatched: Math.max(progress.dispatched, ...offsets.map((o) => o + 1)),
    nextSegmentHint: -1,
    leaseUntil: until,
  });
}

const receiptOf = (lease: { offset: number; deliveries: number; token: string }) => ({
  partition: 0,
  offset: lease.offset,
  delivery: lease.deliveries,
  token: lease.token,
});

describe('partition progress', () => {
  it('a fresh partition offers only new offsets, bounded by the budget', () => {
    const plan = planPull(freshProgress(5), NOW, shared, 10);
    expect(plan).toEqual({ redeliver: [], dead: [], newLimit: 10 });
  });

  it('leasing new offsets moves dispatched and the ack floor stays at the oldest unacked', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0, 1, 2]);
    expect(leased.map((l) => l.offset)).toEqual([0, 1, 2]);
    expect(leased.every((l) => l.deliveries === 1 && l.token.length >= 6)).toBe(true);
    expect(next.dispatched).toBe(3);
    expect(ackFloor(next)).toBe(0);
    expect(leasedCount(next, NOW)).toBe(3);
    expect(next.version).toBe(1);
  });

  it('acks remove entries; the floor advances only past contiguous acks', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0, 1, 2]);
    const afterMiddle = applyAcks(next, [receiptOf(leased[1]!)], NOW);
    expect(afterMiddle.results).toEqual(['settled']);
    expect(ackFloor(afterMiddle.next)).toBe(0);
    const afterFirst = applyAcks(afterMiddle.next, [receiptOf(leased[0]!)], NOW);
    expect(ackFloor(afterFirst.next)).toBe(2);
  });

  it('a receipt with a wrong token, an old delivery number or an expired lease is stale', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0]);
    const lease = leased[0]!;
    expect(applyAcks(next, [{ ...receiptOf(lease), token: 'zzzzzzzz' }], NOW).results).toEqual(['stale']);
    expect(applyAcks(next, [{ ...receiptOf(lease), delivery: 2 }], NOW).results).toEqual(['stale']);
    expect(applyAcks(next, [receiptOf(lease)], NOW + 30_000).results).toEqual(['stale']);
    expect(applyAcks(next, [{ ...receiptOf(lease), offset: 7 }], NOW).results).toEqual(['stale']);
  });

  it('acking an already acknowledged offset again counts (a retried ack)', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0]);
    const once = applyAcks(next, [receiptOf(leased[0]!)], NOW);
    const twice = applyAcks(once.next, [receiptOf(leased[0]!)], NOW);
    expect(twice.results).toEqual(['settled']);
    expect(twice.next).toBe(once.next);
  });

  it('an expired lease is redelivered with a higher delivery count and a new token', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0, 1]);
    const plan = planPull(next, NOW + 31_000, shared, 10);
    expect(plan.redeliver.map((e) => e.offset)).toEqual([0, 1]);
    const again = applyPull(next, {
      redelivered: plan.redeliver,
      removed: new Set(),
      newMatching: [],
      nextDispatched: 2,
      nextSegmentHint: -1,
      leaseUntil: NOW + 61_000,
    });
    expect(again.leased.map((l) => l.deliveries)).toEqual([2, 2]);
    expect(again.leased[0]!.token).not.toBe(leased[0]!.token);
    // The first delivery's receipt no longer acks.
    expect(applyAcks(again.next, [receiptOf(leased[0]!)], NOW + 31_000).results).toEqual(['stale']);
  });

  it('a due entry that reached maxDeliveries goes to the dead letters instead', () => {
    let progress = leaseNew(freshProgress(0), [0]).next;
    for (let n = 2; n <= 3; n++) {
      const plan = planPull(progress, NOW + n * 100_000, shared, 10);
      progress = applyPull(progress, {
        redelivered: plan.redeliver,
        removed: new Set(),
        newMatching: [],
        nextDispatched: 1,
        nextSegmentHint: -1,
        leaseUntil: NOW + n * 100_000 + 30_000,
      }).next;
    }
    expect(progress.entries[0]!.deliveries).toBe(3);
    const plan = planPull(progress, NOW + 1_000_000, shared, 10);
    expect(plan.redeliver).toEqual([]);
    expect(plan.dead.map((e) => e.offset)).toEqual([0]);
  });

  it('nack makes a delivery wait for its retry time, with exponential backoff by default', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0, 1]);
    const nacked = applyNacks(next, [receiptOf(leased[0]!)], NOW, undefined);
    expect(nacked.results).toEqual(['settled']);
    expect(nacked.next.entries[0]!.until).toBe(NOW + backoffSeconds(1) * 1000);
    expect(nacked.next.entries[0]!.token).toBe('');
    expect(planPull(nacked.next, NOW + 500, shared, 10).redeliver).toEqual([]);
    expect(planPull(nacked.next, NOW + 1000, shared, 10).redeliver.map((e) => e.offset)).toEqual([0]);
    const explicit = applyNacks(next, [receiptOf(leased[1]!)], NOW, 7);
    expect(explicit.next.entries[1]!.until).toBe(NOW + 7000);
    // The nacked receipt can no longer ack.
    expect(applyAcks(nacked.next, [receiptOf(leased[0]!)], NOW).results).toEqual(['stale']);
  });

  it('backoff doubles and is capped', () => {
    expect([1, 2, 3, 4, 5].map(backoffSeconds)).toEqual([1, 2, 4, 8, 16]);
    expect(backoffSeconds(50)).toBe(300);
  });

  it('an ordered partition is blocked while anything is leased or waiting, and redelivers in order', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0, 1, 2]);
    expect(planPull(next, NOW, ordered, 10)).toEqual({ redeliver: [], dead: [], newLimit: 0 });
    const acked = applyAcks(next, [receiptOf(leased[0]!)], NOW).next;
    const nacked = applyNacks(acked, [receiptOf(leased[2]!)], NOW, 0).next;
    // offset 1 still leased: blocked even though 2 is due.
    expect(planPull(nacked, NOW + 1, ordered, 10).newLimit).toBe(0);
    expect(planPull(nacked, NOW + 1, ordered, 10).redeliver).toEqual([]);
    const plan = planPull(nacked, NOW + 31_000, ordered, 10);
    expect(plan.redeliver.map((e) => e.offset)).toEqual([1, 2]);
    expect(plan.newLimit).toBe(0);
  });

  it('a shared partition stops dispatching new offsets past the in-flight window', () => {
    const progress = leaseNew(freshProgress(0), [0, 1, 2, 3]).next;
    expect(planPull(progress, NOW, { ...shared, maxInFlight: 6 }, 10).newLimit).toBe(2);
    expect(planPull(progress, NOW, { ...shared, maxInFlight: 4 }, 10).newLimit).toBe(0);
  });

  it('redrive brings offsets back below the floor with a fresh delivery count; reset drops every lease', () => {
    const progress = { ...freshProgress(10), version: 3 };
    const redriven = applyRedrive(progress, [4, 7], NOW).next;
    expect(ackFloor(redriven)).toBe(4);
    expect(planPull(redriven, NOW, shared, 10).redeliver.map((e) => [e.offset, e.deliveries])).toEqual([
      [4, 0],
      [7, 0],
    ]);
    const reset = applyReset(redriven, 2);
    expect(reset).toEqual({ dispatched: 2, segmentHint: -1, entries: [], dead: [], version: 5 });
  });

  it('redrive never adds an offset twice, leaves offsets past dispatched to the log, and stops at the window', () => {
    const progress = { ...leaseNew(freshProgress(0), [0, 1]).next };
    const plan = applyRedrive({ ...progress, dispatched: 5 }, [1, 3, 3, 4, 5, 9], NOW, 4);
    expect(plan.accepted).toEqual([3, 4]);
    expect(plan.fromLog).toEqual([1, 5, 9]);
    expect(plan.deferred).toEqual([]);
    expect(plan.next.entries.map((e) => e.offset)).toEqual([0, 1, 3, 4]);
    const full = applyRedrive(plan.next, [2], NOW, 4);
    expect(full.accepted).toEqual([]);
    expect(full.deferred).toEqual([2]);
  });

  it('a new offset that already has an entry (redriven, then reset back) is leased once, through its entry', () => {
    const redriven = applyRedrive(freshProgress(10), [4], NOW).next;
    const reset = { ...applyReset(redriven, 2), entries: redriven.entries };
    const plan = planPull(reset, NOW, shared, 10);
    expect(plan.redeliver.map((e) => e.offset)).toEqual([4]);
    const { leased } = applyPull(reset, {
      redelivered: plan.redeliver,
      removed: new Set(),
      newMatching: [2, 3, 4, 5],
      nextDispatched: 6,
      nextSegmentHint: -1,
      leaseUntil: NOW + 1000,
    });
    expect(leased.map((l) => l.offset).sort()).toEqual([2, 3, 4, 5]);
  });

  it('a late ack of a dead-lettered offset is stale; dead marks are bounded', () => {
    const { leased, next } = leaseNew(freshProgress(0), [0, 1]);
    const died = applyPull(next, {
      redelivered: [],
      removed: new Set([0]),
      deadLettered: [0],
      now: NOW,
      newMatching: [],
      nextDispatched: 2,
      nextSegmentHint: -1,
      leaseUntil: NOW,
    }).next;
    expect(applyAcks(died, [receiptOf(leased[0]!)], NOW).results).toEqual(['stale']);
    const acked = applyAcks(died, [receiptOf(leased[1]!)], NOW).next;
    expect(applyAcks(acked, [receiptOf(leased[1]!)], NOW).results).toEqual(['settled']);
    const many = rememberDead([], Array.from({ length: 300 }, (_, i) => i), NOW);
    expect(many).toHaveLength(256);
    expect(many[0]!.offset).toBe(44);
    expect(rememberDead(many, [1000], NOW + 13 * 3600 * 1000)).toEqual([{ offset: 1000, at: NOW + 13 * 3600 * 1000 }]);
  });
});
