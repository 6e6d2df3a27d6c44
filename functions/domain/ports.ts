/**
 * What the domain needs from storage. The DynamoDB adapters (functions/adapters/) implement these;
 * the domain never sees a table, a client or an HTTP type.
 */
import type { GroupFilter } from './groups/filter.js';
import type { LogMessage, Segment, StoredRecord } from './messages.js';
import type { PartitionProgress } from './groups/progress.js';

export interface Topic {
  readonly name: string;
  readonly partitions: number;
  readonly retentionHours: number;
  readonly createdAt: number;
  /** Incarnation of the topic: a deleted and re-created topic gets a new one, so old data and groups stay apart. */
  readonly epoch: string;
  /** Set while a DELETE is under way: the topic no longer exists for clients and cannot be re-created yet. */
  readonly deletingSince?: number;
  /**
   * The topic's latest growth (functions/domain/topics.ts, growTopic): keyed messages are spread over
   * `from` partitions until `at` (epoch ms), over `partitions` from then on.
   */
  readonly growth?: { readonly from: number; readonly at: number };
}

export type GroupMode = 'shared' | 'ordered' | 'broadcast';

/** How a group's messages reach its consumers (API.md "Delivery"): pulled, or pushed by Sluice. */
export type DeliverySetting =
  | { readonly type: 'pull' }
  | {
      readonly type: 'http';
      readonly url: string;
      readonly batchSize: number;
      readonly maxConcurrency: number;
      readonly timeoutSeconds: number;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | { readonly type: 'lambda'; readonly functionArn: string; readonly batchSize: number; readonly maxConcurrency: number; readonly timeoutSeconds: number };

/** Push signing secrets, kept apart from group settings so only the functions that need them can read them. */
export interface SecretStore {
  get(groupKey: string): Promise<string | undefined>;
  put(groupKey: string, secret: string): Promise<void>;
}

export interface Group {
  readonly topic: string;
  readonly name: string;
  readonly topicEpoch: string;
  readonly mode: GroupMode;
  readonly maxDeliveries: number;
  readonly visibilitySeconds: number;
  readonly filter?: GroupFilter;
  /** JSONata whose result replaces the body delivered (functions/domain/groups/filter.ts, screenMessages). */
  readonly transform?: string;
  /** Absent: pull. */
  readonly delivery?: DeliverySetting;
  readonly startFrom: string;
  /** Offset each partition starts at, resolved from `startFrom` when the group was created. */
  readonly startOffsets: readonly number[];
  readonly createdAt: number;
}

export interface CatalogStore {
  getTopic(name: string): Promise<Topic | undefined>;
  /** Creates the topic unless one exists; returns the stored topic either way. */
  createTopic(topic: Topic): Promise<{ created: boolean; topic: Topic }>;
  listTopics(): Promise<Topic[]>;
  /**
   * Grows `topic` to `partitions` (keyed routing switches at `switchAt`) if the stored topic is still that
   * incarnation with `topic.partitions` partitions and not being deleted: one conditional write, which a
   * retry after a lost reply recognises as its own. Answers whether it grew the topic, and the stored
   * topic (after the write, or the one that failed the condition; undefined when there is none).
   */
  growTopic(topic: Topic, partitions: number, switchAt: number): Promise<{ grown: boolean; topic?: Topic }>;
  /** Marks the topic of this epoch as being deleted (idempotent). */
  markTopicDeleting(topic: Topic, at: number): Promise<void>;
  deleteTopic(name: string): Promise<void>;
  /** Remembers a deleted incarnation until the retention pass has removed its log (idempotent). */
  buryTopic(topic: Topic): Promise<void>;
  listBuriedTopics(): Promise<Topic[]>;
  forgetBuriedTopic(topic: Topic): Promise<void>;
  getGroup(topic: string, group: string): Promise<Group | undefined>;
  /** Creates the group unless one exists; returns the stored group either way. */
  createGroup(group: Group): Promise<{ created: boolean; group: Group }>;
  updateGroup(group: Group): Promise<void>;
  listGroups(topic: string): Promise<Group[]>;
  deleteGroup(topic: string, group: string): Promise<void>;
  /** Where the last retention pass that ran out of time stopped: the topic key it started last. */
  getRetentionCursor(): Promise<string | undefined>;
  putRetentionCursor(lastStarted: string): Promise<void>;
}

export interface SegmentWrite {
  readonly partition: number;
  readonly base: number;
  readonly producedAt: number;
  readonly records: readonly StoredRecord[];
  /**
   * When DynamoDB TTL may delete the segment (epoch seconds, functions/domain/log/expiry.ts). Absent: never
   * by TTL (segments written before TTL was used); the retention pass deletes those itself.
   */
  readonly expiresAt?: number;
}

/** A segment's key, size and times, without its records (retention's listing). */
export interface SegmentKey {
  readonly base: number;
  readonly count: number;
  readonly producedAt: number;
  /** Its TTL attribute (epoch seconds); absent when TTL never deletes it. */
  readonly expiresAt?: number;
}

export interface DedupEntry {
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
}

/** Thrown by appendSegment when another writer took the offset first. */
export class OffsetTaken extends Error {
  /** Where the segment that took the offset ends, when the store saw it: the next offset to try. */
  constructor(readonly endOfWinner?: number) {
    super('offset already written');
  }
}

/** Thrown by appendSegment when producer ids of the segment were appended concurrently. */
export class IdsTaken extends Error {
  constructor(readonly ids: readonly string[]) {
    super('producer ids already appended');
  }
}

/** A landing of a delayed message (or of members of a group), written in the same transaction as its segment. */
export interface LandingChange {
  readonly topicKey: string;
  /** The pending record's id (a group's id for a group). */
  readonly id: string;
  /** The pending record's version the landing read: the landing applies only if it is still that one. */
  readonly version: number;
  /** For a repeating message with landings left: the record's next state (else the record goes). */
  readonly next?: PendingDelayed;
  /** Members of a group landing in this segment: the group item moves to version + 1 (functions/domain/log/landings.ts). */
  readonly group?: GroupLandingChange;
}

/** What a segment that carries members of a group does to the group's item, and the group's lookup record. */
export interface GroupLandingChange {
  /** The landing (1 without repeat) these members belong to. */
  readonly landing: number;
  /** Members landed in this landing so far, this segment's included. */
  readonly landed: readonly number[];
  /** Where they landed (functions/domain/log/landings.ts, encodePosition): the lookup record by id. */
  readonly positions: string;
  /** This segment completes the landing: the group item goes, or moves on to `next` (a repeat). */
  readonly complete: boolean;
  readonly next?: { readonly due: number; readonly landing: number; readonly queued: boolean };
  /** When the lookup record expires (epoch seconds): as producer ids do. */
  readonly expiresAt: number;
}

/** Thrown by appendSegment when pending records of landings were cancelled or changed meanwhile. */
export class LandingsGone extends Error {
  constructor(readonly ids: readonly string[]) {
    super('pending delayed messages changed meanwhile');
  }
}

/** A delayed message waiting to land (functions/domain/delay/). */
export interface PendingDelayed {
  readonly topicKey: string;
  readonly id: string;
  /** When the next landing is due (epoch ms). */
  readonly due: number;
  /** The message as it will be stored (its `i` is the id). */
  readonly record: StoredRecord;
  readonly key?: string;
  readonly partition?: number;
  readonly repeat?: { readonly everySeconds: number; readonly times: number };
  /** 1-based number of the next landing (1 without repeat). */
  readonly landing: number;
  /** Handed to the delay queue (the sweep leaves it alone until it is overdue). */
  readonly queued: boolean;
  readonly version: number;
  readonly createdAt: number;
}

/** One delayed message of a group: its record (without its id: the group's id and its index make it). */
export interface GroupMember {
  readonly record: StoredRecord;
  readonly partition?: number;
}

/**
 * The id-less delayed messages of one produce request that are due at the same moment, repeat alike and
 * go to the same partition (functions/domain/delay/groups.ts): one item, landed in one transaction.
 */
export interface PendingGroup {
  readonly topicKey: string;
  /** The group's id; member i's id is memberId(id, i). */
  readonly id: string;
  readonly due: number;
  readonly members: readonly GroupMember[];
  /** Indexes of cancelled members. */
  readonly cancelled: readonly number[];
  /** Members of the current landing that landed already (a landing split over segments), and where. */
  readonly landed: readonly number[];
  readonly positions: string;
  readonly repeat?: { readonly everySeconds: number; readonly times: number };
  readonly landing: number;
  readonly queued: boolean;
  readonly version: number;
  readonly createdAt: number;
}

/** A stored pending item: one message (a producer id, or written before groups existed) or a group. */
export type PendingItem = PendingDelayed | PendingGroup;

export const isGroup = (p: PendingItem): p is PendingGroup => 'members' in p;

export interface DelayQueueMessage {
  readonly topicKey: string;
  readonly ids: readonly string[];
  readonly delaySeconds: number;
}

export interface DelayStore {
  /** Stores a new pending message unless one with its id exists; returns the existing one then. */
  create(pending: PendingDelayed): Promise<PendingDelayed | undefined>;
  /** Stores a new group (a fresh random id: a retry of its own write counts as written). */
  createGroup(group: PendingGroup): Promise<void>;
  /** A pending message stored on its own (not a group). */
  get(topicKey: string, id: string): Promise<PendingDelayed | undefined>;
  getGroup(topicKey: string, id: string): Promise<PendingGroup | undefined>;
  /** Pending items (messages or groups) by their ids, strongly consistent. */
  getMany(topicKey: string, ids: readonly string[]): Promise<Map<string, PendingItem>>;
  /**
   * Pending items of a topic in due order (sort key "<due, 15 digits>#<id>"), after the sort key `after`
   * (or from it, when `from` is set: a page that stopped inside a group), up to `limit` items.
   */
  list(topicKey: string, limit: number, after?: string, from?: boolean): Promise<{ items: PendingItem[]; next?: string }>;
  /** Deletes a pending message; false when there was none. */
  cancel(topicKey: string, id: string): Promise<boolean>;
  /** Cancels member `member` of a group unless it landed (or is landing) for the last time; false when not pending. */
  cancelMember(topicKey: string, groupId: string, member: number): Promise<boolean>;
  /** Deletes a pending item if it is still at `version` (a landing of a deleted topic, a duplicate id, an empty group). */
  drop(topicKey: string, id: string, version: number): Promise<void>;
  /** Moves a group still at `version` on to its next landing (all members left landed or cancelled). */
  advanceGroup(topicKey: string, id: string, version: number, next: { due: number; landing: number; queued: boolean }): Promise<void>;
  /** Pending items due in one minute, waiting (`waiting`) or handed to the queue (`queued`). */
  dueIn(state: 'waiting' | 'queued', minute: number, limit: number, after?: string): Promise<{ items: PendingItem[]; next?: string }>;
  /** Marks pending items as handed to the queue, each only if still at its version. */
  markQueued(items: readonly PendingItem[]): Promise<void>;
  getSweepCursor(): Promise<number | undefined>;
  putSweepCursor(minute: number): Promise<void>;
}

export interface DelayQueue {
  /** The longest delay the queue takes (SQS DelaySeconds: 900 at most; lower locally to test the sweep path). */
  readonly maxDelaySeconds: number;
  send(messages: readonly DelayQueueMessage[]): Promise<void>;
}

export interface LogStore {
  /** Newest segment of a partition (strongly consistent), or undefined for an empty log. */
  tail(topicKey: string, partition: number): Promise<SegmentKey | undefined>;
  /** Oldest segment still stored (the retention trimmer deletes older ones but never the newest). */
  head(topicKey: string, partition: number): Promise<{ base: number; count: number; producedAt: number } | undefined>;
  /** Appends a segment at exactly `base`, together with producer-id records and landings, all or nothing. */
  appendSegment(
    topicKey: string,
    segment: SegmentWrite,
    ids: readonly DedupEntry[],
    idExpiresAt: number,
    landings?: readonly LandingChange[],
  ): Promise<void>;
  /** The segment holding `offset` (the newest with base <= offset), if any. */
  segmentAtOrBefore(topicKey: string, partition: number, offset: number): Promise<Segment | undefined>;
  /**
   * Up to `limit` segments with base >= `fromBase`, oldest first. `consistent: false` reads at half
   * the price; segments never change once written, so such a read can only miss the newest ones.
   */
  segmentsFrom(topicKey: string, partition: number, fromBase: number, limit: number, consistent?: boolean): Promise<Segment[]>;
  /** Deletes segments by base offset (retention). */
  deleteSegments(topicKey: string, partition: number, bases: readonly number[]): Promise<void>;
  /**
   * Sets (or, with undefined, removes) the TTL attribute of an existing segment (retention: a partition's
   * newest segment must not expire; a longer retention moves expiry on). False when the segment is gone:
   * the call never creates one.
   */
  setSegmentExpiry(topicKey: string, partition: number, base: number, expiresAt: number | undefined): Promise<boolean>;
  /**
   * Keys of up to `limit` segments with base >= `fromBase`, oldest first, without their records
   * (retention). Pages through DynamoDB's 1 MB Query pages until `limit` or the partition's end.
   * Eventually consistent: it may miss the newest segments or show one just deleted, never skip an old one.
   */
  segmentKeysFrom(topicKey: string, partition: number, fromBase: number, limit: number): Promise<SegmentKey[]>;
}

/** A producer session's head (functions/domain/sessions/): the next sequence it expects. */
export interface SessionHead {
  readonly next: number;
}

/**
 * Where one request of a session landed: sequences `first` .. `first + count - 1`, in message order, as
 * runs of consecutive offsets `[partition, offset, count]`, all produced at `producedAt`.
 */
export interface SessionRecord {
  readonly first: number;
  readonly count: number;
  readonly producedAt: number;
  readonly runs: ReadonlyArray<readonly [partition: number, offset: number, count: number]>;
}

/**
 * One request of a session: its segments, its record and the head's move from `record.first` to the
 * record's end, all or nothing. The head must be at `record.first` (absent, when that is 0).
 */
export interface SessionAppend {
  readonly topicKey: string;
  readonly session: string;
  readonly segments: readonly SegmentWrite[];
  readonly record: SessionRecord;
  /** When the head and the record may expire (epoch seconds). */
  readonly expiresAt: number;
}

/** Thrown by SessionStore.append when another writer got there first; nothing was written. */
export class SessionAppendCancelled extends Error {
  constructor(
    /** The head was not where the request starts: another request of the session, a retry, or a gap. */
    readonly headMoved: boolean,
    /** The head as the failed condition found it (undefined: no head), when headMoved. */
    readonly head: SessionHead | undefined,
    /** Partitions whose offset was taken, with where the winner ends when the store saw it. */
    readonly offsetsTaken: ReadonlyMap<number, number | undefined>,
  ) {
    super('session append cancelled');
  }
}

export interface SessionStore {
  /** The session's head, strongly consistent; undefined for a session never seen (or expired). */
  head(topicKey: string, session: string): Promise<SessionHead | undefined>;
  /** Records whose first sequence is within [fromFirst, toFirst], strongly consistent, in sequence order. */
  records(topicKey: string, session: string, fromFirst: number, toFirst: number): Promise<SessionRecord[]>;
  /** Writes the segments, the record and the head's move in one transaction, or throws SessionAppendCancelled. */
  append(write: SessionAppend): Promise<void>;
}

export interface DedupStore {
  getMany(topicKey: string, ids: readonly string[]): Promise<Map<string, DedupEntry>>;
}

export interface DeadLetter {
  readonly message: LogMessage;
  readonly deliveryCount: number;
  readonly deadAt: number;
  /** Why it died: maxDeliveries, or a filter expression / transform that failed (with jsonata's message). */
  readonly reason?: string;
}

/** Thrown by conditional writes of group state when someone else changed it first. */
export class VersionConflict extends Error {
  constructor(
    /**
     * The progress item the failed condition saw (DynamoDB returns it with the failure, at no cost): what a
     * strongly consistent read would answer now. Undefined when the store did not say.
     */
    readonly current?: PartitionProgress,
  ) {
    super('group state changed concurrently');
  }
}

export interface BroadcastCursor {
  readonly consumerId: string;
  readonly partition: number;
  readonly dispatched: number;
  readonly segmentHint: number;
  readonly version: number;
}

export interface DeadLetterPage {
  readonly letters: Array<DeadLetter & { key: string }>;
  /** Where the next page starts, when there may be more. */
  readonly next?: string;
}

/** What a progress write carries in the same transaction. */
export interface ProgressExtra {
  /** Dead letters to put (with their message copies). */
  readonly deadLetters?: readonly DeadLetter[];
  /** Dead letters redriven as entries with a kept copy: their items go, the copies stay until TTL. */
  readonly redriven?: ReadonlyArray<{ key: string; message: LogMessage }>;
  /** Dead-letter items to delete without a copy (their offsets come again from the log). */
  readonly droppedLetters?: readonly string[];
}

/** One unit of push work: a push group's partition that may have messages to deliver. */
export interface PushWork {
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
}

export interface PushQueue {
  send(work: readonly PushWork[], delaySeconds: number): Promise<void>;
}

export interface GroupStateStore {
  /**
   * `consistent: false` costs half; callers use it only where the conditional write on `version`
   * catches a stale answer (and then re-read strongly).
   */
  getProgress(groupKey: string, partition: number, consistent?: boolean): Promise<PartitionProgress | undefined>;
  listProgress(groupKey: string): Promise<Map<number, PartitionProgress>>;
  /**
   * Writes progress if its stored version is still `next.version - 1` (or absent for version 1),
   * in the same transaction as `extra`. A retry of a write that was applied counts as applied.
   */
  putProgress(groupKey: string, partition: number, next: PartitionProgress, extra?: ProgressExtra): Promise<void>;
  /** The kept copy of a redriven dead letter. */
  getRedriveCopy(groupKey: string, partition: number, offset: number): Promise<LogMessage | undefined>;
  getCursor(groupKey: string, consumerId: string, partition: number): Promise<BroadcastCursor | undefined>;
  putCursor(groupKey: string, cursor: BroadcastCursor): Promise<void>;
  listCursors(groupKey: string): Promise<BroadcastCursor[]>;
  /** Oldest dead letters first, up to `limit` and (after the first) `maxBytes` of message copies. */
  listDeadLetters(groupKey: string, limit: number, after?: string, maxBytes?: number): Promise<DeadLetterPage>;
  /**
   * Claims one of a push group's `slots` delivery slots until `until` (maxConcurrency); undefined when all
   * are held. A claim retried after a lost reply is recognised as the caller's own.
   */
  claimSlot(groupKey: string, slots: number, until: number): Promise<{ slot: number; token: string } | undefined>;
  releaseSlot(groupKey: string, slot: { slot: number; token: string }): Promise<void>;
  /**
   * Records that a wake-up of a push partition is queued for `at`, unless one at or before `at` is already
   * queued and still ahead; false then (the caller sends nothing), so wake-ups do not pile up.
   */
  planWake(groupKey: string, partition: number, at: number): Promise<boolean>;
  /** Removes every state item of a group (bounded: progress per partition, cursors, dead letters). */
  deleteGroupState(groupKey: string): Promise<void>;
}

export interface Stores {
  readonly catalog: CatalogStore;
  readonly log: LogStore;
  readonly dedup: DedupStore;
  readonly groupState: GroupStateStore;
  readonly delays: DelayStore;
  readonly delayQueue: DelayQueue;
  readonly secrets: SecretStore;
  readonly pushQueue: PushQueue;
  readonly sessions: SessionStore;
}

export const topicKeyOf = (topic: Topic) => `${topic.name}@${topic.epoch}`;
/** The topic name of a topic key (names cannot contain '@'). */
export const topicNameOf = (topicKey: string) => topicKey.slice(0, topicKey.lastIndexOf('@'));
export const groupKeyOf = (topic: Topic, group: string) => `${topicKeyOf(topic)}/${group}`;
