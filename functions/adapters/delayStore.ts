import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { minuteOf, DELAY } from '../domain/delay/limits.js';
import type { StoredRecord } from '../domain/messages.js';
import type { DelayStore, LandingChange, PendingDelayed } from '../domain/ports.js';
import { inBatches } from '../domain/concurrency.js';
import { batchGetAll } from './batch.js';
import { failedItem, isConditionFailure, newWriteToken, writtenBy } from './dynamoErrors.js';

/**
 * Pending delayed messages, one item each: pk "<topic>@<epoch>#<id>", and for the two indexes
 * tk = topic key, ds = "<due, 15 digits>#<id>" (due order), bk = "b#<minute>" while waiting for the
 * sweep or "q#<minute>" once handed to the delay queue. r = the record, n = next landing number,
 * rp = repeat, v = version, w = write token, cx = set by a cancel (the item then leaves both indexes
 * and TTL removes it), exp = TTL well after the due time (a deleted topic's leftovers go by themselves).
 * The sweep's cursor is the item pk "sweep#cursor".
 */
const pendingPk = (topicKey: string, id: string) => `${topicKey}#${id}`;
const dueSort = (due: number, id: string) => `${due.toString().padStart(15, '0')}#${id}`;
const bucketOf = (queued: boolean, due: number) => `${queued ? 'q' : 'b'}#${minuteOf(due)}`;
const SWEEP_CURSOR = 'sweep#cursor';
/** A landing or a sweep acts on a record only if it is still the version it read and not cancelled. */
const UNCHANGED = 'v = :v AND attribute_not_exists(cx)';

function toItem(p: PendingDelayed, writeToken: string) {
  return {
    pk: pendingPk(p.topicKey, p.id),
    tk: p.topicKey,
    id: p.id,
    ds: dueSort(p.due, p.id),
    bk: bucketOf(p.queued, p.due),
    due: p.due,
    r: JSON.stringify(p.record),
    ...(p.key !== undefined ? { k: p.key } : {}),
    ...(p.partition !== undefined ? { p: p.partition } : {}),
    ...(p.repeat ? { rp: JSON.stringify(p.repeat) } : {}),
    n: p.landing,
    v: p.version,
    ca: p.createdAt,
    w: writeToken,
    exp: Math.floor(p.due / 1000) + DELAY.pendingTtlAfterDueSeconds,
  };
}

function fromItem(item: Record<string, unknown>): PendingDelayed | undefined {
  if (item.cx !== undefined) return undefined;
  return {
    topicKey: item.tk as string,
    id: item.id as string,
    due: item.due as number,
    record: JSON.parse(item.r as string) as StoredRecord,
    ...(item.k !== undefined ? { key: item.k as string } : {}),
    ...(item.p !== undefined ? { partition: item.p as number } : {}),
    ...(item.rp !== undefined ? { repeat: JSON.parse(item.rp as string) } : {}),
    landing: item.n as number,
    queued: (item.bk as string).startsWith('q#'),
    version: item.v as number,
    createdAt: item.ca as number,
  };
}

/** The transaction action that lands a pending message (used by the log store's segment transaction). */
export function landingAction(table: string, landing: LandingChange) {
  const Key = { pk: pendingPk(landing.topicKey, landing.id) };
  if (!landing.next) {
    return { Delete: { TableName: table, Key, ConditionExpression: UNCHANGED, ExpressionAttributeValues: { ':v': landing.version } } };
  }
  const next = landing.next;
  return {
    Update: {
      TableName: table,
      Key,
      UpdateExpression: 'SET due = :due, ds = :ds, bk = :bk, n = :n, v = :next, exp = :exp',
      ConditionExpression: UNCHANGED,
      ExpressionAttributeValues: {
        ':v': landing.version,
        ':next': next.version,
        ':due': next.due,
        ':ds': dueSort(next.due, next.id),
        ':bk': bucketOf(next.queued, next.due),
        ':n': next.landing,
        ':exp': Math.floor(next.due / 1000) + DELAY.pendingTtlAfterDueSeconds,
      },
    },
  };
}

const encodeCursor = (key: Record<string, unknown> | undefined) =>
  key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;

export class DynamoDelayStore implements DelayStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async create(pending: PendingDelayed) {
    const writeToken = newWriteToken();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: toItem(pending, writeToken),
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return undefined;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const stored = failedItem(error);
      // Our own put, retried by the SDK after a lost reply: it was created, by us.
      if (writtenBy(stored, writeToken)) return undefined;
      const existing = await this.get(pending.topicKey, pending.id);
      // A cancelled record with this id is on its way out: the id is free again only once it is gone.
      return existing ?? { ...pending, due: Number(stored?.due?.N ?? pending.due) };
    }
  }

  async get(topicKey: string, id: string) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: pendingPk(topicKey, id) }, ConsistentRead: true }),
    );
    return out.Item ? fromItem(out.Item) : undefined;
  }

  async getMany(topicKey: string, ids: readonly string[]) {
    const items = await batchGetAll(this.client, this.table, [...new Set(ids)].map((id) => ({ pk: pendingPk(topicKey, id) })));
    const found = new Map<string, PendingDelayed>();
    for (const item of items) {
      const pending = fromItem(item);
      if (pending) found.set(pending.id, pending);
    }
    return found;
  }

  async list(topicKey: string, limit: number, after?: string) {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byTopic',
        KeyConditionExpression: after ? 'tk = :tk AND ds > :after' : 'tk = :tk',
        ExpressionAttributeValues: { ':tk': topicKey, ...(after ? { ':after': after } : {}) },
        Limit: limit,
      }),
    );
    const items = (out.Items ?? []).flatMap((item) => fromItem(item) ?? []);
    const last = out.Items?.[out.Items.length - 1];
    return { items, ...(out.LastEvaluatedKey && last ? { next: last.ds as string } : {}) };
  }

  async cancel(topicKey: string, id: string) {
    const writeToken = newWriteToken();
    try {
      // Not a delete: a delete retried after a lost reply could not tell its own success from "none".
      // The mark takes the record out of both indexes at once; TTL removes it.
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pendingPk(topicKey, id) },
          UpdateExpression: 'SET cx = :token, exp = :now REMOVE tk, bk, ds',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(cx)',
          ExpressionAttributeValues: { ':token': writeToken, ':now': Math.floor(Date.now() / 1000) },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return failedItem(error)?.cx?.S === writeToken;
    }
  }

  async drop(topicKey: string, id: string, version: number) {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk: pendingPk(topicKey, id) },
          ConditionExpression: 'v = :v',
          ExpressionAttributeValues: { ':v': version },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async dueIn(state: 'waiting' | 'queued', minute: number, limit: number, after?: string) {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byBucket',
        KeyConditionExpression: 'bk = :bk',
        ExpressionAttributeValues: { ':bk': `${state === 'queued' ? 'q' : 'b'}#${minute}` },
        Limit: limit,
        ...(after ? { ExclusiveStartKey: JSON.parse(Buffer.from(after, 'base64url').toString()) } : {}),
      }),
    );
    const items = (out.Items ?? []).flatMap((item) => fromItem(item) ?? []);
    const next = encodeCursor(out.LastEvaluatedKey);
    return { items, ...(next ? { next } : {}) };
  }

  async markQueued(items: readonly PendingDelayed[]) {
    await inBatches(items, 16, async (p) => {
      try {
        await this.client.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { pk: pendingPk(p.topicKey, p.id) },
            UpdateExpression: 'SET bk = :bk',
            ConditionExpression: UNCHANGED,
            ExpressionAttributeValues: { ':bk': bucketOf(true, p.due), ':v': p.version },
          }),
        );
      } catch (error) {
        // Landed, cancelled or changed meanwhile: nothing to mark.
        if (!isConditionFailure(error)) throw error;
      }
    });
  }

  async getSweepCursor() {
    const out = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk: SWEEP_CURSOR }, ConsistentRead: true }));
    return out.Item ? (out.Item.m as number) : undefined;
  }

  async putSweepCursor(minute: number) {
    // A plain overwrite: a retried or repeated write of the same cursor changes nothing.
    await this.client.send(new PutCommand({ TableName: this.table, Item: { pk: SWEEP_CURSOR, m: minute } }));
  }
}
