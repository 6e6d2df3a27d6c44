import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { minuteOf, DELAY } from '../domain/delay/limits.js';
import type { StoredRecord } from '../domain/messages.js';
import { groupRecordId } from '../domain/delay/groups.js';
import { isGroup, type DelayStore, type LandingChange, type PendingDelayed, type PendingGroup, type PendingItem } from '../domain/ports.js';
import { inBatches } from '../domain/concurrency.js';
import { batchGetAll } from './batch.js';
import { packJson, unpackJson } from './segmentCodec.js';
import { failedItem, isConditionFailure, newWriteToken, writtenBy } from './dynamoErrors.js';

/**
 * Pending delayed messages: one item per message with a producer id (or written before groups), one per
 * group of id-less messages (docs/delay.md, "Groups"). pk "<topic>@<epoch>#<id>", and for the two indexes
 * tk = topic key, ds = "<due, 15 digits>#<id>" (due order), bk = "b#<minute>" while waiting for the
 * sweep or "q#<minute>" once handed to the delay queue. n = next landing number, rp = repeat,
 * v = version, w = write token, exp = TTL well after the due time (a deleted topic's leftovers go by
 * themselves).
 * - A message: r = the record, k = key, p = partition, cx = set by a cancel (the item then leaves both
 *   indexes and TTL removes it).
 * - A group: g = 1, m = the members as JSON ([{r, p?}], records without their ids; mz = brotli of it when
 *   that saves a billed kilobyte), mc = member count,
 *   t = landings in all (1 without repeat), cm = map of cancelled members (index → the cancel's write
 *   token), dn = members of the current landing landed already and lc = where (only while a landing is
 *   split over segments). Every change of a group (a cancel, a landing) moves its version on, so a
 *   landing applies only to the group exactly as it read it.
 * The sweep's cursor is the item pk "sweep#cursor".
 */
const pendingPk = (topicKey: string, id: string) => `${topicKey}#${id}`;
/** A group's lookup record in the de-duplication table: the key a producer id's record has (logStore's dedupPk). */
const groupRecordPk = (topicKey: string, groupId: string, landing: number) => `${topicKey}#${groupRecordId(groupId, landing)}`;
const dueSort = (due: number, id: string) => `${due.toString().padStart(15, '0')}#${id}`;
const bucketOf = (queued: boolean, due: number) => `${queued ? 'q' : 'b'}#${minuteOf(due)}`;
const SWEEP_CURSOR = 'sweep#cursor';
/** A landing or a sweep acts on a record only if it is still the version it read and not cancelled. */
const UNCHANGED = 'v = :v AND attribute_not_exists(cx)';
const expiresAfterDue = (due: number) => Math.floor(due / 1000) + DELAY.pendingTtlAfterDueSeconds;

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
    exp: expiresAfterDue(p.due),
  };
}

function groupToItem(g: PendingGroup, writeToken: string) {
  return {
    pk: pendingPk(g.topicKey, g.id),
    g: 1,
    tk: g.topicKey,
    id: g.id,
    ds: dueSort(g.due, g.id),
    bk: bucketOf(g.queued, g.due),
    due: g.due,
    // Brotli when that saves a billed kilobyte (segments' rule): a group of 500 200-byte messages is ~130 KB of JSON.
    ...packJson('m', JSON.stringify(g.members.map((m) => (m.partition !== undefined ? { r: m.record, p: m.partition } : { r: m.record })))),
    mc: g.members.length,
    t: g.repeat?.times ?? 1,
    ...(g.repeat ? { rp: JSON.stringify(g.repeat) } : {}),
    // Cancels set cm.<index>: the map must exist.
    cm: {},
    n: g.landing,
    v: g.version,
    ca: g.createdAt,
    w: writeToken,
    exp: expiresAfterDue(g.due),
  };
}

function fromItem(item: Record<string, unknown>): PendingItem | undefined {
  if (item.g !== undefined) return groupFromItem(item);
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

function groupFromItem(item: Record<string, unknown>): PendingGroup {
  const members = (JSON.parse(unpackJson(item, 'm')!) as Array<{ r: StoredRecord; p?: number }>).map((m) =>
    m.p !== undefined ? { record: m.r, partition: m.p } : { record: m.r },
  );
  // The document client reads a number set as a Set of numbers.
  const landed = item.dn instanceof Set ? [...(item.dn as Set<number>)].map(Number).sort((a, b) => a - b) : [];
  return {
    // tk leaves the item when it is no longer listed; the pk holds it too ("<topic>@<epoch>#<id>").
    topicKey: (item.pk as string).slice(0, -(item.id as string).length - 1),
    id: item.id as string,
    due: item.due as number,
    members,
    cancelled: Object.keys((item.cm as Record<string, unknown> | undefined) ?? {})
      .map(Number)
      .sort((a, b) => a - b),
    landed,
    positions: (item.lc as string | undefined) ?? '',
    ...(item.rp !== undefined ? { repeat: JSON.parse(item.rp as string) } : {}),
    landing: item.n as number,
    queued: ((item.bk as string | undefined) ?? 'q#').startsWith('q#'),
    version: item.v as number,
    createdAt: item.ca as number,
  };
}

/** The transaction actions that land a pending message, or members of a group (used by the log store's segment transaction). */
export function landingActions(table: string, dedupTable: string, landing: LandingChange): Array<Record<string, unknown>> {
  const Key = { pk: pendingPk(landing.topicKey, landing.id) };
  if (landing.group) {
    const g = landing.group;
    const condition = { ConditionExpression: 'v = :v', ExpressionAttributeValues: { ':v': landing.version } };
    let change: Record<string, unknown>;
    if (g.complete && !g.next) change = { Delete: { TableName: table, Key, ...condition } };
    else if (g.complete && g.next) {
      change = {
        Update: {
          TableName: table,
          Key,
          UpdateExpression: 'SET due = :due, ds = :ds, bk = :bk, n = :n, v = :next, exp = :exp REMOVE dn, lc',
          ConditionExpression: condition.ConditionExpression,
          ExpressionAttributeValues: {
            ':v': landing.version,
            ':next': landing.version + 1,
            ':due': g.next.due,
            ':ds': dueSort(g.next.due, landing.id),
            ':bk': bucketOf(g.next.queued, g.next.due),
            ':n': g.next.landing,
            ':exp': expiresAfterDue(g.next.due),
          },
        },
      };
    } else {
      // Part of a landing split over segments: the members landed so far, and where.
      change = {
        Update: {
          TableName: table,
          Key,
          UpdateExpression: 'SET v = :next, dn = :dn, lc = :lc',
          ConditionExpression: condition.ConditionExpression,
          ExpressionAttributeValues: { ':v': landing.version, ':next': landing.version + 1, ':dn': new Set(g.landed), ':lc': g.positions },
        },
      };
    }
    // Where this landing's members are, for a lookup by id: beside producer ids, with their expiry. A
    // plain put: each segment of a landing writes all the positions so far, and the group's condition
    // (in the same transaction) keeps a stale landing from writing it.
    const record = {
      Put: {
        TableName: dedupTable,
        Item: { pk: groupRecordPk(landing.topicKey, landing.id, g.landing), id: groupRecordId(landing.id, g.landing), g: g.positions, exp: g.expiresAt },
      },
    };
    return [change, record];
  }
  if (!landing.next) {
    return [{ Delete: { TableName: table, Key, ConditionExpression: UNCHANGED, ExpressionAttributeValues: { ':v': landing.version } } }];
  }
  const next = landing.next;
  return [
    {
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
          ':exp': expiresAfterDue(next.due),
        },
      },
    },
  ];
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

  async createGroup(group: PendingGroup) {
    const writeToken = newWriteToken();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.table,
          Item: groupToItem(group, writeToken),
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      // Our own put, retried by the SDK after a lost reply. (The id is 64 random bits: nobody else's.)
      if (isConditionFailure(error) && writtenBy(failedItem(error), writeToken)) return;
      throw error;
    }
  }

  private async getItem(topicKey: string, id: string) {
    const out = await this.client.send(
      new GetCommand({ TableName: this.table, Key: { pk: pendingPk(topicKey, id) }, ConsistentRead: true }),
    );
    return out.Item ? fromItem(out.Item) : undefined;
  }

  async get(topicKey: string, id: string) {
    const item = await this.getItem(topicKey, id);
    return item && !isGroup(item) ? item : undefined;
  }

  async getGroup(topicKey: string, id: string) {
    const item = await this.getItem(topicKey, id);
    return item && isGroup(item) ? item : undefined;
  }

  async getMany(topicKey: string, ids: readonly string[]) {
    const items = await batchGetAll(this.client, this.table, [...new Set(ids)].map((id) => ({ pk: pendingPk(topicKey, id) })));
    const found = new Map<string, PendingItem>();
    for (const item of items) {
      const pending = fromItem(item);
      if (pending) found.set(pending.id, pending);
    }
    return found;
  }

  async list(topicKey: string, limit: number, after?: string, from = false) {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: 'byTopic',
        KeyConditionExpression: after ? `tk = :tk AND ds ${from ? '>=' : '>'} :after` : 'tk = :tk',
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
          // Not a group's item (its id is no message's id): members are cancelled one by one (cancelMember).
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(cx) AND attribute_not_exists(g)',
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

  async cancelMember(topicKey: string, groupId: string, member: number) {
    const writeToken = newWriteToken();
    try {
      // A member that landed in the group's last landing is no longer pending: a landing split over
      // segments lists it in dn until it completes (then the item goes). A repeat's member that landed
      // in an earlier landing can still be cancelled: its later landings stop.
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pendingPk(topicKey, groupId) },
          UpdateExpression: 'SET cm.#i = :token, v = v + :one',
          ConditionExpression:
            'attribute_exists(g) AND attribute_not_exists(cm.#i) AND :m < mc AND (attribute_not_exists(dn) OR NOT contains(dn, :m) OR n < t)',
          ExpressionAttributeNames: { '#i': String(member) },
          ExpressionAttributeValues: { ':token': writeToken, ':one': 1, ':m': member },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Our own cancel, retried by the SDK after a lost reply.
      return failedItem(error)?.cm?.M?.[String(member)]?.S === writeToken;
    }
  }

  async advanceGroup(topicKey: string, id: string, version: number, next: { due: number; landing: number; queued: boolean }) {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: pendingPk(topicKey, id) },
          UpdateExpression: 'SET due = :due, ds = :ds, bk = :bk, n = :n, v = :next, exp = :exp REMOVE dn, lc',
          ConditionExpression: 'v = :v',
          ExpressionAttributeValues: {
            ':v': version,
            ':next': version + 1,
            ':due': next.due,
            ':ds': dueSort(next.due, id),
            ':bk': bucketOf(next.queued, next.due),
            ':n': next.landing,
            ':exp': expiresAfterDue(next.due),
          },
        }),
      );
    } catch (error) {
      // Changed meanwhile (or our own retried update): whoever changed it has moved it on.
      if (!isConditionFailure(error)) throw error;
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

  async markQueued(items: readonly PendingItem[]) {
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
