import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { DedupEntry, DedupStore } from '../domain/ports.js';
import { batchGetAll } from './batch.js';
import { dedupPk } from './logStore.js';

/** Producer ids: pk "<topic>@<epoch>#<id>" -> partition and offset; TTL removes them after the window. */
export class DynamoDedupStore implements DedupStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getMany(topicKey: string, ids: readonly string[]) {
    const items = await batchGetAll(
      this.client,
      this.table,
      [...new Set(ids)].map((id) => ({ pk: dedupPk(topicKey, id) })),
    );
    const found = new Map<string, DedupEntry>();
    const now = Math.floor(Date.now() / 1000);
    for (const item of items) {
      // TTL deletion lags expiry; an expired record no longer de-duplicates.
      if ((item.exp as number) < now) continue;
      found.set(item.id as string, { id: item.id as string, partition: item.p as number, offset: item.o as number });
    }
    return found;
  }
}
