import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type AttributeDefinition,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import { TABLES, type IndexSpec, type TableSpec } from '../lib/tables.js';

/** Table names for a local deployment: "<prefix>-<Id>", e.g. "sluice-Log". */
export const localTableName = (prefix: string, spec: TableSpec) => `${prefix}-${spec.id}`;

/** The environment the handlers read their table names from (the same variables the CDK stack sets). */
export function tableEnvironment(prefix: string): Record<string, string> {
  return Object.fromEntries(TABLES.map((spec) => [spec.envVar, localTableName(prefix, spec)]));
}

/**
 * The key schema of a table and of its global secondary indexes, with one attribute definition per key
 * attribute (DynamoDB refuses a definition given twice, or one that no key schema uses).
 */
export function keySchemaOf(spec: TableSpec): { keys: KeySchemaElement[]; attributes: AttributeDefinition[]; indexes: GlobalSecondaryIndex[] } {
  const attributes = new Map<string, AttributeDefinition>();
  const define = (key: { readonly name: string; readonly type: string }) => {
    const known = attributes.get(key.name);
    if (known && known.AttributeType !== key.type) {
      throw new Error(`Table ${spec.id}: attribute ${key.name} is declared both ${known.AttributeType} and ${key.type}.`);
    }
    attributes.set(key.name, { AttributeName: key.name, AttributeType: key.type as AttributeDefinition['AttributeType'] });
  };
  const schema = (owner: TableSpec | IndexSpec): KeySchemaElement[] => {
    define(owner.partitionKey);
    const keys: KeySchemaElement[] = [{ AttributeName: owner.partitionKey.name, KeyType: 'HASH' }];
    if (owner.sortKey) {
      define(owner.sortKey);
      keys.push({ AttributeName: owner.sortKey.name, KeyType: 'RANGE' });
    }
    return keys;
  };
  const keys = schema(spec);
  const indexes: GlobalSecondaryIndex[] = (spec.indexes ?? []).map((index) => ({
    IndexName: index.name,
    KeySchema: schema(index),
    Projection: { ProjectionType: index.keysOnly ? 'KEYS_ONLY' : 'ALL' },
  }));
  return { keys, attributes: [...attributes.values()], indexes };
}

/** Creates every table of lib/tables.ts that does not exist yet (idempotent). */
export async function createTables(client: DynamoDBClient, prefix: string): Promise<void> {
  for (const spec of TABLES as readonly TableSpec[]) {
    const name = localTableName(prefix, spec);
    const { keys, attributes, indexes } = keySchemaOf(spec);
    let created = false;
    try {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: 'PAY_PER_REQUEST',
          KeySchema: keys,
          AttributeDefinitions: attributes,
          // On-demand indexes take no throughput settings; they share the table's billing mode.
          ...(indexes.length > 0 ? { GlobalSecondaryIndexes: indexes } : {}),
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
