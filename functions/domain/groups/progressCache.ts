import { VersionConflict, type GroupStateStore, type ProgressExtra } from '../ports.js';
import type { PartitionProgress } from './progress.js';

/**
 * What a warm process knows of the progress items it works on: the version it wrote last, the item a
 * failed condition returned (DynamoDB hands it back with the failure, strongly consistent), or the newest
 * version it read. A pull or ack plans on the known item instead of reading it again.
 *
 * Why that is safe: every progress write is conditional on the version it was planned on, and a version
 * number is written once per item (versions only grow, and a group's items go only with its topic, whose
 * next incarnation has other keys), so an item seen at version v is the item at version v.
 * - A plan on a known item that another process has changed since fails its write; the failure carries
 *   the current item, which replaces the known one, and the retry plans on that.
 * - A plan that writes nothing (nothing to deliver, acks that change nothing) has no write to check it:
 *   the caller confirms it with a read (as strong as it would have read without the cache), and keeps it
 *   only if the read shows the same version.
 * - A write whose outcome is unknown (an error other than the condition) forgets the item.
 *
 * One map per store object: a store is a process's connection to the table, so a test simulates another
 * process (another Lambda instance) with another store object. Bounded to MAX_KNOWN items per store (an item
 * holds up to 1024 in-flight entries: at most a few tens of MB in all), the least recently learned going first.
 */
const MAX_KNOWN = 256;
let known = new WeakMap<GroupStateStore, Map<string, PartitionProgress>>();

const keyOf = (groupKey: string, partition: number) => `${partition}/${groupKey}`;

function mapOf(store: GroupStateStore): Map<string, PartitionProgress> {
  let map = known.get(store);
  if (!map) {
    map = new Map();
    known.set(store, map);
  }
  return map;
}

export function knownProgress(store: GroupStateStore, groupKey: string, partition: number): PartitionProgress | undefined {
  return known.get(store)?.get(keyOf(groupKey, partition));
}

function set(store: GroupStateStore, groupKey: string, partition: number, progress: PartitionProgress) {
  const map = mapOf(store);
  const key = keyOf(groupKey, partition);
  map.delete(key); // re-inserted last: the map's order is least recently learned first
  map.set(key, progress);
  if (map.size > MAX_KNOWN) map.delete(map.keys().next().value!);
}

function forget(store: GroupStateStore, groupKey: string, partition: number) {
  known.get(store)?.delete(keyOf(groupKey, partition));
}

/** Reads the item (as `consistent` says) and keeps it when it is newer than the known one. */
export async function readProgress(
  store: GroupStateStore,
  groupKey: string,
  partition: number,
  consistent: boolean,
): Promise<PartitionProgress | undefined> {
  const progress = await store.getProgress(groupKey, partition, consistent);
  if (progress && progress.version > (knownProgress(store, groupKey, partition)?.version ?? 0)) set(store, groupKey, partition, progress);
  return progress;
}

/**
 * The store's conditional write, remembering its outcome: the written item, or the current item a failed
 * condition returned; the item is forgotten when the outcome is unknown.
 */
export async function writeProgress(
  store: GroupStateStore,
  groupKey: string,
  partition: number,
  next: PartitionProgress,
  extra?: ProgressExtra,
): Promise<void> {
  try {
    await store.putProgress(groupKey, partition, next, extra);
  } catch (error) {
    if (error instanceof VersionConflict && error.current) set(store, groupKey, partition, error.current);
    else forget(store, groupKey, partition);
    throw error;
  }
  set(store, groupKey, partition, next);
}

/** Every process forgets what it knew (tests: the next request starts as in a cold Lambda instance). */
export function forgetKnownProgress() {
  known = new WeakMap();
}
