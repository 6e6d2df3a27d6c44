import { SluiceError, validation } from '../errors.js';
import { LIMITS } from '../limits.js';
import { isGroup, topicKeyOf, type PendingDelayed, type PendingGroup, type PendingItem, type Stores } from '../ports.js';
import { requireTopic } from '../topics.js';
import { memberId, parseMemberId } from './groups.js';

const notPending = (topic: string, id: string) =>
  new SluiceError('MessageNotFound', `No pending delayed message '${id}' in topic '${topic}' (unknown, landed, or cancelled).`);

/**
 * Member `member` of a group as a pending message, if it is one: not cancelled, and not landed for the
 * last time. A repeat's member that landed in the current landing (split over segments) is pending for
 * the next one.
 */
export function memberOf(g: PendingGroup, member: number): PendingDelayed | undefined {
  const m = g.members[member];
  if (!m || g.cancelled.includes(member)) return undefined;
  let landing = g.landing;
  let due = g.due;
  if (g.landed.includes(member)) {
    if (!g.repeat || g.landing >= g.repeat.times) return undefined;
    landing += 1;
    due += g.repeat.everySeconds * 1000;
  }
  const id = memberId(g.id, member);
  return {
    topicKey: g.topicKey,
    id,
    due,
    record: { ...m.record, i: id },
    ...(m.record.k !== undefined ? { key: m.record.k } : {}),
    ...(m.partition !== undefined ? { partition: m.partition } : {}),
    ...(g.repeat ? { repeat: g.repeat } : {}),
    landing,
    queued: g.queued,
    version: g.version,
    createdAt: g.createdAt,
  };
}

/**
 * The pending messages an item stands for, in id order, each with where a listing continues after it: the
 * item's own sort key (its due time) and the message's id. A group's members share the group's due time
 * there even when one already landed in a landing split over segments and is listed with the next due
 * time: a cursor made from the listed time would point past the group and skip its other members.
 */
const messagesOf = (p: PendingItem): Array<{ message: PendingDelayed; cursor: string }> =>
  isGroup(p)
    ? p.members.flatMap((_, i) => {
        const message = memberOf(p, i);
        return message ? [{ message, cursor: cursorAt(p.due, message.id) }] : [];
      })
    : [{ message: p, cursor: cursorAt(p.due, p.id) }];

export async function getDelayed(stores: Stores, topicName: string, id: string): Promise<PendingDelayed> {
  const topic = await requireTopic(stores, topicName);
  const topicKey = topicKeyOf(topic);
  const member = parseMemberId(id);
  if (member) {
    const group = await stores.delays.getGroup(topicKey, member.group);
    if (group) {
      const pending = memberOf(group, member.member);
      if (!pending) throw notPending(topicName, id);
      return pending;
    }
    // No such group: a producer id of that form, stored on its own.
  }
  const pending = await stores.delays.get(topicKey, id);
  if (!pending) throw notPending(topicName, id);
  return pending;
}

const CURSOR = /^[0-9]{15}#[\x21-\x7e]{1,200}$/;

/** Where a listing continues after a message: the index's sort key (due time, then id; a group's members by index). */
const cursorAt = (due: number, id: string) => `${due.toString().padStart(15, '0')}#${id}`;

/** Index pages one listing reads at most (groups whose members are all cancelled list nothing). */
const MAX_PAGES = 10;

/** Pending messages of a topic in due order; a page stops at `limit` or about 5 MB (headers may be large). */
export async function listDelayed(stores: Stores, topicName: string, limit: number, after?: string) {
  if (after !== undefined && !CURSOR.test(after)) throw validation('after is not a cursor returned by this API.');
  const topic = await requireTopic(stores, topicName);
  const topicKey = topicKeyOf(topic);
  // A cursor at a member of a group: read from the group's own sort key on, and leave out its members up
  // to the cursor (members sort after their group, in index order).
  let from = after;
  let inclusive = false;
  if (after !== undefined) {
    const hash = after.indexOf('#');
    const member = parseMemberId(after.slice(hash + 1));
    if (member) {
      from = `${after.slice(0, hash)}#${member.group}`;
      inclusive = true;
    }
  }
  const listed: Array<{ message: PendingDelayed; cursor: string }> = [];
  let next: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const read = await stores.delays.list(topicKey, limit - listed.length, from, inclusive);
    for (const entry of read.items.flatMap(messagesOf)) {
      if (after !== undefined && entry.cursor <= after) continue;
      listed.push(entry);
    }
    next = read.next;
    if (listed.length >= limit || !next) break;
    from = next;
    inclusive = false;
  }
  const items = listed.map((entry) => entry.message);
  let bytes = 0;
  for (const [i, p] of items.entries()) {
    bytes += Buffer.byteLength(JSON.stringify({ id: p.id, key: p.key, tags: p.record.t, headers: p.record.h })) + 200;
    if ((i > 0 && bytes > LIMITS.maxReplyMessageBytes) || i >= limit) return { items: items.slice(0, i), next: listed[i - 1]!.cursor };
  }
  // Read up to the limit exactly, or stopped after MAX_PAGES: continue after what was read.
  if (next !== undefined) return { items, next: listed.length > 0 ? listed.at(-1)!.cursor : next };
  return { items };
}

/**
 * Cancels a pending message: one conditional write (a message's mark, or a group member's), so a
 * cancel and a landing never both win.
 */
export async function cancelDelayed(stores: Stores, topicName: string, id: string): Promise<void> {
  const topic = await requireTopic(stores, topicName);
  const topicKey = topicKeyOf(topic);
  const member = parseMemberId(id);
  if (member && (await stores.delays.cancelMember(topicKey, member.group, member.member))) return;
  if (!(await stores.delays.cancel(topicKey, id))) throw notPending(topicName, id);
}
