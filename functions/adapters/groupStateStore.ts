import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { VersionConflict, type BroadcastCursor, type DeadLetter, type DeadLetterPage, type GroupStateStore, type ProgressExtra } from '../domain/ports.js';
import type { LogMessage } from '../domain/messages.js';
import type { DeadMark, InFlight, PartitionProgress } from '../domain/groups/progress.js';
import { LIMITS } from '../domain/limits.js';
import { batchDeleteAll } from './batch.js';
import {
  cancellationCodes,
  cancellationItem,
  failedItem,
  isConditionFailure,
  isTransactionConflict,
  newWriteToken,
  writtenBy,
} from './dynamoErrors.js';
import { packJson, unpackJson } from './segmentCodec.js';

/**
 * Group state under pk "<topic>@<epoch>/<group>":
 *   sk "p#<partition>"               progress: d = dispatched, h = segment hint, f = in-flight entries,
 *                                    x = recently dead offsets, v = version, w = write token
 *   sk "c#<consumer>#<partition>"    broadcast cursor (v = version, w = write token)
 *   sk "d#<deadAt>#<partition>#<offset>"  dead letter with a copy of the message (rs = reason, when known)
 *   sk "r#<partition>#<offset>"      a redriven dead letter's copy, kept until TTL (the segment may be gone)
 * In-flight entries are one JSON string of [offset, until, deliveries, token(, 1 = has a copy)] tuples:
 * compact, because the whole item is rewritten on every pull and ack; brotli (`fz`, Binary) when that
 * saves a billed kilobyte (functions/adapters/segmentCodec.ts).
 *
 * Every versioned write carries a fresh write token and asks for the stored item on a condition
 * failure (ALL_OLD): when the SDK retries a write whose reply was lost after it was applied, the retry
 * fails its version check on our own write, and the token shows that it was ours (DESIGN.md invariant 5).
 */
const pad = (n: number, width: number) => n.toString().padStart(width, '0');
const progressSk = (partition: number) => `p#${pad(partition, 3)}`;
const cursorSk = (consumerId: string, partition: number) => `c#${consumerId}#${pad(partition, 3)}`;
const deadSk = (l: DeadLetter) => `d#${pad(l.deadAt, 13)}#${pad(l.message.partition, 3)}#${pad(l.message.offset, 15)}`;
const copySk = (partition: number, offset: number) => `r#${pad(partition, 3)}#${pad(offset, 15)}`;

type Tuple = [number, number, number, string] | [number, number, number, string, 1];

function toProgress(item: Record<string, unknown>): PartitionProgress {
  const tuples = JSON.parse(unpackJson(item, 'f') ?? '[]') as Tuple[];
  const marks = item.x ? (JSON.parse(item.x as string) as Array<[number, number]>) : [];
  return {
    dispatched: item.d as number,
    segmentHint: item.h as number,
    entries: tuples.map(
      ([offset, until, deliveries, token, copy]): InFlight => ({ offset, until, deliveries, token, ...(copy ? { copy: true } : {}) }),
    ),
    dead: marks.map(([offset, at]): DeadMark => ({ offset, at })),
    version: item.v as number,
  };
}

/**
 * The progress item a failed condition returned (ALL_OLD, wire form): the stored item as the condition saw
 * it, strongly consistent. Undefined when none came back (the item is absent, or the store did not say).
 */
function progressOf(item: Record<string, AttributeValue> | undefined): PartitionProgress | undefined {
  return item && item.v !== undefined ? toProgress(unmarshall(item)) : undefined;
}

const toTuple = (e: InFlight): Tuple => (e.copy ? [e.offset, e.until, e.deliveries, e.token, 1] : [e.offset, e.until, e.deliveries, e.token]);

function versionCondition(version: number) {
  return version === 1
    ? { ConditionExpression: 'attribute_not_exists(pk)', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const }
    : { ConditionExpression: 'v = :prev', ExpressionAttributeValues: { ':prev': version - 1 }, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const };
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

  async putProgress(groupKey: string, partition: number, next: PartitionProgress, extra: ProgressExtra = {}) {
    const writeToken = newWriteToken();
    const put = {
      TableName: this.table,
      Item: {
        pk: groupKey,
        sk: progressSk(partition),
        d: next.dispatched,
        h: next.segmentHint,
        // Compressed (fz) when that saves a write unit: 100 leases are ~4 KB of tuples, ~0.7 KB in brotli.
        ...packJson('f', JSON.stringify(next.entries.map(toTuple))),
        ...(next.dead.length > 0 ? { x: JSON.stringify(next.dead.map((m) => [m.offset, m.at])) } : {}),
        v: next.version,
        w: writeToken,
      },
      ...versionCondition(next.version),
    };
    const dead = extra.deadLetters ?? [];
    const redriven = extra.redriven ?? [];
    const dropped = extra.droppedLetters ?? [];
    const expires = Math.floor(Date.now() / 1000) + LIMITS.deadLetterRetentionSeconds;
    try {
      if (dead.length === 0 && redriven.length === 0 && dropped.length === 0) {
        await this.client.send(new PutCommand(put));
        return;
      }
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: put },
            ...dead.map((l) => ({
              Put: {
                TableName: this.table,
                Item: {
                  pk: groupKey,
                  sk: deadSk(l),
                  msg: JSON.stringify(l.message),
                  dc: l.deliveryCount,
                  da: l.deadAt,
                  ...(l.reason !== undefined ? { rs: l.reason } : {}),
                  exp: expires,
                },
              },
            })),
            // A redriven letter moves: its copy stays (r#) for the redelivery, its dead-letter item goes.
            ...redriven.flatMap((r) => [
              { Delete: { TableName: this.table, Key: { pk: groupKey, sk: r.key } } },
              {
                Put: {
                  TableName: this.table,
                  Item: { pk: groupKey, sk: copySk(r.message.partition, r.message.offset), msg: JSON.stringify(r.message), exp: expires },
                },
              },
            ]),
            ...dropped.map((sk) => ({ Delete: { TableName: this.table, Key: { pk: groupKey, sk } } })),
          ],
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) {
        if (writtenBy(failedItem(error), writeToken)) return;
        throw new VersionConflict(progressOf(failedItem(error)));
      }
      const codes = cancellationCodes(error);
      if (codes?.[0] === 'ConditionalCheckFailed' && writtenBy(cancellationItem(error, 0), writeToken)) return;
      if (codes?.[0] === 'ConditionalCheckFailed') throw new VersionConflict(progressOf(cancellationItem(error, 0)));
      if (isTransactionConflict(error) || (codes ?? []).includes('ConditionalCheckFailed')) throw new VersionConflict();
      throw error;
    }
  }

  async getRedriveCopy(groupKey: string, partition: number, offset: number): Promise<LogMessage | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: groupKey, sk: copySk(partition, offset) }, ConsistentRead: true }),
    );
    return out.Item ? (JSON.parse(out.Item.msg as string) as LogMessage) : undefined;
  }

  async getCursor(groupKey: string, consumerId: string, partition: number) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: groupKey, sk: cursorSk(consumerId, partition) }, ConsistentRead: true }),
    );
    return out.Item ? toCursor(out.Item) : undefined;
  }

  async putCursor(groupKey: string, cursor: BroadcastCursor) {
    const writeToken = newWriteToken();
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
            w: writeToken,
          },
          ...versionCondition(cursor.version),
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) {
        if (writtenBy(failedItem(error), writeToken)) return;
        throw new VersionConflict();
      }
      throw error;
    }
  }

  async listCursors(groupKey: string) {
    return (await this.queryPrefix(groupKey, 'c#')).map(toCursor);
  }

  async listDeadLetters(groupKey: string, limit: number, after?: string, maxBytes = Infinity): Promise<DeadLetterPage> {
    const letters: DeadLetterPage['letters'] = [];
    let bytes = 0;
    let start: Record<string, unknown> | undefined = after ? { pk: groupKey, sk: after } : undefined;
    for (;;) {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': groupKey, ':prefix': 'd#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
          Limit: limit - letters.length,
        }),
      );
      for (const item of out.Items ?? []) {
        const size = (item.msg as string).length;
        // Always at least one letter per page, so a caller paging with `next` never stalls.
        if (letters.length > 0 && bytes + size > maxBytes) return { letters, next: letters[letters.length - 1]!.key };
        bytes += size;
        letters.push({
          key: item.sk as string,
          message: JSON.parse(item.msg as string),
          deliveryCount: item.dc as number,
          deadAt: item.da as number,
          ...(item.rs !== undefined ? { reason: item.rs as string } : {}),
        });
      }
      start = out.LastEvaluatedKey;
      if (!start) return { letters };
      if (letters.length >= limit) return { letters, next: letters[letters.length - 1]!.key };
    }
  }

  async claimSlot(groupKey: string, slots: number, until: number) {
    const now = Date.now();
    const start = Math.floor(Math.random() * slots);
    for (let i = 0; i < slots; i++) {
      const slot = (start + i) % slots;
      const token = newWriteToken();
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.table,
            Item: { pk: groupKey, sk: `s#${pad(slot, 3)}`, u: until, w: token, exp: Math.floor(until / 1000) + 3600 },
            ConditionExpression: 'attribute_not_exists(pk) OR u < :now',
            ExpressionAttributeValues: { ':now': now },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { slot, token };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        if (writtenBy(failedItem(error), token)) return { slot, token };
      }
    }
    return undefined;
  }

  async releaseSlot(groupKey: string, held: { slot: number; token: string }) {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk: groupKey, sk: `s#${pad(held.slot, 3)}` },
          ConditionExpression: 'w = :token',
          ExpressionAttributeValues: { ':token': held.token },
        }),
      );
    } catch (error) {
      // Expired and claimed by another worker meanwhile: not ours to release.
      if (!isConditionFailure(error)) throw error;
    }
  }

  async planWake(groupKey: string, partition: number, at: number) {
    const token = newWriteToken();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: groupKey, sk: `w#${pad(partition, 3)}`, a: at, w: token, exp: Math.floor(at / 1000) + 3600 },
          // Replace a wake-up that is later than this one, or already past.
          ConditionExpression: 'attribute_not_exists(pk) OR a > :at OR a < :now',
          ExpressionAttributeValues: { ':at': at, ':now': Date.now() },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return writtenBy(failedItem(error), token);
    }
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
