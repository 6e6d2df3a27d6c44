import { topicKeyOf, type Stores, type Topic } from './ports.js';

/** Segments one trim pass deletes per partition at most, so a run stays bounded (BatchWriteItem takes 25). */
const MAX_SEGMENTS_PER_PASS = 100;

/**
 * Deletes whole segments older than the topic's retention, oldest first, never the newest segment of a
 * partition: the newest segment is where the next append learns its offset, so offsets never restart.
 */
export async function trimTopic(stores: Stores, topicName: string, now = Date.now()): Promise<number> {
  const topic = await stores.catalog.getTopic(topicName);
  return topic ? trimIncarnation(stores, topic, now) : 0;
}

async function trimIncarnation(stores: Stores, topic: Topic, now: number): Promise<number> {
  const key = topicKeyOf(topic);
  const cutoff = now - topic.retentionHours * 3600 * 1000;
  let deleted = 0;
  for (let partition = 0; partition < topic.partitions; partition++) {
    const tail = await stores.log.tail(key, partition);
    if (!tail) continue;
    // The oldest segments, whatever their base: one forward Query from offset 0.
    const segments = await stores.log.segmentsFrom(key, partition, 0, MAX_SEGMENTS_PER_PASS);
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

/**
 * Deletes the log of a deleted topic incarnation, a bounded number of segments per partition and pass,
 * and forgets the incarnation once nothing of its log is left. Segments a produce still wrote from a
 * cached copy of the topic (up to 1 s after the delete began) go the same way.
 */
export async function clearBuriedTopic(stores: Stores, topic: Topic): Promise<number> {
  const key = topicKeyOf(topic);
  let deleted = 0;
  let left = false;
  for (let partition = 0; partition < topic.partitions; partition++) {
    const segments = await stores.log.segmentsFrom(key, partition, 0, MAX_SEGMENTS_PER_PASS);
    if (segments.length === 0) continue;
    await stores.log.deleteSegments(key, partition, segments.map((s) => s.base));
    deleted += segments.length;
    left = true;
  }
  if (!left) await stores.catalog.forgetBuriedTopic(topic);
  return deleted;
}

export async function trimAllTopics(stores: Stores, now = Date.now()): Promise<number> {
  let deleted = 0;
  for (const topic of await stores.catalog.listTopics()) deleted += await trimIncarnation(stores, topic, now);
  for (const buried of await stores.catalog.listBuriedTopics()) deleted += await clearBuriedTopic(stores, buried);
  return deleted;
}
