import { DELAY } from './limits.js';
import type { DelayQueueMessage, PendingDelayed, Stores } from '../ports.js';

/**
 * Hands pending messages to the delay queue: one queue message per topic and due second, naming up to
 * DELAY.idsPerQueueMessage ids, delayed until that second (SQS DelaySeconds, whole seconds, at most the
 * queue's maximum). 10,000 messages due in one second are ~100 queue messages, not 10,000.
 * A send that fails is logged, not thrown (unless asked): the records are durable, and the sweep queues
 * anything overdue again (DELAY.overdueAfterMs after its due time).
 */
export async function queueDue(
  stores: Stores,
  items: readonly PendingDelayed[],
  now = Date.now(),
  options: { readonly rethrow?: boolean } = {},
): Promise<number> {
  if (items.length === 0) return 0;
  const groups = new Map<string, { topicKey: string; firstDue: number; ids: string[] }>();
  for (const p of items) {
    const key = `${p.topicKey}|${Math.floor(p.due / 1000)}`;
    const group = groups.get(key) ?? { topicKey: p.topicKey, firstDue: p.due, ids: [] };
    group.ids.push(p.id);
    group.firstDue = Math.min(group.firstDue, p.due);
    groups.set(key, group);
  }
  const messages: DelayQueueMessage[] = [];
  for (const group of groups.values()) {
    // Rounded down: the queue message arrives up to a second before its first due time, and the
    // landing waits out the rest (DELAY.earlyLandingMs), so messages land on time and never early.
    const delaySeconds = Math.min(stores.delayQueue.maxDelaySeconds, Math.max(0, Math.floor((group.firstDue - now) / 1000)));
    for (let i = 0; i < group.ids.length; i += DELAY.idsPerQueueMessage) {
      messages.push({ topicKey: group.topicKey, ids: group.ids.slice(i, i + DELAY.idsPerQueueMessage), delaySeconds });
    }
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
