import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type AttributeDefinition,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import { TABLES, type TableSpec } from '../lib/tables.js';

/** Table names for a local deployment: "<prefix>-<Id>", e.g. "sluice-Log". */
export const localTableName = (prefix: string, spec: TableSpec) => `${prefix}-${spec.id}`;

/** The environment the handlers read their table names from (the same variables the CDK stack sets). */
export function tableEnvironment(prefix: string): Record<string, string> {
  return Object.fromEntries(TABLES.map((spec) => [spec.envVar, localTableName(prefix, spec)]));
}

export function keySchemaOf(spec: TableSpec): { keys: KeySchemaElement[]; attributes: AttributeDefinition[] } {
  const keys: KeySchemaElement[] = [{ AttributeName: spec.partitionKey.name, KeyType: 'HASH' }];
  const attributes: AttributeDefinition[] = [{ AttributeName: spec.partitionKey.name, AttributeType: spec.partitionKey.type }];
  if (spec.sortKey) {
    keys.push({ AttributeName: spec.sortKey.name, KeyType: 'RANGE' });
    attributes.push({ AttributeName: spec.sortKey.name, AttributeType: spec.sortKey.type });
  }
  return { keys, attributes };
}

/** Creates every table of lib/tables.ts that does not exist yet (idempotent). */
export async function createTables(client: DynamoDBClient, prefix: string): Promise<void> {
  for (const spec of TABLES as readonly TableSpec[]) {
    const name = localTableName(prefix, spec);
    const { keys, attributes } = keySchemaOf(spec);
    let created = false;
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: keys,
          AttributeDefinitions: attributes,
          ...(spec.stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: spec.stream } } : {}),
        }),
      );
      created = true;
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
    }
    // The emulator is instant; real DynamoDB takes seconds, and TTL can only be set on an active table.
    for (let i = 0; i < 600; i++) {
      const out = await client.send(new DescribeTableCommand({ TableName: name }));
      if (out.Table?.TableStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (created && spec.ttlAttribute) {
      await client.send(
        new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { Enabled: true, AttributeName: spec.ttlAttribute } }),
      );
    }
  }
}
