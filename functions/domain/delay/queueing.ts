import { DELAY } from './limits.js';
import { isGroup, type DelayQueueMessage, type PendingItem, type Stores } from '../ports.js';

/** Messages a pending item stands for: a group's members not cancelled (at least 1), or 1. */
export const messagesOf = (p: PendingItem) => (isGroup(p) ? Math.max(1, p.members.length - p.cancelled.length) : 1);

/**
 * Hands pending items to the delay queue: one queue message per topic and due second, naming up to
 * DELAY.idsPerQueueMessage items and DELAY.messagesPerQueueMessage messages (a group counts its
 * members), delayed until that second (SQS DelaySeconds, whole seconds, at most the queue's maximum).
 * 10,000 messages due in one second are ~20 queue messages of grouped messages (~100 of messages with
 * producer ids), not 10,000.
 * A send that fails is logged, not thrown (unless asked): the records are durable, and the sweep queues
 * anything overdue again (DELAY.overdueAfterMs after its due time).
 */
export async function queueDue(
  stores: Stores,
  items: readonly PendingItem[],
  now = Date.now(),
  options: { readonly rethrow?: boolean } = {},
): Promise<number> {
  if (items.length === 0) return 0;
  const groups = new Map<string, { topicKey: string; firstDue: number; ids: string[]; messages: number[] }>();
  for (const p of items) {
    const key = `${p.topicKey}|${Math.floor(p.due / 1000)}`;
    const group = groups.get(key) ?? { topicKey: p.topicKey, firstDue: p.due, ids: [], messages: [] };
    group.ids.push(p.id);
    group.messages.push(messagesOf(p));
    group.firstDue = Math.min(group.firstDue, p.due);
    groups.set(key, group);
  }
  const messages: DelayQueueMessage[] = [];
  for (const group of groups.values()) {
    // Rounded down: the queue message arrives up to a second before its first due time, and the
    // landing waits out the rest (DELAY.earlyLandingMs), so messages land on time and never early.
    const delaySeconds = Math.min(stores.delayQueue.maxDelaySeconds, Math.max(0, Math.floor((group.firstDue - now) / 1000)));
    let ids: string[] = [];
    let count = 0;
    group.ids.forEach((id, i) => {
      const weight = group.messages[i]!;
      if (ids.length > 0 && (ids.length >= DELAY.idsPerQueueMessage || count + weight > DELAY.messagesPerQueueMessage)) {
        messages.push({ topicKey: group.topicKey, ids, delaySeconds });
        ids = [];
        count = 0;
      }
      ids.push(id);
      count += weight;
    });
    if (ids.length > 0) messages.push({ topicKey: group.topicKey, ids, delaySeconds });
  }
  try {
    await stores.delayQueue.send(messages);
  } catch (error) {
    if (options.rethrow) throw error;
    console.warn(
      JSON.stringify({
        level: 'WARN',
        message: 'delay queue send failed; the sweep will queue these again once overdue',
        count: items.length,
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      }),
    );
  }
  return messages.length;
}
