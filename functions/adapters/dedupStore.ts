import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DedupEntry, DedupStore } from '../domain/ports.js';
import { groupRecordId, parseLandedMemberId, positionIn } from '../domain/delay/groups.js';
import { batchGetAll } from './batch.js';
import { dedupPk } from './logStore.js';

/** Producer ids: pk "<topic>@<epoch>#<id>" -> partition and offset; TTL removes them after the window. */
export class DynamoDedupStore implements DedupStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getMany(topicKey: string, ids: readonly string[]) {
    // Landed members of delayed groups have no record of their own: their group's lookup record of that
    // landing says where they are (functions/domain/delay/groups.ts).
    const members = new Map<string, { record: string; member: number }>();
    for (const id of new Set(ids)) {
      const m = parseLandedMemberId(id);
      if (m) members.set(id, { record: groupRecordId(m.group, m.landing), member: m.member });
    }
    const keys = new Set([...ids, ...[...members.values()].map((m) => m.record)]);
    const items = await batchGetAll(
      this.client,
      this.table,
      [...keys].map((id) => ({ pk: dedupPk(topicKey, id) })),
    );
    const found = new Map<string, DedupEntry>();
    const groupRecords = new Map<string, string>();
    const now = Math.floor(Date.now() / 1000);
    for (const item of items) {
      // TTL deletion lags expiry; an expired record no longer de-duplicates.
      if ((item.exp as number) < now) continue;
      if (item.g !== undefined) groupRecords.set(item.id as string, item.g as string);
      else found.set(item.id as string, { id: item.id as string, partition: item.p as number, offset: item.o as number });
    }
    for (const [id, m] of members) {
      const positions = groupRecords.get(m.record);
      const place = positions !== undefined && !found.has(id) ? positionIn(positions, m.member) : undefined;
      if (place) found.set(id, { id, ...place });
    }
    return found;
  }
}
