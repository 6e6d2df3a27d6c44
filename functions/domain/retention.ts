import { topicKeyOf, type Stores } from './ports.js';

/** Segments one trim pass deletes per partition at most, so a run stays bounded (BatchWriteItem takes 25). */
const MAX_SEGMENTS_PER_PASS = 100;

/**
 * Deletes whole segments older than the topic's retention, oldest first, never the newest segment of a
 * partition: the newest segment is where the next append learns its offset, so offsets never restart.
 */
export async function trimTopic(stores: Stores, topicName: string, now = Date.now()): Promise<number> {
  const topic = await stores.catalog.getTopic(topicName);
  if (!topic) return 0;
  const key = topicKeyOf(topic);
  const cutoff = now - topic.retentionHours * 3600 * 1000;
  let deleted = 0;
  for (let partition = 0; partition < topic.partitions; partition++) {
    const tail = await stores.log.tail(key, partition);
    if (!tail) continue;
    const head = await stores.log.head(key, partition);
    if (!head) continue;
    const segments = await stores.log.segmentsFrom(key, partition, head.base, MAX_SEGMENTS_PER_PASS);
    const expired: number[] = [];
    for (const s of segments) {
      if (s.base >= tail.base || s.producedAt >= cutoff) break;
      expired.push(s.base);
    }
    if (expired.length > 0) await stores.log.deleteSegments(key, partition, expired);
    deleted += expired.length;
  }
  return deleted;
}

export async function trimAllTopics(stores: Stores, now = Date.now()): Promise<number> {
  let deleted = 0;
  for (const topic of await stores.catalog.listTopics()) deleted += await trimTopic(stores, topic.name, now);
  return deleted;
}
