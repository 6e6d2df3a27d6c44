import { SluiceError, validation } from '../errors.js';
import { LIMITS } from '../limits.js';
import { topicKeyOf, type PendingDelayed, type Stores } from '../ports.js';
import { requireTopic } from '../topics.js';

const notPending = (topic: string, id: string) =>
  new SluiceError('MessageNotFound', `No pending delayed message '${id}' in topic '${topic}' (unknown, landed, or cancelled).`);

export async function getDelayed(stores: Stores, topicName: string, id: string): Promise<PendingDelayed> {
  const topic = await requireTopic(stores, topicName);
  const pending = await stores.delays.get(topicKeyOf(topic), id);
  if (!pending) throw notPending(topicName, id);
  return pending;
}

const CURSOR = /^[0-9]{15}#[\x21-\x7e]{1,200}$/;

/** Where a listing continues after `p`: the index's sort key (due time, then id). */
const cursorOf = (p: PendingDelayed) => `${p.due.toString().padStart(15, '0')}#${p.id}`;

/** Pending messages of a topic in due order; a page stops at `limit` or about 5 MB (headers may be large). */
export async function listDelayed(stores: Stores, topicName: string, limit: number, after?: string) {
  if (after !== undefined && !CURSOR.test(after)) throw validation('after is not a cursor returned by this API.');
  const topic = await requireTopic(stores, topicName);
  const page = await stores.delays.list(topicKeyOf(topic), limit, after);
  let bytes = 0;
  for (const [i, p] of page.items.entries()) {
    bytes += Buffer.byteLength(JSON.stringify({ id: p.id, key: p.key, tags: p.record.t, headers: p.record.h })) + 200;
    if (i > 0 && bytes > LIMITS.maxReplyMessageBytes) return { items: page.items.slice(0, i), next: cursorOf(page.items[i - 1]!) };
  }
  return page;
}

/** Cancels a pending message: one conditional delete, so a cancel and a landing never both win. */
export async function cancelDelayed(stores: Stores, topicName: string, id: string): Promise<void> {
  const topic = await requireTopic(stores, topicName);
  if (!(await stores.delays.cancel(topicKeyOf(topic), id))) throw notPending(topicName, id);
}
