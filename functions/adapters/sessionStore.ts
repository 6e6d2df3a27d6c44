import { GetCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SessionAppendCancelled, type SessionAppend, type SessionRecord, type SessionStore } from '../domain/ports.js';
import { SEGMENT_CONDITION, segmentEnd, segmentItem } from './logStore.js';
import { cancellationCodes, cancellationItem, isTransactionConflict, newWriteToken, writtenBy } from './dynamoErrors.js';

/**
 * Producer sessions: pk "<topic>@<epoch>#<session>"; the head at sk = -1 (nx = next sequence, v = version,
 * w = write token), one record per request at sk = its first sequence (n = count, ts = produce time,
 * r = runs as JSON). exp = TTL (epoch seconds). Records are write-once and small (a request of unkeyed
 * messages is one run), so each costs one write unit however many messages it covers.
 */
const HEAD = -1;
const sessionPk = (topicKey: string, session: string) => `${topicKey}#${session}`;

export class DynamoSessionStore implements SessionStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly logTable: string,
  ) {}

  async head(topicKey: string, session: string) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: sessionPk(topicKey, session), sk: HEAD }, ProjectionExpression: 'nx, v', ConsistentRead: true }),
    );
    return out.Item ? { next: out.Item.nx as number, version: out.Item.v as number } : undefined;
  }

  async records(topicKey: string, session: string, fromFirst: number, toFirst: number): Promise<SessionRecord[]> {
    const records: SessionRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': sessionPk(topicKey, session), ':from': Math.max(0, fromFirst), ':to': toFirst },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) {
        records.push({ first: item.sk as number, count: item.n as number, producedAt: item.ts as number, runs: JSON.parse(item.r as string) });
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return records;
  }

  async append(write: SessionAppend) {
    // Recognises this append after a lost reply: the head carries the token of the write that moved it.
    const writeToken = newWriteToken();
    const pk = sessionPk(write.topicKey, write.session);
    const { record } = write;
    const moveHead = {
      Update: {
        TableName: this.table,
        Key: { pk, sk: HEAD },
        UpdateExpression: 'SET nx = :next, v = :version, w = :w, exp = :exp',
        // Only from the head the request was planned on: two requests of one session never both land.
        ConditionExpression: write.expected ? 'v = :expected' : 'attribute_not_exists(pk)',
        ExpressionAttributeValues: {
          ':next': record.first + record.count,
          ':version': (write.expected?.version ?? 0) + 1,
          ':w': writeToken,
          ':exp': write.expiresAt,
          ...(write.expected ? { ':expected': write.expected.version } : {}),
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
    const putRecord = {
      Put: {
        TableName: this.table,
        Item: { pk, sk: record.first, n: record.count, ts: record.producedAt, r: JSON.stringify(record.runs), exp: write.expiresAt },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    };
    const putSegments = write.segments.map((segment) => ({
      Put: { TableName: this.logTable, Item: segmentItem(write.topicKey, segment, writeToken), ...SEGMENT_CONDITION },
    }));
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: [moveHead, putRecord, ...putSegments] }));
    } catch (error) {
      const codes = cancellationCodes(error);
      if (codes) {
        // Our own transaction, applied before its reply was lost.
        if (codes[0] === 'ConditionalCheckFailed' && writtenBy(cancellationItem(error, 0), writeToken)) return;
        const offsetsTaken = new Map<number, number | undefined>();
        write.segments.forEach((segment, i) => {
          if (codes[2 + i] === 'ConditionalCheckFailed') offsetsTaken.set(segment.partition, segmentEnd(cancellationItem(error, 2 + i)));
        });
        throw new SessionAppendCancelled(codes[0] === 'ConditionalCheckFailed' || codes[1] === 'ConditionalCheckFailed', offsetsTaken);
      }
      if (isTransactionConflict(error)) throw new SessionAppendCancelled(false, new Map());
      throw error;
    }
  }
}
