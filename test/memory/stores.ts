/**
 * In-memory implementations of the domain's ports (functions/domain/ports.ts), for fast tests of the
 * domain rules (test/unit/domain/) and for mutation testing (`npm run mutate`). They keep the
 * DynamoDB adapters' conditional-write semantics:
 * - a segment lands only at a free base (else OffsetTaken with the end of the winner), together with its
 *   producer ids (IdsTaken when one is remembered and not expired) and landings (LandingsGone when a
 *   pending record was cancelled or changed), all or nothing;
 * - progress and broadcast cursors are written only at the next version (else VersionConflict), the
 *   progress write in one step with its dead letters, redriven copies and dropped letters;
 * - delivery slots, wake-ups, delayed records (create / cancel / drop / markQueued) are conditional as
 *   their DynamoDB items are.
 * Stored values are copied in and out, so the domain never shares an object with "the table".
 *
 * Eventual consistency: `replica.freeze()` takes a snapshot of the log and the group state; until
 * `replica.thaw()`, reads that may be eventually consistent (`consistent: false`) answer from it, as a
 * replica that missed the writes since would. Strongly consistent reads always see the latest state.
 */
import type { ApiKeyRecord, ApiKeyStore } from '../../functions/domain/apiKeys.js';
import type { PartitionProgress } from '../../functions/domain/groups/progress.js';
import type { LogMessage, Segment } from '../../functions/domain/messages.js';
import { minuteOf } from '../../functions/domain/delay/limits.js';
import { parseLandedMemberId, positionIn } from '../../functions/domain/delay/groups.js';
import { MemorySessionStore } from './sessions.js';
import {
  IdsTaken,
  isGroup,
  LandingsGone,
  OffsetTaken,
  VersionConflict,
  type BroadcastCursor,
  type CatalogStore,
  type DeadLetter,
  type DeadLetterPage,
  type DedupEntry,
  type DedupStore,
  type DelayQueue,
  type DelayQueueMessage,
  type DelayStore,
  type Group,
  type GroupStateStore,
  type LandingChange,
  type LogStore,
  type SegmentKey,
  type PendingDelayed,
  type PendingGroup,
  type PendingItem,
  type ProgressExtra,
  type PushQueue,
  type PushWork,
  type SecretStore,
  type SegmentWrite,
  type Stores,
  type Topic,
} from '../../functions/domain/ports.js';

const copy = <T>(value: T): T => structuredClone(value);

/** Every call a store received, by port and method ("log.appendSegment"): tests count reads and writes with it. */
export type CallLog = string[];

// ---------------------------------------------------------------------------------------------- catalog

export class MemoryCatalogStore implements CatalogStore {
  readonly topics = new Map<string, Topic>();
  readonly groups = new Map<string, Group>();
  readonly graves = new Map<string, Topic>();
  retentionCursor: string | undefined;

  async getTopic(name: string) {
    const t = this.topics.get(name);
    return t ? copy(t) : undefined;
  }

  async createTopic(topic: Topic) {
    const stored = this.topics.get(topic.name);
    if (stored) return { created: false, topic: copy(stored) };
    this.topics.set(topic.name, copy(topic));
    return { created: true, topic: copy(topic) };
  }

  async listTopics() {
    return [...this.topics.values()]
      .filter((t) => t.deletingSince === undefined)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(copy);
  }

  async growTopic(topic: Topic, partitions: number, switchAt: number) {
    const stored = this.topics.get(topic.name);
    // Conditional, as the adapter's update: the same incarnation, the same count, not being deleted.
    if (!stored || stored.epoch !== topic.epoch || stored.partitions !== topic.partitions || stored.deletingSince !== undefined) {
      return { grown: false, ...(stored ? { topic: copy(stored) } : {}) };
    }
    const grown: Topic = { ...stored, partitions, growth: { from: topic.partitions, at: switchAt } };
    this.topics.set(topic.name, grown);
    return { grown: true, topic: copy(grown) };
  }

  async markTopicDeleting(topic: Topic, at: number) {
    const stored = this.topics.get(topic.name);
    if (!stored || stored.epoch !== topic.epoch) return;
    if (stored.deletingSince === undefined) this.topics.set(topic.name, { ...stored, deletingSince: at });
  }

  async deleteTopic(name: string) {
    this.topics.delete(name);
  }

  async buryTopic(topic: Topic) {
    const { deletingSince: _deleting, ...rest } = topic;
    this.graves.set(`${topic.name}@${topic.epoch}`, copy(rest));
  }

  async listBuriedTopics() {
    return [...this.graves.values()].map(copy);
  }

  async forgetBuriedTopic(topic: Topic) {
    this.graves.delete(`${topic.name}@${topic.epoch}`);
  }

  async getGroup(topic: string, group: string) {
    const g = this.groups.get(`${topic}/${group}`);
    return g ? copy(g) : undefined;
  }

  async createGroup(group: Group) {
    const key = `${group.topic}/${group.name}`;
    const stored = this.groups.get(key);
    if (stored) return { created: false, group: copy(stored) };
    this.groups.set(key, copy(group));
    return { created: true, group: copy(group) };
  }

  async updateGroup(group: Group) {
    this.groups.set(`${group.topic}/${group.name}`, copy(group));
  }

  async listGroups(topic: string) {
    return [...this.groups.values()].filter((g) => g.topic === topic).map(copy);
  }

  async deleteGroup(topic: string, group: string) {
    this.groups.delete(`${topic}/${group}`);
  }

  async getRetentionCursor() {
    return this.retentionCursor;
  }

  async putRetentionCursor(lastStarted: string) {
    this.retentionCursor = lastStarted;
  }
}

// ---------------------------------------------------------------------------------------------- log + dedup

interface IdRecord extends DedupEntry {
  /** Epoch seconds after which the record no longer de-duplicates (TTL). */
  readonly exp: number;
}

type Partitions = Map<string, Segment[]>;

const clonePartitions = (partitions: Partitions): Partitions => new Map([...partitions].map(([k, v]) => [k, v.map(copy)]));

export class MemoryLogStore implements LogStore {
  /** Segments per "<topicKey>#<partition>", sorted by base. */
  partitions: Partitions = new Map();
  /** What eventually consistent reads see while the replica is frozen. */
  replica: Partitions | undefined;
  /** TTL attributes of segments, by "<topicKey>#<partition>#<base>". */
  readonly expiries = new Map<string, number>();

  constructor(
    private readonly ids: Map<string, IdRecord>,
    private readonly delays: MemoryDelayStore,
    private readonly calls: CallLog,
  ) {}

  private list(topicKey: string, partition: number, consistent = true): Segment[] {
    const source = !consistent && this.replica ? this.replica : this.partitions;
    return source.get(`${topicKey}#${partition}`) ?? [];
  }

  /** Writes a segment (after its conditions passed): appends, session appends and transaction commits. */
  store(topicKey: string, segment: SegmentWrite): void {
    const key = `${topicKey}#${segment.partition}`;
    const stored: Segment = {
      partition: segment.partition,
      base: segment.base,
      count: segment.records.length,
      producedAt: segment.producedAt,
      records: copy(segment.records),
    };
    this.partitions.set(key, [...(this.partitions.get(key) ?? []).filter((x) => x.base !== segment.base), stored].sort((a, b) => a.base - b.base));
    if (segment.expiresAt === undefined) this.expiries.delete(`${key}#${segment.base}`);
    else this.expiries.set(`${key}#${segment.base}`, segment.expiresAt);
  }

  /** The TTL attribute of a stored segment (undefined: none). */
  expiryOf(topicKey: string, partition: number, base: number): number | undefined {
    return this.expiries.get(`${topicKey}#${partition}#${base}`);
  }

  /** What DynamoDB TTL does, at once: deletes every segment whose expiry is before `nowSeconds`; returns how many. */
  sweepExpired(nowSeconds: number): number {
    let swept = 0;
    for (const [key, list] of this.partitions) {
      const kept = list.filter((s) => !((this.expiries.get(`${key}#${s.base}`) ?? Infinity) < nowSeconds));
      swept += list.length - kept.length;
      this.partitions.set(key, kept);
    }
    return swept;
  }

  private keyOf(s: Segment, key: string): SegmentKey {
    const expiresAt = this.expiries.get(`${key}#${s.base}`);
    return { base: s.base, count: s.count, producedAt: s.producedAt, ...(expiresAt !== undefined ? { expiresAt } : {}) };
  }

  async tail(topicKey: string, partition: number) {
    this.calls.push('log.tail');
    const s = this.list(topicKey, partition).at(-1);
    return s ? this.keyOf(s, `${topicKey}#${partition}`) : undefined;
  }

  async head(topicKey: string, partition: number) {
    this.calls.push('log.head');
    const s = this.list(topicKey, partition)[0];
    return s ? this.keyOf(s, `${topicKey}#${partition}`) : undefined;
  }

  async appendSegment(topicKey: string, segment: SegmentWrite, ids: readonly DedupEntry[], idExpiresAt: number, landings: readonly LandingChange[] = []) {
    this.calls.push('log.appendSegment');
    const list = this.list(topicKey, segment.partition);
    const winner = list.find((s) => s.base === segment.base);
    const nowSeconds = Math.floor(segment.producedAt / 1000);
    // One transaction: every condition is checked before anything is written.
    const takenIds = ids.filter((id) => {
      const stored = this.ids.get(`${topicKey}#${id.id}`);
      return stored !== undefined && !(stored.exp < nowSeconds);
    });
    if (takenIds.length > 0) throw new IdsTaken(takenIds.map((id) => id.id));
    const gone = landings.filter((l) => !this.delays.unchanged(l.topicKey, l.id, l.version)).map((l) => l.id);
    if (gone.length > 0) throw new LandingsGone(gone);
    if (winner) throw new OffsetTaken(winner.base + winner.count);
    this.store(topicKey, segment);
    for (const id of ids) this.ids.set(`${topicKey}#${id.id}`, { ...id, exp: idExpiresAt });
    for (const landing of landings) this.delays.land(landing);
  }

  async segmentAtOrBefore(topicKey: string, partition: number, offset: number) {
    this.calls.push('log.segmentAtOrBefore');
    const s = this.list(topicKey, partition).filter((x) => x.base <= offset).at(-1);
    return s ? copy(s) : undefined;
  }

  async segmentsFrom(topicKey: string, partition: number, fromBase: number, limit: number, consistent = true) {
    this.calls.push(`log.segmentsFrom${consistent ? '' : '(eventual)'}`);
    return this.list(topicKey, partition, consistent)
      .filter((s) => s.base >= fromBase)
      .slice(0, limit)
      .map(copy);
  }

  async deleteSegments(topicKey: string, partition: number, bases: readonly number[]) {
    this.calls.push('log.deleteSegments');
    const key = `${topicKey}#${partition}`;
    const doomed = new Set(bases);
    this.partitions.set(key, this.list(topicKey, partition).filter((s) => !doomed.has(s.base)));
  }

  async segmentKeysFrom(topicKey: string, partition: number, fromBase: number, limit: number) {
    this.calls.push('log.segmentKeysFrom');
    return this.list(topicKey, partition, false)
      .filter((s) => s.base >= fromBase)
      .slice(0, limit)
      .map((s) => this.keyOf(s, `${topicKey}#${partition}`));
  }

  async setSegmentExpiry(topicKey: string, partition: number, base: number, expiresAt: number | undefined) {
    this.calls.push('log.setSegmentExpiry');
    if (!this.list(topicKey, partition).some((s) => s.base === base)) return false;
    const key = `${topicKey}#${partition}#${base}`;
    if (expiresAt === undefined) this.expiries.delete(key);
    else this.expiries.set(key, expiresAt);
    return true;
  }
}

export class MemoryDedupStore implements DedupStore {
  constructor(
    readonly ids: Map<string, IdRecord>,
    /** As functions/adapters/dedupStore.ts: a landed member of a delayed group is found through its group's lookup record. */
    private readonly delays?: MemoryDelayStore,
  ) {}

  async getMany(topicKey: string, ids: readonly string[]) {
    const found = new Map<string, DedupEntry>();
    const now = Math.floor(Date.now() / 1000);
    for (const id of new Set(ids)) {
      const stored = this.ids.get(`${topicKey}#${id}`);
      if (stored && !(stored.exp < now)) {
        found.set(id, { id: stored.id, partition: stored.partition, offset: stored.offset });
        continue;
      }
      const member = this.delays ? parseLandedMemberId(id) : undefined;
      const positions = member ? this.delays!.groupRecords.get(`${topicKey}#${member.group}#${member.landing}`) : undefined;
      const place = member && positions !== undefined ? positionIn(positions, member.member) : undefined;
      if (place) found.set(id, { id, ...place });
    }
    return found;
  }
}

// ---------------------------------------------------------------------------------------------- group state

const pad = (n: number, width: number) => n.toString().padStart(width, '0');
const deadKey = (l: DeadLetter) => `d#${pad(l.deadAt, 13)}#${pad(l.message.partition, 3)}#${pad(l.message.offset, 15)}`;

interface GroupItems {
  progress: Map<number, PartitionProgress>;
  cursors: Map<string, BroadcastCursor>;
  deadLetters: Map<string, DeadLetter>;
  copies: Map<string, LogMessage>;
  slots: Map<number, { until: number; token: string }>;
  wakes: Map<number, number>;
}

const emptyGroup = (): GroupItems => ({
  progress: new Map(),
  cursors: new Map(),
  deadLetters: new Map(),
  copies: new Map(),
  slots: new Map(),
  wakes: new Map(),
});

export class MemoryGroupStateStore implements GroupStateStore {
  groups = new Map<string, GroupItems>();
  /** Progress as eventually consistent reads see it while the replica is frozen. */
  replica: Map<string, Map<number, PartitionProgress>> | undefined;
  private tokens = 0;

  constructor(private readonly calls: CallLog) {}

  private items(groupKey: string): GroupItems {
    let items = this.groups.get(groupKey);
    if (!items) {
      items = emptyGroup();
      this.groups.set(groupKey, items);
    }
    return items;
  }

  async getProgress(groupKey: string, partition: number, consistent = true) {
    this.calls.push(`groupState.getProgress${consistent ? '' : '(eventual)'}`);
    const stored = !consistent && this.replica ? this.replica.get(groupKey)?.get(partition) : this.groups.get(groupKey)?.progress.get(partition);
    return stored ? copy(stored) : undefined;
  }

  async listProgress(groupKey: string) {
    return new Map([...(this.groups.get(groupKey)?.progress ?? new Map<number, PartitionProgress>())].map(([p, v]) => [p, copy(v)]));
  }

  async putProgress(groupKey: string, partition: number, next: PartitionProgress, extra: ProgressExtra = {}) {
    this.calls.push('groupState.putProgress');
    const items = this.items(groupKey);
    const stored = items.progress.get(partition);
    const current = stored?.version ?? 0;
    // As DynamoDB's failed condition returns the stored item (ALL_OLD).
    if (next.version !== current + 1) throw new VersionConflict(stored ? copy(stored) : undefined);
    items.progress.set(partition, copy(next));
    for (const letter of extra.deadLetters ?? []) items.deadLetters.set(deadKey(letter), copy(letter));
    for (const r of extra.redriven ?? []) {
      items.deadLetters.delete(r.key);
      items.copies.set(`${r.message.partition}#${r.message.offset}`, copy(r.message));
    }
    for (const key of extra.droppedLetters ?? []) items.deadLetters.delete(key);
  }

  async getRedriveCopy(groupKey: string, partition: number, offset: number) {
    const stored = this.groups.get(groupKey)?.copies.get(`${partition}#${offset}`);
    return stored ? copy(stored) : undefined;
  }

  async getCursor(groupKey: string, consumerId: string, partition: number) {
    const stored = this.groups.get(groupKey)?.cursors.get(`${consumerId}#${partition}`);
    return stored ? copy(stored) : undefined;
  }

  async putCursor(groupKey: string, cursor: BroadcastCursor) {
    const items = this.items(groupKey);
    const key = `${cursor.consumerId}#${cursor.partition}`;
    const current = items.cursors.get(key)?.version ?? 0;
    if (cursor.version !== current + 1) throw new VersionConflict();
    items.cursors.set(key, copy(cursor));
  }

  async listCursors(groupKey: string) {
    return [...(this.groups.get(groupKey)?.cursors.values() ?? [])].map(copy);
  }

  async listDeadLetters(groupKey: string, limit: number, after?: string, maxBytes = Infinity): Promise<DeadLetterPage> {
    const all = [...(this.groups.get(groupKey)?.deadLetters ?? new Map<string, DeadLetter>())]
      .filter(([key]) => after === undefined || key > after)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    const letters: DeadLetterPage['letters'] = [];
    let bytes = 0;
    for (const [key, letter] of all) {
      if (letters.length >= limit) return { letters, next: letters.at(-1)!.key };
      const size = JSON.stringify(letter.message).length;
      if (letters.length > 0 && bytes + size > maxBytes) return { letters, next: letters.at(-1)!.key };
      bytes += size;
      letters.push({ ...copy(letter), key });
    }
    return { letters };
  }

  async claimSlot(groupKey: string, slots: number, until: number) {
    const items = this.items(groupKey);
    const now = Date.now();
    const start = Math.floor(Math.random() * slots);
    for (let i = 0; i < slots; i++) {
      const slot = (start + i) % slots;
      const held = items.slots.get(slot);
      if (held && !(held.until < now)) continue;
      const token = `slot${++this.tokens}`;
      items.slots.set(slot, { until, token });
      return { slot, token };
    }
    return undefined;
  }

  async releaseSlot(groupKey: string, held: { slot: number; token: string }) {
    const items = this.items(groupKey);
    if (items.slots.get(held.slot)?.token === held.token) items.slots.delete(held.slot);
  }

  async planWake(groupKey: string, partition: number, at: number) {
    const items = this.items(groupKey);
    const planned = items.wakes.get(partition);
    if (planned !== undefined && !(planned > at) && !(planned < Date.now())) return false;
    items.wakes.set(partition, at);
    return true;
  }

  async deleteGroupState(groupKey: string) {
    this.groups.delete(groupKey);
  }
}

// ---------------------------------------------------------------------------------------------- delays

interface DelayItem {
  pending: PendingItem;
  cancelled: boolean;
}

const dueSort = (p: PendingItem) => `${p.due.toString().padStart(15, '0')}#${p.id}`;

/** Pending messages (one item each) and groups (one item per group, members cancelled one by one), as delayStore.ts keeps them. */
export class MemoryDelayStore implements DelayStore {
  readonly items = new Map<string, DelayItem>();
  /** Groups' lookup records: "<topicKey>#<group>#<landing>" → positions (the de-duplication table's, on DynamoDB). */
  readonly groupRecords = new Map<string, string>();
  sweepCursor: number | undefined;

  private live(topicKey: string, id: string) {
    const item = this.items.get(`${topicKey}#${id}`);
    return item && !item.cancelled ? item.pending : undefined;
  }

  /** For the log store's landing transaction: the record is still at `version` and not cancelled. */
  unchanged(topicKey: string, id: string, version: number) {
    return this.live(topicKey, id)?.version === version;
  }

  land(landing: LandingChange) {
    const key = `${landing.topicKey}#${landing.id}`;
    const item = this.items.get(key)!;
    const g = landing.group;
    if (g) {
      this.groupRecords.set(`${key}#${g.landing}`, g.positions);
      const group = item.pending as PendingGroup;
      if (g.complete && !g.next) this.items.delete(key);
      else if (g.complete && g.next) item.pending = { ...group, ...g.next, landed: [], positions: '', version: landing.version + 1 };
      else item.pending = { ...group, landed: [...g.landed], positions: g.positions, version: landing.version + 1 };
      return;
    }
    if (!landing.next) this.items.delete(key);
    else {
      const next = landing.next;
      item.pending = { ...item.pending, due: next.due, landing: next.landing, queued: next.queued, version: next.version };
    }
  }

  async create(pending: PendingDelayed) {
    const key = `${pending.topicKey}#${pending.id}`;
    const stored = this.items.get(key);
    if (stored) return copy(stored.cancelled || isGroup(stored.pending) ? { ...pending, due: stored.pending.due } : stored.pending);
    this.items.set(key, { pending: copy(pending), cancelled: false });
    return undefined;
  }

  async createGroup(group: PendingGroup) {
    const key = `${group.topicKey}#${group.id}`;
    if (this.items.has(key)) throw new Error(`group ${group.id} exists`);
    this.items.set(key, { pending: copy(group), cancelled: false });
  }

  async get(topicKey: string, id: string) {
    const p = this.live(topicKey, id);
    return p && !isGroup(p) ? copy(p) : undefined;
  }

  async getGroup(topicKey: string, id: string) {
    const p = this.live(topicKey, id);
    return p && isGroup(p) ? copy(p) : undefined;
  }

  async getMany(topicKey: string, ids: readonly string[]) {
    const found = new Map<string, PendingItem>();
    for (const id of new Set(ids)) {
      const p = this.live(topicKey, id);
      if (p) found.set(id, copy(p));
    }
    return found;
  }

  private sorted(filter: (p: PendingItem) => boolean) {
    return [...this.items.values()]
      .filter((i) => !i.cancelled && filter(i.pending))
      .map((i) => i.pending)
      .sort((a, b) => (dueSort(a) < dueSort(b) ? -1 : 1));
  }

  async list(topicKey: string, limit: number, after?: string, from = false) {
    const all = this.sorted((p) => p.topicKey === topicKey && (after === undefined || dueSort(p) > after || (from && dueSort(p) === after)));
    const items = all.slice(0, limit).map(copy);
    return { items, ...(items.length === limit && items.length > 0 ? { next: dueSort(items.at(-1)!) } : {}) };
  }

  async cancel(topicKey: string, id: string) {
    const item = this.items.get(`${topicKey}#${id}`);
    if (!item || item.cancelled || isGroup(item.pending)) return false;
    item.cancelled = true;
    return true;
  }

  async cancelMember(topicKey: string, groupId: string, member: number) {
    const item = this.items.get(`${topicKey}#${groupId}`);
    if (!item || !isGroup(item.pending)) return false;
    const g = item.pending;
    const lastLanding = !g.repeat || g.landing >= g.repeat.times;
    if (member >= g.members.length || g.cancelled.includes(member) || (lastLanding && g.landed.includes(member))) return false;
    item.pending = { ...g, cancelled: [...g.cancelled, member].sort((a, b) => a - b), version: g.version + 1 };
    return true;
  }

  async drop(topicKey: string, id: string, version: number) {
    const key = `${topicKey}#${id}`;
    if (this.items.get(key)?.pending.version === version) this.items.delete(key);
  }

  async advanceGroup(topicKey: string, id: string, version: number, next: { due: number; landing: number; queued: boolean }) {
    const item = this.items.get(`${topicKey}#${id}`);
    if (!item || !isGroup(item.pending) || item.pending.version !== version) return;
    item.pending = { ...item.pending, ...next, landed: [], positions: '', version: version + 1 };
  }

  async dueIn(state: 'waiting' | 'queued', minute: number, limit: number, after?: string) {
    const all = this.sorted((p) => p.queued === (state === 'queued') && minuteOf(p.due) === minute && (after === undefined || dueSort(p) > after));
    const items = all.slice(0, limit).map(copy);
    return { items, ...(items.length === limit && items.length > 0 ? { next: dueSort(items.at(-1)!) } : {}) };
  }

  async markQueued(items: readonly PendingItem[]) {
    for (const p of items) {
      const stored = this.items.get(`${p.topicKey}#${p.id}`);
      if (stored && !stored.cancelled && stored.pending.version === p.version) stored.pending = { ...stored.pending, queued: true };
    }
  }

  async getSweepCursor() {
    return this.sweepCursor;
  }

  async putSweepCursor(minute: number) {
    this.sweepCursor = minute;
  }
}

// ---------------------------------------------------------------------------------------------- queues, secrets, keys

export class MemoryDelayQueue implements DelayQueue {
  readonly sent: DelayQueueMessage[] = [];
  /** Set to make the next sends fail (a queue outage). */
  failing: Error | undefined;

  constructor(readonly maxDelaySeconds = 900) {}

  async send(messages: readonly DelayQueueMessage[]) {
    if (this.failing) throw this.failing;
    this.sent.push(...copy(messages));
  }
}

export class MemoryPushQueue implements PushQueue {
  readonly sent: Array<{ work: PushWork; delaySeconds: number }> = [];

  async send(work: readonly PushWork[], delaySeconds: number) {
    for (const w of work) this.sent.push({ work: copy(w), delaySeconds });
  }
}

export class MemorySecretStore implements SecretStore {
  readonly secrets = new Map<string, string>();

  async get(groupKey: string) {
    return this.secrets.get(groupKey);
  }

  async put(groupKey: string, secret: string) {
    this.secrets.set(groupKey, secret);
  }
}

export class MemoryApiKeyStore implements ApiKeyStore {
  readonly records = new Map<string, ApiKeyRecord>();

  async get(keyHash: string) {
    const r = this.records.get(keyHash);
    return r ? copy(r) : undefined;
  }

  async put(record: ApiKeyRecord) {
    this.records.set(record.keyHash, copy(record));
  }

  async list() {
    return [...this.records.values()].map(copy);
  }

  async markRevoked(keyHash: string, at: number) {
    const r = this.records.get(keyHash);
    if (r) this.records.set(keyHash, { ...r, revokedAt: at });
  }
}

// ---------------------------------------------------------------------------------------------- all together

export interface MemoryStores extends Stores {
  readonly catalog: MemoryCatalogStore;
  readonly log: MemoryLogStore;
  readonly dedup: MemoryDedupStore;
  readonly groupState: MemoryGroupStateStore;
  readonly delays: MemoryDelayStore;
  readonly delayQueue: MemoryDelayQueue;
  readonly secrets: MemorySecretStore;
  readonly pushQueue: MemoryPushQueue;
  readonly sessions: MemorySessionStore;
  readonly calls: CallLog;
  /** Eventual consistency: freeze() keeps what eventually consistent reads see until thaw(). */
  readonly replica: { freeze(): void; thaw(): void };
}

export function memoryStores(options: { delayQueueMaxSeconds?: number } = {}): MemoryStores {
  const calls: CallLog = [];
  const ids = new Map<string, IdRecord>();
  const delays = new MemoryDelayStore();
  const log = new MemoryLogStore(ids, delays, calls);
  const groupState = new MemoryGroupStateStore(calls);
  return {
    catalog: new MemoryCatalogStore(),
    log,
    dedup: new MemoryDedupStore(ids, delays),
    groupState,
    delays,
    delayQueue: new MemoryDelayQueue(options.delayQueueMaxSeconds),
    secrets: new MemorySecretStore(),
    pushQueue: new MemoryPushQueue(),
    sessions: new MemorySessionStore(log, calls),
    calls,
    replica: {
      freeze() {
        log.replica = clonePartitions(log.partitions);
        groupState.replica = new Map([...groupState.groups].map(([k, v]) => [k, new Map([...v.progress].map(([p, s]) => [p, copy(s)]))]));
      },
      thaw() {
        log.replica = undefined;
        groupState.replica = undefined;
      },
    },
  };
}

/**
 * What removes a topic's old segments on AWS, at `now`: the retention pass (it protects each partition's
 * newest segment and deletes what TTL will not take), then DynamoDB TTL (instantly here; on AWS within
 * days). Returns how many segments went.
 */
export async function retentionAt(stores: MemoryStores, topicName: string, now = Date.now()): Promise<number> {
  const { trimTopic } = await import('../../functions/domain/log/retention.js');
  const deleted = await trimTopic(stores, topicName, now);
  return deleted + stores.log.sweepExpired(Math.floor(now / 1000));
}
