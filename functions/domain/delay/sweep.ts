import type { PendingItem, Stores } from '../ports.js';
import { DELAY, minuteOf } from './limits.js';
import { messagesOf, queueDue } from './queueing.js';

export interface SweepSummary {
  /** Pending messages handed to the delay queue because they came within its reach. */
  readonly queued: number;
  /** Queued messages not landed DELAY.overdueAfterMs after their due time: queued again. */
  readonly overdue: number;
  /** First minute the next sweep looks at. */
  readonly cursor: number;
  /** False when the deadline stopped the sweep (the cursor keeps its place). */
  readonly complete: boolean;
}

const PAGE = 500;

/**
 * The delay sweep (every minute on AWS). Pending messages live in minute buckets by due time: waiting
 * ones ("b#<minute>") and queued ones ("q#<minute>"). The sweep reads, from its cursor on:
 * - waiting messages due within the delay queue's reach: queued (one queue message per topic and due
 *   second) and marked queued;
 * - queued messages that should have landed DELAY.overdueAfterMs ago: queued again. Nothing is lost
 *   when a queue send failed, a handler died, or a queue message went to the dead-letter queue.
 * The cursor stays at the oldest minute that still holds an overdue message, so every read is a bounded
 * Query of one minute's bucket — no scan — and an idle sweep costs a few empty queries.
 */
export async function sweepDelayed(stores: Stores, deadline: number, now = Date.now()): Promise<SweepSummary> {
  const reach = now + stores.delayQueue.maxDelaySeconds * 1000;
  const overdueBefore = now - DELAY.overdueAfterMs;
  const stored = await stores.delays.getSweepCursor();
  const start = stored ?? minuteOf(now) - 1;
  let cursor = minuteOf(overdueBefore);
  let queued = 0;
  let overdue = 0;
  let complete = true;
  for (let minute = start; minute <= minuteOf(reach); minute++) {
    if (Date.now() >= deadline) {
      complete = false;
      cursor = Math.min(cursor, minute);
      break;
    }
    // Waiting messages now within reach.
    queued += await forEachPage(stores, 'waiting', minute, deadline, async (items) => {
      const ready = items.filter((p) => p.due <= reach);
      // Marked only once the queue has them: a failed send leaves them waiting for the next sweep.
      await queueDue(stores, ready, now, { rethrow: true });
      await stores.delays.markQueued(ready);
      return ready.reduce((n, p) => n + messagesOf(p), 0);
    });
    if (minute > minuteOf(overdueBefore)) continue;
    // Queued messages that should have landed by now.
    const again = await forEachPage(stores, 'queued', minute, deadline, async (items) => {
      const late = items.filter((p) => p.due < overdueBefore);
      await queueDue(stores, late, now);
      return late.reduce((n, p) => n + messagesOf(p), 0);
    });
    if (again > 0) cursor = Math.min(cursor, minute);
    overdue += again;
  }
  await stores.delays.putSweepCursor(cursor);
  return { queued, overdue, cursor, complete };
}

async function forEachPage(
  stores: Stores,
  state: 'waiting' | 'queued',
  minute: number,
  deadline: number,
  work: (items: PendingItem[]) => Promise<number>,
): Promise<number> {
  let count = 0;
  let after: string | undefined;
  do {
    const page = await stores.delays.dueIn(state, minute, PAGE, after);
    count += await work(page.items);
    after = page.next;
  } while (after && Date.now() < deadline);
  return count;
}
