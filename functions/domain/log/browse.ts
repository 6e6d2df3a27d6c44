import { SluiceError, validation } from '../errors.js';
import { LIMITS } from '../limits.js';
import { parseServerMessageId } from '../ids.js';
import { messageAt, readFrom } from './logReader.js';
import type { LogMessage } from '../messages.js';
import { topicKeyOf, type Stores } from '../ports.js';
import { partitionInfo, requireTopic } from '../topics.js';

export async function browsePartition(
  stores: Stores,
  topicName: string,
  partition: number,
  from: number | undefined,
  limit: number,
): Promise<{ messages: LogMessage[]; next: number }> {
  const topic = await requireTopic(stores, topicName);
  if (partition >= topic.partitions) throw validation(`partition must be below the topic's ${topic.partitions} partitions.`);
  const start = from ?? (await partitionInfo(stores, topic, partition)).startOffset;
  // A page stops at a reply's worth of bytes (Lambda's 6 MB response limit); `next` continues it.
  const batch = await readFrom(stores.log, topicKeyOf(topic), partition, start, -1, limit, { maxBytes: LIMITS.maxReplyMessageBytes });
  return { messages: batch.messages, next: batch.next };
}

/** Finds a message by id with bounded reads: producer ids through their de-duplication record, server ids by decoding. */
export async function getMessage(stores: Stores, topicName: string, id: string): Promise<LogMessage> {
  const topic = await requireTopic(stores, topicName);
  const key = topicKeyOf(topic);
  const places: Array<{ partition: number; offset: number }> = [];
  const known = (await stores.dedup.getMany(key, [id])).get(id);
  if (known) places.push(known);
  const decoded = parseServerMessageId(id);
  if (decoded && decoded.partition < topic.partitions) places.push(decoded);
  for (const place of places) {
    const segment = await stores.log.segmentAtOrBefore(key, place.partition, place.offset);
    const message = segment ? messageAt(segment, place.offset) : undefined;
    if (message && message.id === id) return message;
  }
  throw new SluiceError('MessageNotFound', `No message '${id}' in topic '${topicName}'.`);
}
