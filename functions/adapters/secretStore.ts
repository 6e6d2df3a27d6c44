import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SecretStore } from '../domain/ports.js';

/**
 * Push signing secrets in a table of their own. IAM grants it to the two functions that need it
 * (putGroup writes, the push worker reads), so no other function — and no caller of GET on a group —
 * can read a secret; DynamoDB encrypts it at rest (AWS-managed KMS key). Secrets Manager would add
 * $0.40 a month per push group for the same isolation (docs/design.md).
 */
export class DynamoSecretStore implements SecretStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(groupKey: string) {
    const out = await this.client.send(new GetCommand({ TableName: this.table, Key: { pk: groupKey }, ConsistentRead: true }));
    return out.Item?.s as string | undefined;
  }

  async put(groupKey: string, secret: string) {
    // A plain overwrite: a rotation retried after a lost reply writes the same secret again.
    await this.client.send(new PutCommand({ TableName: this.table, Item: { pk: groupKey, s: secret } }));
  }
}
