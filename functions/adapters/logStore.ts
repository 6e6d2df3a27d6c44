import { PutCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Segment, StoredRecord } from '../domain/messages.js';
import { IdsTaken, OffsetTaken, type DedupEntry, type LogStore, type SegmentWrite } from '../domain/ports.js';
import { batchDeleteAll } from './batch.js';
import { cancellationCodes, isConditionFailure, isTransactionConflict } from './dynamoErrors.js';

/**
 * Log segments: pk "<topic>@<epoch>#<partition>", sk = base offset, n = count, ts = produce time,
 * m = the records as one JSON string (one attribute name instead of many keeps items small: every byte
 * is paid on every write and read).
 */
const logPk = (topicKey: string, partition: number) => `${topicKey}#${partition}`;
export const dedupPk = (topicKey: string, id: string) => `${topicKey}#${id}`;

function toSegment(partition: number, item: Record<string, unknown>): Segment {
  return {
    partition,
    base: item.sk as number,
    count: item.n as number,
    producedAt: item.ts as number,
    records: JSON.parse(item.m as string) as StoredRecord[],
  };
}

export class DynamoLogStore implements LogStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly dedupTable: string,
  ) {}

  private async edge(topicKey: string, partition: number, newestFirst: boolean) {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': logPk(topicKey, partition) },
        ProjectionExpression: 'sk, n, ts',
        ScanIndexForward: !newestFirst,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? { base: item.sk as number, count: item.n as number, producedAt: item.ts as number } : undefined;
  }

  tail(topicKey: string, partition: number) {
    return this.edge(topicKey, partition, true);
  }

  head(topicKey: string, partition: number) {
    return this.edge(topicKey, partition, false);
  }

  async appendSegment(topicKey: string, segment: SegmentWrite, ids: readonly DedupEntry[], idExpiresAt: number) {
    const item = {
      pk: logPk(topicKey, segment.partition),
      sk: segment.base,
      n: segment.records.length,
      ts: segment.producedAt,
      m: JSON.stringify(segment.records),
    };
    // The append's whole correctness: the offset is taken only if no segment starts there yet.
    const condition = 'attribute_not_exists(pk)';
    if (ids.length === 0) {
      try {
        await this.client.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: condition }));
        return;
      } catch (error) {
        if (isConditionFailure(error)) throw new OffsetTaken();
        throw error;
      }
    }
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: this.table, Item: item, ConditionExpression: condition } },
            ...ids.map((id) => ({
              Put: {
                TableName: this.dedupTable,
                Item: { pk: dedupPk(topicKey, id.id), id: id.id, p: id.partition, o: id.offset, exp: idExpiresAt },
                // An expired record that TTL has not removed yet no longer de-duplicates.
                ConditionExpression: 'attribute_not_exists(pk) OR exp < :now',
                ExpressionAttributeValues: { ':now': Math.floor(segment.producedAt / 1000) },
              },
            })),
          ],
        }),
      );
    } catch (error) {
      const codes = cancellationCodes(error);
      if (codes) {
        const takenIds = ids.filter((_, i) => codes[i + 1] === 'ConditionalCheckFailed').map((id) => id.id);
        if (takenIds.length > 0) throw new IdsTaken(takenIds);
        if (codes[0] === 'ConditionalCheckFailed' || isTransactionConflict(error)) throw new OffsetTaken();
      }
      if (isTransactionConflict(error)) throw new OffsetTaken();
      throw error;
    }
  }

  async segmentAtOrBefore(topicKey: string, partition: number, offset: number) {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk <= :o',
        ExpressionAttributeValues: { ':pk': logPk(topicKey, partition), ':o': offset },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? toSegment(partition, item) : undefined;
  }

  async segmentsFrom(topicKey: string, partition: number, fromBase: number, limit: number, consistent = true) {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk >= :b',
        ExpressionAttributeValues: { ':pk': logPk(topicKey, partition), ':b': fromBase },
        Limit: limit,
        ConsistentRead: consistent,
      }),
    );
    return (out.Items ?? []).map((item) => toSegment(partition, item));
  }

  async deleteSegments(topicKey: string, partition: number, bases: readonly number[]) {
    await batchDeleteAll(
      this.client,
      this.table,
      bases.map((sk) => ({ pk: logPk(topicKey, partition), sk })),
    );
  }
}
