import { randomBytes } from 'node:crypto';
import { SluiceError, topicNotFound } from './errors.js';
import { groupKeyOf, topicKeyOf, type Stores, type Topic } from './ports.js';
import { sleep } from './time.js';
import { warmCache } from './warmCache.js';

export interface TopicSettings {
  readonly partitions: number;
  readonly retentionHours: number;
}

export interface PartitionInfo {
  readonly partition: number;
  readonly startOffset: number;
  readonly endOffset: number;
}

/**
 * `PUT /v1/topics/{t}`: creates the topic, answers the stored one when the settings are the same, grows
 * it when only the partition count is larger (growTopic). A smaller count or another retention is 409.
 */
export async function createTopic(
  stores: Stores,
  name: string,
  settings: TopicSettings,
  now = Date.now(),
): Promise<{ created: boolean; topic: Topic }> {
  const candidate: Topic = { name, ...settings, createdAt: now, epoch: `${now.toString(36)}${randomBytes(3).toString('hex')}` };
  const result = await stores.catalog.createTopic(candidate);
  if (result.created) return result;
  const stored = result.topic;
  if (stored.deletingSince !== undefined) throw beingDeleted(name);
  if (stored.retentionHours !== settings.retentionHours) {
    throw new SluiceError(
      'Conflict',
      `Topic '${name}' exists with other settings (partitions ${stored.partitions}, retentionHours ${stored.retentionHours}).`,
    );
  }
  if (settings.partitions < stored.partitions) {
    throw new SluiceError(
      'Conflict',
      `Topic '${name}' has ${stored.partitions} partitions; shrinking a topic is not supported (a partition count can only grow).`,
    );
  }
  if (settings.partitions > stored.partitions) return { created: false, topic: await growTopic(stores, stored, settings.partitions) };
  // A retried or repeated PUT of a growth answers once the growth has switched, as the first one did.
  await untilSwitched(stored);
  return result;
}

const beingDeleted = (name: string) =>
  new SluiceError('Conflict', `Topic '${name}' is being deleted; create it again in a few seconds.`);

/**
 * Keyed messages of a grown topic switch to the new count this long after the catalog write: by then
 * every warm handler's cached copy of the topic (TOPIC_CACHE_MS) was read after the write, so all of
 * them route a key to the same partition at every moment (CLOCK_MARGIN_MS covers clocks and pauses).
 */
export const growthSwitchDelayMs = () => TOPIC_CACHE_MS + CLOCK_MARGIN_MS;

async function untilSwitched(topic: Topic) {
  const at = topic.growth?.at ?? 0;
  while (Date.now() < at) await sleep(at - Date.now());
}

/**
 * Grows `stored` to `partitions` with one conditional write (the stored topic must still be this
 * incarnation with this count, and not being deleted). New partitions start empty; every reader of the
 * topic picks them up with its next catalog read (cached copies: within TOPIC_CACHE_MS). Keyed messages
 * switch to the new count at `growth.at` (growthSwitchDelayMs after the write), and the PUT answers
 * only then: every keyed message produced after the reply is routed by the new count.
 * - a retry after a lost reply finds its own write (write token) and answers the grown topic;
 * - a racing growth that won first: 200 if it grew to the same count, else 409 (one winner);
 * - a growth still switching is waited for first, so a key never routes by three counts at once.
 */
async function growTopic(stores: Stores, stored: Topic, partitions: number): Promise<Topic> {
  await untilSwitched(stored);
  const outcome = await stores.catalog.growTopic(stored, partitions, Date.now() + growthSwitchDelayMs());
  const latest = outcome.topic;
  if (!latest) throw topicNotFound(stored.name);
  if (!outcome.grown) {
    if (latest.deletingSince !== undefined) throw beingDeleted(stored.name);
    if (latest.epoch !== stored.epoch || latest.partitions !== partitions) {
      throw new SluiceError(
        'Conflict',
        `Topic '${stored.name}' changed while it was being grown (it has ${latest.partitions} partitions now, after a concurrent PUT or a delete); send the PUT again.`,
      );
    }
  }
  await untilSwitched(latest);
  return latest;
}

export async function requireTopic(stores: Stores, name: string): Promise<Topic> {
  const topic = await stores.catalog.getTopic(name);
  if (!topic || topic.deletingSince !== undefined) throw topicNotFound(name);
  return topic;
}

/**
 * How long a warm produce handler trusts a topic it has read, so that a produce costs one write and no
 * read. DELETE waits this long before it answers (see deleteTopic), so no produce that starts after a
 * DELETE has answered can land in the deleted topic.
 */
export const TOPIC_CACHE_MS = 1000;
const topicCache = warmCache<Topic>(TOPIC_CACHE_MS);

/**
 * The topic from the warm cache. `partitions`: the caller needs a topic with at least this many (an
 * explicit partition of a produce or a delayed landing): a cached copy from before a growth is re-read.
 */
export const requireTopicCached = (stores: Stores, name: string, partitions = 0): Promise<Topic> =>
  topicCache(name, () => requireTopic(stores, name), (topic) => topic.partitions >= partitions);

/** Next offset to be written in a partition (one Query, newest first). */
export async function endOffsetOf(stores: Stores, topic: Topic, partition: number): Promise<number> {
  const tail = await stores.log.tail(topicKeyOf(topic), partition);
  return tail ? tail.base + tail.count : 0;
}

export async function partitionInfo(stores: Stores, topic: Topic, partition: number): Promise<PartitionInfo> {
  const key = topicKeyOf(topic);
  const [head, tail] = await Promise.all([stores.log.head(key, partition), stores.log.tail(key, partition)]);
  const endOffset = tail ? tail.base + tail.count : 0;
  return { partition, startOffset: head ? head.base : endOffset, endOffset };
}

export async function describeTopic(stores: Stores, name: string): Promise<{ topic: Topic; partitionsInfo: PartitionInfo[] }> {
  const topic = await requireTopic(stores, name);
  const partitionsInfo = await Promise.all(
    Array.from({ length: topic.partitions }, (_, p) => partitionInfo(stores, topic, p)),
  );
  return { topic, partitionsInfo };
}

export const listTopics = (stores: Stores) => stores.catalog.listTopics();

/**
 * Extra wait on top of the cache's second: the deleting handler and a produce handler run on different
 * hosts, whose clocks (Amazon Time Sync) agree to well under a millisecond; 250 ms also covers a
 * produce handler paused between its cache check and its write (a GC pause, a slow event loop).
 */
const CLOCK_MARGIN_MS = 250;

/**
 * Deletes a topic and its groups:
 * 1. mark the topic as being deleted: from now on it is gone for every fresh read, and cannot be re-created;
 * 2. delete its groups and their state;
 * 3. wait until produce handlers' cached copies (TOPIC_CACHE_MS) have expired, then remove the topic.
 * A crash at any step leaves the mark in place, and a repeated DELETE finishes the job. The log is
 * left to the retention pass (the topic is "buried" for it); a new topic of the same name has a new
 * epoch and never sees the old log.
 */
export async function deleteTopic(stores: Stores, name: string, now = Date.now()): Promise<void> {
  let topic = await stores.catalog.getTopic(name);
  if (!topic) throw topicNotFound(name);
  await stores.catalog.markTopicDeleting(topic, now);
  // Counted from when the mark is surely stored (the write returned), not from when it was sent: a
  // handler that read the topic just before the mark was applied trusts it until its read + 1 s.
  const since = topic.deletingSince ?? Date.now();
  // The topic as marked: a growth that landed between the read above and the mark added partitions,
  // and the grave must name them all (no growth lands after the mark). Gone meanwhile: keep the read.
  const marked = await stores.catalog.getTopic(name);
  if (marked && marked.epoch === topic.epoch) topic = marked;
  for (const group of await stores.catalog.listGroups(name)) {
    await stores.groupState.deleteGroupState(groupKeyOf(topic, group.name));
    await stores.catalog.deleteGroup(name, group.name);
  }
  const wait = since + TOPIC_CACHE_MS + CLOCK_MARGIN_MS - Date.now();
  if (wait > 0) await sleep(wait);
  // The retention pass deletes the buried incarnation's log, then forgets it.
  await stores.catalog.buryTopic(topic);
  await stores.catalog.deleteTopic(name);
}
