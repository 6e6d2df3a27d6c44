import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { VersionConflict, type BroadcastCursor, type DeadLetter, type GroupStateStore } from '../domain/ports.js';
import type { InFlight, PartitionProgress } from '../domain/progress.js';
import { LIMITS } from '../domain/limits.js';
import { batchDeleteAll } from './batch.js';
import { cancellationCodes, isConditionFailure, isTransactionConflict } from './dynamoErrors.js';

/**
 * Group state under pk "<topic>@<epoch>/<group>":
 *   sk "p#<partition>"               progress: d = dispatched, h = segment hint, f = in-flight entries, v = version
 *   sk "c#<consumer>#<partition>"    broadcast cursor
 *   sk "d#<deadAt>#<partition>#<offset>"  dead letter with a copy of the message
 * In-flight entries are one JSON string of [offset, until, deliveries, token] tuples: compact, because
 * the whole item is rewritten on every pull and ack.
 */
const pad = (n: number, width: number) => n.toString().padStart(width, '0');
const progressSk = (partition: number) => `p#${pad(partition, 3)}`;
const cursorSk = (consumerId: string, partition: number) => `c#${consumerId}#${pad(partition, 3)}`;
const deadSk = (l: DeadLetter) => `d#${pad(l.deadAt, 13)}#${pad(l.message.partition, 3)}#${pad(l.message.offset, 15)}`;

type Tuple = [number, number, number, string];

function toProgress(item: Record<string, unknown>): PartitionProgress {
  const tuples = JSON.parse(item.f as string) as Tuple[];
  return {
    dispatched: item.d as number,
    segmentHint: item.h as number,
    entries: tuples.map(([offset, until, deliveries, token]): InFlight => ({ offset, until, deliveries, token })),
    version: item.v as number,
  };
}

function versionCondition(version: number) {
  return version === 1
    ? { ConditionExpression: 'attribute_not_exists(pk)' }
    : { ConditionExpression: 'v = :prev', ExpressionAttributeValues: { ':prev': version - 1 } };
}

export class DynamoGroupStateStore implements GroupStateStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getProgress(groupKey: string, partition: number, consistent = true) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: groupKey, sk: progressSk(partition) }, ConsistentRead: consistent }),
    );
    return out.Item ? toProgress(out.Item) : undefined;
  }

  private async queryPrefix(groupKey: string, prefix: string, limit?: number) {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: prefix ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
          ExpressionAttributeValues: prefix ? { ':pk': groupKey, ':prefix': prefix } : { ':pk': groupKey },
          ConsistentRead: true,
          ExclusiveStartKey: start,
          ...(limit ? { Limit: limit - items.length } : {}),
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start && (!limit || items.length < limit));
    return items;
  }

  async listProgress(groupKey: string) {
    const items = await this.queryPrefix(groupKey, 'p#');
    return new Map(items.map((item) => [Number((item.sk as string).slice(2)), toProgress(item)]));
  }

  async putProgress(
    groupKey: string,
    partition: number,
    next: PartitionProgress,
    extra: { deadLetters?: readonly DeadLetter[]; redrivenKeys?: readonly string[] } = {},
  ) {
    const put = {
      TableName: this.table,
      Item: {
        pk: groupKey,
        sk: progressSk(partition),
        d: next.dispatched,
        h: next.segmentHint,
        f: JSON.stringify(next.entries.map((e): Tuple => [e.offset, e.until, e.deliveries, e.token])),
        v: next.version,
      },
      ...versionCondition(next.version),
    };
    const dead = extra.deadLetters ?? [];
    const redriven = extra.redrivenKeys ?? [];
    try {
      if (dead.length === 0 && redriven.length === 0) {
        await this.client.send(new PutCommand(put));
        return;
      }
      const expires = Math.floor(Date.now() / 1000) + LIMITS.deadLetterRetentionSeconds;
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: put },
            ...dead.map((l) => ({
              Put: {
                TableName: this.table,
                Item: { pk: groupKey, sk: deadSk(l), msg: JSON.stringify(l.message), dc: l.deliveryCount, da: l.deadAt, exp: expires },
              },
            })),
            ...redriven.map((sk) => ({ Delete: { TableName: this.table, Key: { pk: groupKey, sk } } })),
          ],
        }),
      );
    } catch (error) {
      if (isConditionFailure(error) || isTransactionConflict(error)) throw new VersionConflict();
      if ((cancellationCodes(error) ?? []).includes('ConditionalCheckFailed')) throw new VersionConflict();
      throw error;
    }
  }

  async getCursor(groupKey: string, consumerId: string, partition: number) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: groupKey, sk: cursorSk(consumerId, partition) }, ConsistentRead: true }),
    );
    return out.Item ? toCursor(out.Item) : undefined;
  }

  async putCursor(groupKey: string, cursor: BroadcastCursor) {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            pk: groupKey,
            sk: cursorSk(cursor.consumerId, cursor.partition),
            c: cursor.consumerId,
            p: cursor.partition,
            d: cursor.dispatched,
            h: cursor.segmentHint,
            v: cursor.version,
          },
          ...versionCondition(cursor.version),
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw new VersionConflict();
      throw error;
    }
  }

  async listCursors(groupKey: string) {
    return (await this.queryPrefix(groupKey, 'c#')).map(toCursor);
  }

  async listDeadLetters(groupKey: string, limit: number) {
    const items = await this.queryPrefix(groupKey, 'd#', limit);
    return items.map((item) => ({
      key: item.sk as string,
      message: JSON.parse(item.msg as string),
      deliveryCount: item.dc as number,
      deadAt: item.da as number,
    }));
  }

  async deleteGroupState(groupKey: string) {
    const items = await this.queryPrefix(groupKey, '');
    await batchDeleteAll(
      this.client,
      this.table,
      items.map((item) => ({ pk: groupKey, sk: item.sk })),
    );
  }
}

function toCursor(item: Record<string, unknown>): BroadcastCursor {
  return {
    consumerId: item.c as string,
    partition: item.p as number,
    dispatched: item.d as number,
    segmentHint: item.h as number,
    version: item.v as number,
  };
}
