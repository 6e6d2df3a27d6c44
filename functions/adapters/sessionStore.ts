import { GetCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SessionAppendCancelled, type SessionAppend, type SessionRecord, type SessionStore } from '../domain/ports.js';
import { SEGMENT_CONDITION, segmentEnd, segmentItem } from './logStore.js';
import { cancellationCodes, cancellationItem, isTransactionConflict, newWriteToken, writtenBy } from './dynamoErrors.js';

/**
 * Producer sessions: pk "<topic>@<epoch>#<session>"; the head at sk = -1 (nx = next sequence, w = write
 * token), one record per request at sk = its first sequence (n = count, ts = produce time,
 * r = runs as JSON). exp = TTL (epoch seconds). Records are write-once and small (a request of unkeyed
 * messages is one run), so each costs one write unit however many messages it covers.
 */
const HEAD = -1;
const nowSeconds = () => Math.floor(Date.now() / 1000);
/** Past its TTL: gone for every purpose, although DynamoDB deletes it only within a few days. */
const expired = (exp: number) => exp < nowSeconds();
const sessionPk = (topicKey: string, session: string) => `${topicKey}#${session}`;

export class DynamoSessionStore implements SessionStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly logTable: string,
  ) {}

  async head(topicKey: string, session: string) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: sessionPk(topicKey, session), sk: HEAD }, ProjectionExpression: 'nx, exp', ConsistentRead: true }),
    );
    return out.Item && !expired(out.Item.exp as number) ? { next: out.Item.nx as number } : undefined;
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
        if (expired(item.exp as number)) continue;
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
    const now = nowSeconds();
    const moveHead = {
      Update: {
        TableName: this.table,
        Key: { pk, sk: HEAD },
        UpdateExpression: 'SET nx = :next, w = :w, exp = :exp',
        // Only from where the request starts: two requests of one session never both land on one head,
        // and a request needs no read of the head first (a failed condition returns it).
        ConditionExpression: record.first === 0 ? 'attribute_not_exists(pk) OR exp < :now' : 'nx = :first AND exp >= :now',
        ExpressionAttributeValues: {
          ':next': record.first + record.count,
          ':w': writeToken,
          ':exp': write.expiresAt,
          ':now': now,
          ...(record.first === 0 ? {} : { ':first': record.first }),
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      },
    };
    const putRecord = {
      Put: {
        TableName: this.table,
        Item: { pk, sk: record.first, n: record.count, ts: record.producedAt, r: JSON.stringify(record.runs), exp: write.expiresAt },
        // A record of an expired session (TTL deletes the head and its records in any order) may be replaced.
        ConditionExpression: 'attribute_not_exists(pk) OR exp < :now',
        ExpressionAttributeValues: { ':now': now },
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
        const headItem = cancellationItem(error, 0);
        const head = headItem?.nx?.N && !expired(Number(headItem.exp?.N ?? 0)) ? { next: Number(headItem.nx.N) } : undefined;
        throw new SessionAppendCancelled(codes[0] === 'ConditionalCheckFailed' || codes[1] === 'ConditionalCheckFailed', head, offsetsTaken);
      }
      if (isTransactionConflict(error)) throw new SessionAppendCancelled(false, undefined, new Map());
      throw error;
    }
  }
}
