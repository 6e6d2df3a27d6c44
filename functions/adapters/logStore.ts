import { PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Segment } from '../domain/messages.js';
import { IdsTaken, LandingsGone, OffsetTaken, type DedupEntry, type LandingChange, type LogStore, type SegmentKey, type SegmentWrite } from '../domain/ports.js';
import { landingActions } from './delayStore.js';
import { batchDeleteAll } from './batch.js';
import { decodeRecords, encodeRecords } from './segmentCodec.js';
import { cancellationCodes, cancellationItem, failedItem, isConditionFailure, isTransactionConflict, newWriteToken, writtenBy } from './dynamoErrors.js';

/**
 * Log segments: pk "<topic>@<epoch>#<partition>", sk = base offset, n = count, ts = produce time,
 * m = the records as one JSON string (one attribute name instead of many keeps items small: every byte
 * is paid on every write and read), exp = when DynamoDB TTL may delete it (functions/domain/log/expiry.ts).
 */
const logPk = (topicKey: string, partition: number) => `${topicKey}#${partition}`;
export const dedupPk = (topicKey: string, id: string) => `${topicKey}#${id}`;

function toSegment(partition: number, item: Record<string, unknown>): Segment {
  return {
    partition,
    base: item.sk as number,
    count: item.n as number,
    producedAt: item.ts as number,
    records: decodeRecords(item),
  };
}

/** A segment item as stored (also written by transaction commits, functions/adapters/transactionStore.ts). */
export function segmentItem(topicKey: string, segment: SegmentWrite, writeToken: string) {
  return {
    pk: logPk(topicKey, segment.partition),
    sk: segment.base,
    n: segment.records.length,
    ts: segment.producedAt,
    ...encodeRecords(segment.records),
    w: writeToken,
    ...(segment.expiresAt !== undefined ? { exp: segment.expiresAt } : {}),
  };
}

/** What retention reads of a segment: its key, size and times (a projection saves transfer, not read units). */
const KEY_PROJECTION = 'sk, n, ts, exp';

function segmentKeyOf(item: Record<string, unknown>): SegmentKey {
  const key = { base: item.sk as number, count: item.n as number, producedAt: item.ts as number };
  return item.exp === undefined ? key : { ...key, expiresAt: item.exp as number };
}

/** The offset is taken only if no segment starts there yet; ALL_OLD returns the one that does (no extra read units). */
export const SEGMENT_CONDITION = { ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const };

/** The transaction action that records a producer id (an expired record that TTL has not removed yet no longer counts). */
export function dedupPut(dedupTable: string, topicKey: string, id: DedupEntry, idExpiresAt: number, nowSeconds: number) {
  return {
    Put: {
      TableName: dedupTable,
      Item: { pk: dedupPk(topicKey, id.id), id: id.id, p: id.partition, o: id.offset, exp: idExpiresAt },
      ConditionExpression: 'attribute_not_exists(pk) OR exp < :now',
      ExpressionAttributeValues: { ':now': nowSeconds },
    },
  };
}

/** The offset after a segment item in wire form (as a condition failure returns it). */
export function segmentEnd(item: Record<string, AttributeValue> | undefined): number | undefined {
  if (!item?.sk?.N || !item.n?.N) return undefined;
  return Number(item.sk.N) + Number(item.n.N);
}

export class DynamoLogStore implements LogStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly dedupTable: string,
    private readonly delayTable: string,
  ) {}

  private async edge(topicKey: string, partition: number, newestFirst: boolean) {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': logPk(topicKey, partition) },
        ProjectionExpression: KEY_PROJECTION,
        ScanIndexForward: !newestFirst,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = out.Items?.[0];
    return item ? segmentKeyOf(item) : undefined;
  }

  tail(topicKey: string, partition: number) {
    return this.edge(topicKey, partition, true);
  }

  head(topicKey: string, partition: number) {
    return this.edge(topicKey, partition, false);
  }

  async appendSegment(
    topicKey: string,
    segment: SegmentWrite,
    ids: readonly DedupEntry[],
    idExpiresAt: number,
    landings: readonly LandingChange[] = [],
  ) {
    // A token of this append: when the SDK retries a write whose reply was lost after DynamoDB applied
    // it, the retry fails its condition on our own segment; the token tells "ours" from "someone else's".
    const writeToken = newWriteToken();
    const item = segmentItem(topicKey, segment, writeToken);
    // The append's whole correctness: the offset is taken only if no segment starts there yet.
    const condition = SEGMENT_CONDITION;
    if (ids.length === 0 && landings.length === 0) {
      try {
        await this.client.send(new PutCommand({ TableName: this.table, Item: item, ...condition }));
        return;
      } catch (error) {
        if (isConditionFailure(error)) {
          const winner = failedItem(error);
          if (writtenBy(winner, writeToken)) return;
          throw new OffsetTaken(segmentEnd(winner));
        }
        throw error;
      }
    }
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: this.table, Item: item, ...condition } },
            ...ids.map((id) => dedupPut(this.dedupTable, topicKey, id, idExpiresAt, Math.floor(segment.producedAt / 1000))),
            // Delayed messages landing in this segment: their pending records go (or advance) with it; a
            // group's item changes, and its lookup record is written.
            ...landings.flatMap((landing) => landingActions(this.delayTable, this.dedupTable, landing)),
          ],
        }),
      );
    } catch (error) {
      const codes = cancellationCodes(error);
      if (codes) {
        // Our own transaction, applied before its reply was lost: the segment and its ids are all there.
        if (codes[0] === 'ConditionalCheckFailed' && writtenBy(cancellationItem(error, 0), writeToken)) return;
        const takenIds = ids.filter((_, i) => codes[i + 1] === 'ConditionalCheckFailed').map((id) => id.id);
        if (takenIds.length > 0) throw new IdsTaken(takenIds);
        // Each landing's first action is its conditional one (a group's lookup record follows it).
        const gone: string[] = [];
        let at = 1 + ids.length;
        for (const landing of landings) {
          if (codes[at] === 'ConditionalCheckFailed') gone.push(landing.id);
          at += landingActions(this.delayTable, this.dedupTable, landing).length;
        }
        if (gone.length > 0) throw new LandingsGone(gone);
        if (codes[0] === 'ConditionalCheckFailed') throw new OffsetTaken(segmentEnd(cancellationItem(error, 0)));
        if (isTransactionConflict(error)) throw new OffsetTaken();
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

  async setSegmentExpiry(topicKey: string, partition: number, base: number, expiresAt: number | undefined) {
    try {
      // The condition keeps the update from creating an item of a key alone where TTL or a pass deleted
      // the segment meanwhile (UpdateItem creates missing items). Setting one value is idempotent: a retry
      // after a lost reply writes the same thing again.
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: logPk(topicKey, partition), sk: base },
          UpdateExpression: expiresAt === undefined ? 'REMOVE exp' : 'SET exp = :exp',
          ConditionExpression: 'attribute_exists(pk)',
          ...(expiresAt === undefined ? {} : { ExpressionAttributeValues: { ':exp': expiresAt } }),
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Retention's listing: keys, counts, produce times and expiry only, eventually consistent (half the read
   * units; segments never change). The projection saves transfer, not read units or page size:
   * DynamoDB counts the whole items read against a Query's 1 MB, so big segments need several pages.
   */
  async segmentKeysFrom(topicKey: string, partition: number, fromBase: number, limit: number) {
    const keys: SegmentKey[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk >= :b',
          ExpressionAttributeValues: { ':pk': logPk(topicKey, partition), ':b': fromBase },
          ProjectionExpression: KEY_PROJECTION,
          Limit: limit - keys.length,
          ConsistentRead: false,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? []) keys.push(segmentKeyOf(item));
      start = out.LastEvaluatedKey;
    } while (start && keys.length < limit);
    return keys;
  }
}
