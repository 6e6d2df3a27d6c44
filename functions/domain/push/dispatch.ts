import { topicKeyOf, topicNameOf, type Group, type PushWork, type Stores, type Topic } from '../ports.js';
import { TOPIC_CACHE_MS } from '../topics.js';
import { warmCache } from '../warmCache.js';

/** A topic's push groups, trusted for as long as a warm handler trusts a topic (DELETE's wait covers it). */
const pushGroupsCache = warmCache<{ topic?: Topic; groups: Group[] }>(TOPIC_CACHE_MS);

async function pushGroupsOf(stores: Stores, topicName: string) {
  return pushGroupsCache(topicName, async () => {
    const topic = await stores.catalog.getTopic(topicName);
    if (!topic || topic.deletingSince !== undefined) return { groups: [] };
    const groups = (await stores.catalog.listGroups(topicName)).filter(
      (g) => g.topicEpoch === topic.epoch && g.delivery !== undefined && g.delivery.type !== 'pull',
    );
    return { topic, groups };
  });
}

/**
 * The push dispatcher: new segments (from the log's DynamoDB stream) become push work, one queue message
 * per push group and partition that received messages. A topic without push groups costs one cached
 * catalog read per second at most; idle topics cost nothing (the stream only fires on writes).
 */
export async function dispatchPush(stores: Stores, segments: ReadonlyArray<{ topicKey: string; partition: number }>): Promise<number> {
  const byTopic = new Map<string, Set<number>>();
  for (const s of segments) byTopic.set(s.topicKey, (byTopic.get(s.topicKey) ?? new Set()).add(s.partition));
  const work: PushWork[] = [];
  for (const [topicKey, partitions] of byTopic) {
    const name = topicNameOf(topicKey);
    const { topic, groups } = await pushGroupsOf(stores, name);
    // A segment of an older incarnation (a produce racing a delete) has nobody to push to.
    if (!topic || topicKeyOf(topic) !== topicKey) continue;
    for (const group of groups) for (const partition of partitions) work.push({ topic: name, group: group.name, partition });
  }
  if (work.length > 0) await stores.pushQueue.send(work, 0);
  return work.length;
}

/** The log's stream names each segment by its key: pk "<topic>@<epoch>#<partition>". */
export function segmentOfLogKey(pk: string): { topicKey: string; partition: number } | undefined {
  const at = pk.lastIndexOf('#');
  const partition = Number(pk.slice(at + 1));
  if (at <= 0 || !Number.isInteger(partition)) return undefined;
  return { topicKey: pk.slice(0, at), partition };
}
