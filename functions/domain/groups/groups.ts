import { SluiceError, groupNotFound, validation } from '../errors.js';
import { checkExpression, ExpressionSyntaxError } from './expression.js';
import type { GroupFilter } from './filter.js';
import { ackFloor, applyReset, freshProgress, leasedCount } from './progress.js';
import { newSigningSecret } from '../ids.js';
import { groupKeyOf, topicKeyOf, VersionConflict, type DeliverySetting, type Group, type GroupMode, type Stores, type Topic } from '../ports.js';
import { parseTime } from '../time.js';
import { endOffsetOf, partitionInfo, requireTopic, TOPIC_CACHE_MS } from '../topics.js';
import { warmCache } from '../warmCache.js';

export interface GroupSettings {
  readonly mode: GroupMode;
  readonly startFrom: string | number;
  readonly maxDeliveries: number;
  readonly visibilitySeconds: number;
  readonly filter?: GroupFilter;
  /** JSONata whose result replaces the body delivered. */
  readonly transform?: string;
  /** Pull (absent) or push to an HTTPS endpoint or a Lambda function. */
  readonly delivery?: DeliverySetting;
  /** Replace an HTTP push group's signing secret (the new one is in the reply, once). */
  readonly rotateSecret?: boolean;
}

export interface PutGroupOutcome {
  readonly created: boolean;
  readonly group: Group;
  /** An HTTP push group's signing secret, in the reply that creates it or rotates it, and never again. */
  readonly signingSecret?: string;
}

/** Compiles the group's expressions (400 with jsonata's message and position, or the size) before anything is stored. */
function checkExpressions(settings: GroupSettings) {
  try {
    if (settings.filter?.expression !== undefined) checkExpression('filter.expression', settings.filter.expression);
    if (settings.transform !== undefined) checkExpression('transform', settings.transform);
  } catch (error) {
    if (error instanceof ExpressionSyntaxError) throw validation(error.message);
    throw error;
  }
}

export async function requireGroup(stores: Stores, topicName: string, groupName: string): Promise<{ topic: Topic; group: Group }> {
  const [topic, group] = await Promise.all([
    requireTopic(stores, topicName),
    stores.catalog.getGroup(topicName, groupName),
  ]);
  // A group left from an earlier topic of the same name (epoch differs) does not exist for this one.
  if (!group || group.topicEpoch !== topic.epoch) throw groupNotFound(topicName, groupName);
  return { topic, group };
}

/**
 * Pull, ack and nack trust a topic and group they read for as long as produce trusts a topic, so the
 * hot path pays no catalog reads; DELETE's wait covers both. Group setting changes reach warm handlers
 * within that time.
 */
const groupCache = warmCache<{ topic: Topic; group: Group }>(TOPIC_CACHE_MS);

/** `partitions`: at least this many are needed (a receipt or push work of a partition a growth added): an older copy is re-read. */
export const requireGroupCached = (stores: Stores, topicName: string, groupName: string, partitions = 0) =>
  groupCache(`${topicName}/${groupName}`, () => requireGroup(stores, topicName, groupName), (cached) => cached.topic.partitions >= partitions);

/** First offset of a partition produced at or after `time` (binary search over segments: O(log n) bounded reads). */
export async function offsetAtTime(stores: Stores, topic: Topic, partition: number, time: number): Promise<number> {
  const key = topicKeyOf(topic);
  const info = await partitionInfo(stores, topic, partition);
  let lo = info.startOffset;
  let hi = info.endOffset;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const segment = await stores.log.segmentAtOrBefore(key, partition, mid);
    if (!segment) {
      lo = mid + 1;
      continue;
    }
    // All messages of a segment share its produce time, so the answer is always a segment boundary. A
    // segment ending before `mid` means TTL took the ones after it first (it deletes in no order): the
    // offsets up to `mid` are gone, and a read from any of them starts at the next segment still there.
    if (segment.producedAt >= time) hi = Math.max(lo, segment.base);
    else lo = Math.max(segment.base + segment.count, mid + 1);
  }
  return lo;
}

export type Position = 'earliest' | 'latest' | { time: number } | { partition: number; offset: number };

export async function resolvePosition(stores: Stores, topic: Topic, partition: number, position: Position): Promise<number> {
  if (position === 'earliest') return (await partitionInfo(stores, topic, partition)).startOffset;
  if (position === 'latest') return endOffsetOf(stores, topic, partition);
  if ('time' in position) return offsetAtTime(stores, topic, partition, position.time);
  const info = await partitionInfo(stores, topic, partition);
  if (position.offset < info.startOffset || position.offset > info.endOffset) {
    throw validation(`offset ${position.offset} is outside partition ${partition} (${info.startOffset}..${info.endOffset}).`);
  }
  return position.offset;
}

export function parsePosition(startFrom: string | number): Position {
  if (startFrom === 'earliest' || startFrom === 'latest') return startFrom;
  return { time: parseTime(startFrom, 'startFrom') };
}

export async function putGroup(
  stores: Stores,
  topicName: string,
  groupName: string,
  settings: GroupSettings,
  now = Date.now(),
): Promise<PutGroupOutcome> {
  checkExpressions(settings);
  if (settings.delivery && settings.delivery.type !== 'pull' && settings.mode === 'broadcast') {
    throw validation('broadcast groups are pulled: every consumer instance names itself; push delivery needs a shared or ordered group.');
  }
  const outcome = await storeGroup(stores, topicName, groupName, settings, now);
  return withSigningSecret(stores, outcome, settings);
}

/**
 * An HTTP push group gets a signing secret when it is created, when asked to rotate it, and when it has
 * none (a group switched to push, or a create whose secret write failed and is retried).
 */
async function withSigningSecret(stores: Stores, outcome: { created: boolean; group: Group }, settings: GroupSettings): Promise<PutGroupOutcome> {
  if (outcome.group.delivery?.type !== 'http') return outcome;
  const topic = await requireTopic(stores, outcome.group.topic);
  const groupKey = groupKeyOf(topic, outcome.group.name);
  if (!outcome.created && !settings.rotateSecret && (await stores.secrets.get(groupKey))) return outcome;
  const signingSecret = newSigningSecret();
  await stores.secrets.put(groupKey, signingSecret);
  return { ...outcome, signingSecret };
}

async function storeGroup(
  stores: Stores,
  topicName: string,
  groupName: string,
  settings: GroupSettings,
  now: number,
): Promise<{ created: boolean; group: Group }> {
  const topic = await requireTopic(stores, topicName);
  const existing = await stores.catalog.getGroup(topicName, groupName);
  if (existing && existing.topicEpoch === topic.epoch) return updateGroup(stores, existing, settings);
  if (existing) {
    // Left over from a deleted topic of the same name; its state is keyed by the old epoch.
    await stores.catalog.deleteGroup(topicName, groupName);
  }
  const position = parsePosition(settings.startFrom);
  const startOffsets = await Promise.all(
    Array.from({ length: topic.partitions }, (_, p) => resolvePosition(stores, topic, p, position)),
  );
  const candidate: Group = {
    topic: topicName,
    name: groupName,
    topicEpoch: topic.epoch,
    mode: settings.mode,
    maxDeliveries: settings.maxDeliveries,
    visibilitySeconds: settings.visibilitySeconds,
    ...(settings.filter ? { filter: settings.filter } : {}),
    ...(settings.transform !== undefined ? { transform: settings.transform } : {}),
    ...(settings.delivery && settings.delivery.type !== 'pull' ? { delivery: settings.delivery } : {}),
    startFrom: typeof settings.startFrom === 'number' ? new Date(settings.startFrom).toISOString() : settings.startFrom,
    startOffsets,
    createdAt: now,
  };
  const result = await stores.catalog.createGroup(candidate);
  if (!result.created) return updateGroup(stores, result.group, settings);
  return result;
}

async function updateGroup(stores: Stores, existing: Group, settings: GroupSettings): Promise<{ created: boolean; group: Group }> {
  if (existing.mode !== settings.mode) {
    throw new SluiceError('Conflict', `Group '${existing.name}' exists with mode '${existing.mode}'; a group's mode cannot change.`);
  }
  const updated: Group = {
    ...existing,
    maxDeliveries: settings.maxDeliveries,
    visibilitySeconds: settings.visibilitySeconds,
  };
  const { filter: _old, transform: _oldTransform, delivery: _oldDelivery, ...withoutRules } = updated;
  const next: Group = {
    ...withoutRules,
    ...(settings.filter ? { filter: settings.filter } : {}),
    ...(settings.transform !== undefined ? { transform: settings.transform } : {}),
    ...(settings.delivery && settings.delivery.type !== 'pull' ? { delivery: settings.delivery } : {}),
  };
  if (JSON.stringify(next) !== JSON.stringify(existing)) await stores.catalog.updateGroup(next);
  return { created: false, group: next };
}

export interface PartitionLag {
  readonly partition: number;
  readonly ackedThrough: number;
  readonly endOffset: number;
  readonly inFlight: number;
  readonly lag: number;
}

export interface GroupView {
  readonly group: Group;
  readonly lag: number;
  readonly partitions: PartitionLag[];
  readonly consumers?: Array<{ consumerId: string; lag: number }>;
}

export const startOffsetOf = (group: Group, partition: number) => group.startOffsets[partition] ?? 0;

export async function describeGroup(stores: Stores, topicName: string, groupName: string, now = Date.now()): Promise<GroupView> {
  const { topic, group } = await requireGroup(stores, topicName, groupName);
  const key = groupKeyOf(topic, group.name);
  const partitionNumbers = Array.from({ length: topic.partitions }, (_, p) => p);
  const ends = await Promise.all(partitionNumbers.map((p) => endOffsetOf(stores, topic, p)));
  if (group.mode === 'broadcast') {
    const cursors = await stores.groupState.listCursors(key);
    const consumers = new Map<string, number>();
    const partitions = partitionNumbers.map((p) => {
      const mine = cursors.filter((c) => c.partition === p);
      const endOffset = ends[p]!;
      for (const c of mine) consumers.set(c.consumerId, (consumers.get(c.consumerId) ?? 0) + Math.max(0, endOffset - c.dispatched));
      const ackedThrough = mine.length > 0 ? Math.min(...mine.map((c) => c.dispatched)) : startOffsetOf(group, p);
      return { partition: p, ackedThrough, endOffset, inFlight: 0, lag: Math.max(0, endOffset - ackedThrough) };
    });
    return {
      group,
      lag: partitions.reduce((sum, p) => sum + p.lag, 0),
      partitions,
      consumers: [...consumers.entries()].map(([consumerId, lag]) => ({ consumerId, lag })),
    };
  }
  const progress = await stores.groupState.listProgress(key);
  const partitions = partitionNumbers.map((p) => {
    const state = progress.get(p) ?? freshProgress(startOffsetOf(group, p));
    const ackedThrough = ackFloor(state);
    const endOffset = ends[p]!;
    // Offsets beyond dispatched that were skipped by retention still count as lag until read.
    return { partition: p, ackedThrough, endOffset, inFlight: leasedCount(state, now), lag: Math.max(0, endOffset - ackedThrough) };
  });
  return { group, lag: partitions.reduce((sum, p) => sum + p.lag, 0), partitions };
}

/** Moves a group to a position. Leases are dropped, so outstanding receipts become stale. */
export async function resetGroup(stores: Stores, topicName: string, groupName: string, to: Position): Promise<{ partitions: Array<{ partition: number; offset: number }> }> {
  const { topic, group } = await requireGroup(stores, topicName, groupName);
  const key = groupKeyOf(topic, group.name);
  let partitions = Array.from({ length: topic.partitions }, (_, p) => p);
  if (typeof to === 'object' && 'partition' in to) {
    if (to.partition >= topic.partitions) throw validation(`partition must be below the topic's ${topic.partitions} partitions.`);
    partitions = [to.partition];
  }
  const targets = await Promise.all(partitions.map(async (p) => ({ partition: p, offset: await resolvePosition(stores, topic, p, to) })));
  if (group.mode === 'broadcast') {
    const cursors = await stores.groupState.listCursors(key);
    for (const target of targets) {
      for (const cursor of cursors.filter((c) => c.partition === target.partition)) {
        await retryOnConflict(async () => {
          const current = (await stores.groupState.getCursor(key, cursor.consumerId, target.partition)) ?? cursor;
          await stores.groupState.putCursor(key, { ...current, dispatched: target.offset, segmentHint: -1, version: current.version + 1 });
        });
      }
    }
    const startOffsets = [...group.startOffsets];
    for (const t of targets) startOffsets[t.partition] = t.offset;
    await stores.catalog.updateGroup({ ...group, startOffsets });
    return { partitions: targets };
  }
  for (const target of targets) {
    await retryOnConflict(async () => {
      const current = (await stores.groupState.getProgress(key, target.partition)) ?? freshProgress(startOffsetOf(group, target.partition));
      await stores.groupState.putProgress(key, target.partition, applyReset(current, target.offset));
    });
  }
  return { partitions: targets };
}

export async function retryOnConflict<T>(action: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await action();
    } catch (error) {
      if (!(error instanceof VersionConflict) || i >= attempts - 1) {
        if (error instanceof VersionConflict) throw new SluiceError('Throttled', 'Group state is contended; retry the request.');
        throw error;
      }
      await new Promise((r) => setTimeout(r, Math.random() * 10 * (i + 1)));
    }
  }
}
