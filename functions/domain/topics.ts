import { randomBytes } from 'node:crypto';
import { SluiceError, topicNotFound } from './errors.js';
import { groupKeyOf, topicKeyOf, type Stores, type Topic } from './ports.js';

export interface TopicSettings {
  readonly partitions: number;
  readonly retentionHours: number;
}

export interface PartitionInfo {
  readonly partition: number;
  readonly startOffset: number;
  readonly endOffset: number;
}

export async function createTopic(
  stores: Stores,
  name: string,
  settings: TopicSettings,
  now = Date.now(),
): Promise<{ created: boolean; topic: Topic }> {
  const candidate: Topic = { name, ...settings, createdAt: now, epoch: `${now.toString(36)}${randomBytes(3).toString('hex')}` };
  const result = await stores.catalog.createTopic(candidate);
  if (
    !result.created &&
    (result.topic.partitions !== settings.partitions || result.topic.retentionHours !== settings.retentionHours)
  ) {
    throw new SluiceError(
      'Conflict',
      `Topic '${name}' exists with other settings (partitions ${result.topic.partitions}, retentionHours ${result.topic.retentionHours}).`,
    );
  }
  return result;
}

export async function requireTopic(stores: Stores, name: string): Promise<Topic> {
  const topic = await stores.catalog.getTopic(name);
  if (!topic) throw topicNotFound(name);
  return topic;
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
 * Deletes a topic and its groups. Groups go first: a crash half-way leaves the topic in place and a
 * repeated DELETE finishes the job. Log segments are left to DynamoDB TTL: the next topic of the same
 * name has a new epoch and never sees them.
 */
export async function deleteTopic(stores: Stores, name: string): Promise<void> {
  const topic = await requireTopic(stores, name);
  for (const group of await stores.catalog.listGroups(name)) {
    await stores.groupState.deleteGroupState(groupKeyOf(topic, group.name));
    await stores.catalog.deleteGroup(name, group.name);
  }
  await stores.catalog.deleteTopic(name);
}
