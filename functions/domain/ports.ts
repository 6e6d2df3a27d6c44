/**
 * What the domain needs from storage. The DynamoDB adapters (functions/adapters/) implement these;
 * the domain never sees a table, a client or an HTTP type.
 */
import type { GroupFilter } from './filter.js';
import type { LogMessage, Segment, StoredRecord } from './messages.js';
import type { PartitionProgress } from './progress.js';

export interface Topic {
  readonly name: string;
  readonly partitions: number;
  readonly retentionHours: number;
  readonly createdAt: number;
  /** Incarnation of the topic: a deleted and re-created topic gets a new one, so old data and groups stay apart. */
  readonly epoch: string;
  /** Set while a DELETE is under way: the topic no longer exists for clients and cannot be re-created yet. */
  readonly deletingSince?: number;
}

export type GroupMode = 'shared' | 'ordered' | 'broadcast';

export interface Group {
  readonly topic: string;
  readonly name: string;
  readonly topicEpoch: string;
  readonly mode: GroupMode;
  readonly maxDeliveries: number;
  readonly visibilitySeconds: number;
  readonly filter?: GroupFilter;
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
}

export interface SegmentWrite {
  readonly partition: number;
  readonly base: number;
  readonly producedAt: number;
  readonly records: readonly StoredRecord[];
}

export interface DedupEntry {
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
}

/** Thrown by appendSegment when another writer took the offset first. */
export class OffsetTaken extends Error {
  constructor() {
    super('offset already written');
  }
}

/** Thrown by appendSegment when producer ids of the segment were appended concurrently. */
export class IdsTaken extends Error {
  constructor(readonly ids: readonly string[]) {
    super('producer ids already appended');
  }
}

export interface LogStore {
  /** Newest segment of a partition (strongly consistent), or undefined for an empty log. */
  tail(topicKey: string, partition: number): Promise<{ base: number; count: number } | undefined>;
  /** Oldest segment still stored (the retention trimmer deletes older ones but never the newest). */
  head(topicKey: string, partition: number): Promise<{ base: number; count: number; producedAt: number } | undefined>;
  /** Appends a segment at exactly `base`, together with producer-id records, all or nothing. */
  appendSegment(topicKey: string, segment: SegmentWrite, ids: readonly DedupEntry[], idExpiresAt: number): Promise<void>;
  /** The segment holding `offset` (the newest with base <= offset), if any. */
  segmentAtOrBefore(topicKey: string, partition: number, offset: number): Promise<Segment | undefined>;
  /**
   * Up to `limit` segments with base >= `fromBase`, oldest first. `consistent: false` reads at half
   * the price; segments never change once written, so such a read can only miss the newest ones.
   */
  segmentsFrom(topicKey: string, partition: number, fromBase: number, limit: number, consistent?: boolean): Promise<Segment[]>;
  /** Deletes segments by base offset (retention). */
  deleteSegments(topicKey: string, partition: number, bases: readonly number[]): Promise<void>;
}

export interface DedupStore {
  getMany(topicKey: string, ids: readonly string[]): Promise<Map<string, DedupEntry>>;
}

export interface DeadLetter {
  readonly message: LogMessage;
  readonly deliveryCount: number;
  readonly deadAt: number;
}

/** Thrown by conditional writes of group state when someone else changed it first. */
export class VersionConflict extends Error {
  constructor() {
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

export interface GroupStateStore {
  /**
   * `consistent: false` costs half; callers use it only where the conditional write on `version`
   * catches a stale answer (and then re-read strongly).
   */
  getProgress(groupKey: string, partition: number, consistent?: boolean): Promise<PartitionProgress | undefined>;
  listProgress(groupKey: string): Promise<Map<number, PartitionProgress>>;
  /**
   * Writes progress if its stored version is still `next.version - 1` (or absent for version 1),
   * in the same transaction putting `deadLetters` and deleting `redrivenKeys`.
   */
  putProgress(
    groupKey: string,
    partition: number,
    next: PartitionProgress,
    extra?: { deadLetters?: readonly DeadLetter[]; redrivenKeys?: readonly string[] },
  ): Promise<void>;
  getCursor(groupKey: string, consumerId: string, partition: number): Promise<BroadcastCursor | undefined>;
  putCursor(groupKey: string, cursor: BroadcastCursor): Promise<void>;
  listCursors(groupKey: string): Promise<BroadcastCursor[]>;
  listDeadLetters(groupKey: string, limit: number): Promise<Array<DeadLetter & { key: string }>>;
  /** Removes every state item of a group (bounded: progress per partition, cursors, dead letters). */
  deleteGroupState(groupKey: string): Promise<void>;
}

export interface Stores {
  readonly catalog: CatalogStore;
  readonly log: LogStore;
  readonly dedup: DedupStore;
  readonly groupState: GroupStateStore;
}

export const topicKeyOf = (topic: Topic) => `${topic.name}@${topic.epoch}`;
export const groupKeyOf = (topic: Topic, group: string) => `${topicKeyOf(topic)}/${group}`;
