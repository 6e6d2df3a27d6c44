import { GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ApiKeyRecord, ApiKeyStore } from '../domain/apiKeys.js';

/** API keys: pk = SHA-256 hash of the key. Listing is a Scan: an operator's command, never a request path. */
export class DynamoApiKeyStore implements ApiKeyStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(keyHash: string) {
    const out = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk: keyHash } }));
    return out.Item ? toRecord(out.Item) : undefined;
  }

  async put(record: ApiKeyRecord) {
    await this.client.send(
      new PutCommand({ TableName: this.table, Item: { pk: record.keyHash, ...record }, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
  }

  async list() {
    const records: ApiKeyRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: start }));
      records.push(...(out.Items ?? []).map(toRecord));
      start = out.LastEvaluatedKey;
    } while (start);
    return records.sort((a, b) => a.createdAt - b.createdAt);
  }

  async markRevoked(keyHash: string, at: number) {
    await this.client.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: keyHash },
        UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :at)',
        ExpressionAttributeValues: { ':at': at },
      }),
    );
  }
}

function toRecord(item: Record<string, unknown>): ApiKeyRecord {
  return {
    keyHash: item.keyHash as string,
    id: item.id as string,
    name: item.name as string,
    createdAt: item.createdAt as number,
    ...(item.revokedAt !== undefined ? { revokedAt: item.revokedAt as number } : {}),
  };
}
