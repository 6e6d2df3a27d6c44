import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { CatalogStore, Group, Topic } from '../domain/ports.js';
import { failedItem, isConditionFailure, newWriteToken, writtenBy } from './dynamoErrors.js';

/** Topics and group settings: pk "topic#<name>", sk "topic" or "group#<group>". */
const topicPk = (name: string) => `topic#${name}`;
const TOPIC_SK = 'topic';
const groupSk = (name: string) => `group#${name}`;
/** A deleted topic's incarnation, kept until its log is gone: pk "grave#<name>@<epoch>". */
const gravePk = (topic: Topic) => `grave#${topic.name}@${topic.epoch}`;
const GRAVE_SK = 'grave';

function toTopic(item: Record<string, unknown>): Topic {
  return {
    name: item.name as string,
    partitions: item.partitions as number,
    retentionHours: item.retentionHours as number,
    createdAt: item.createdAt as number,
    epoch: item.epoch as string,
    ...(item.deletingSince !== undefined ? { deletingSince: item.deletingSince as number } : {}),
    ...(item.growth !== undefined ? { growth: item.growth as { from: number; at: number } } : {}),
  };
}

function toGroup(item: Record<string, unknown>): Group {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as unknown as Group;
}

export class DynamoCatalogStore implements CatalogStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getTopic(name: string) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: topicPk(name), sk: TOPIC_SK }, ConsistentRead: true }),
    );
    return out.Item ? toTopic(out.Item) : undefined;
  }

  async createTopic(topic: Topic): Promise<{ created: boolean; topic: Topic }> {
    const { created, value } = await this.putIfAbsent({ pk: topicPk(topic.name), sk: TOPIC_SK, ...topic }, topic, () =>
      this.getTopic(topic.name),
    );
    return { created, topic: value };
  }

  /**
   * Puts `item` unless its key exists; otherwise answers with what is stored. If the stored item
   * vanished between the failed put and the read (a concurrent delete), the put is tried again.
   */
  private async putIfAbsent<T>(item: Record<string, unknown>, value: T, readStored: () => Promise<T | undefined>) {
    for (;;) {
      try {
        await this.client.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
        return { created: true, value };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const stored = await readStored();
        if (stored) return { created: false, value: stored };
      }
    }
  }

  /** Admin listing, not a hot path: one paginated Scan of the small catalog table. */
  async listTopics() {
    const topics = (await this.scanSortKey(TOPIC_SK)).filter((t) => t.deletingSince === undefined);
    return topics.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** All topic-shaped items with this sort key (live topics or graves); a Scan of the small catalog. */
  private async scanSortKey(sk: string): Promise<Topic[]> {
    const topics: Topic[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: 'sk = :sk',
          ExpressionAttributeValues: { ':sk': sk },
          ExclusiveStartKey: start,
        }),
      );
      topics.push(...(out.Items ?? []).map(toTopic));
      start = out.LastEvaluatedKey;
    } while (start);
    return topics;
  }

  async growTopic(topic: Topic, partitions: number, switchAt: number): Promise<{ grown: boolean; topic?: Topic }> {
    const writeToken = newWriteToken();
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: topicPk(topic.name), sk: TOPIC_SK },
          UpdateExpression: 'SET #n = :n, growth = :growth, w = :w',
          // The topic as the caller read it: same incarnation, same count, not being deleted.
          ConditionExpression: 'epoch = :epoch AND #n = :old AND attribute_not_exists(deletingSince)',
          ExpressionAttributeNames: { '#n': 'partitions' },
          ExpressionAttributeValues: {
            ':n': partitions,
            ':growth': { from: topic.partitions, at: switchAt },
            ':w': writeToken,
            ':epoch': topic.epoch,
            ':old': topic.partitions,
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { grown: true, topic: toTopic(out.Attributes!) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const stored = failedItem(error);
      // Our own update, sent again by the SDK after its reply was lost: the topic grew, by us.
      return { grown: writtenBy(stored, writeToken), ...(stored ? { topic: toTopic(unmarshall(stored)) } : {}) };
    }
  }

  async markTopicDeleting(topic: Topic, at: number) {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: topicPk(topic.name), sk: TOPIC_SK },
          UpdateExpression: 'SET deletingSince = if_not_exists(deletingSince, :at)',
          ConditionExpression: 'epoch = :epoch',
          ExpressionAttributeValues: { ':at': at, ':epoch': topic.epoch },
        }),
      );
    } catch (error) {
      // Another incarnation already replaced it: nothing of this one is left to mark.
      if (!isConditionFailure(error)) throw error;
    }
  }

  async buryTopic(topic: Topic) {
    const { deletingSince: _deleting, ...rest } = topic;
    await this.client.send(new PutCommand({ TableName: this.table, Item: { pk: gravePk(topic), sk: GRAVE_SK, ...rest } }));
  }

  /** The retention pass's listing, not a request path. */
  listBuriedTopics() {
    return this.scanSortKey(GRAVE_SK);
  }

  async forgetBuriedTopic(topic: Topic) {
    await this.client.send(new DeleteCommand({ TableName: this.table, Key: { pk: gravePk(topic), sk: GRAVE_SK } }));
  }

  async deleteTopic(name: string) {
    await this.client.send(new DeleteCommand({ TableName: this.table, Key: { pk: topicPk(name), sk: TOPIC_SK } }));
  }

  async getGroup(topic: string, group: string) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: topicPk(topic), sk: groupSk(group) }, ConsistentRead: true }),
    );
    return out.Item ? toGroup(out.Item) : undefined;
  }

  async createGroup(group: Group): Promise<{ created: boolean; group: Group }> {
    const { created, value } = await this.putIfAbsent(
      { pk: topicPk(group.topic), sk: groupSk(group.name), ...group },
      group,
      () => this.getGroup(group.topic, group.name),
    );
    return { created, group: value };
  }

  async updateGroup(group: Group) {
    await this.client.send(
      new PutCommand({ TableName: this.table, Item: { pk: topicPk(group.topic), sk: groupSk(group.name), ...group } }),
    );
  }

  async listGroups(topic: string) {
    const groups: Group[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :g)',
          ExpressionAttributeValues: { ':pk': topicPk(topic), ':g': 'group#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      groups.push(...(out.Items ?? []).map(toGroup));
      start = out.LastEvaluatedKey;
    } while (start);
    return groups;
  }

  async deleteGroup(topic: string, group: string) {
    await this.client.send(new DeleteCommand({ TableName: this.table, Key: { pk: topicPk(topic), sk: groupSk(group) } }));
  }

  async getRetentionCursor() {
    const out = await this.client.send(new GetCommand({ TableName: this.table, Key: RETENTION_CURSOR_KEY, ConsistentRead: true }));
    return out.Item?.lastStarted as string | undefined;
  }

  /** An unconditional put of the same value: a retry or a repeat is harmless. */
  async putRetentionCursor(lastStarted: string) {
    await this.client.send(new PutCommand({ TableName: this.table, Item: { ...RETENTION_CURSOR_KEY, lastStarted } }));
  }
}

/** The retention pass's resume point: one item, out of the way of the topic / grave scans (their sk differs). */
const RETENTION_CURSOR_KEY = { pk: 'retention', sk: 'cursor' };
