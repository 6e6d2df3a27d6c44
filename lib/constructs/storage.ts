import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, ProjectionType, StreamViewType, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLES, type IndexSpec, type KeyType, type TableId, type TableSpec } from '../tables.js';

const attributeType = (t: KeyType) => (t === 'S' ? AttributeType.STRING : AttributeType.NUMBER);

const globalSecondaryIndex = (index: IndexSpec) => ({
  indexName: index.name,
  partitionKey: { name: index.partitionKey.name, type: attributeType(index.partitionKey.type) },
  ...(index.sortKey ? { sortKey: { name: index.sortKey.name, type: attributeType(index.sortKey.type) } } : {}),
  projectionType: index.keysOnly ? ProjectionType.KEYS_ONLY : ProjectionType.ALL,
});

export interface StorageProps {
  readonly removalPolicy: 'retain' | 'destroy';
  readonly deletionProtection: boolean;
  readonly pointInTimeRecovery: boolean;
}

/** The tables of lib/tables.ts: on-demand, encrypted, with the key schema and global secondary indexes the code expects. */
export class Storage extends Construct {
  readonly tables: Record<TableId, TableV2>;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const tables: Partial<Record<TableId, TableV2>> = {};
    for (const spec of TABLES as readonly TableSpec[]) {
      tables[spec.id as TableId] = new TableV2(this, spec.id, {
        partitionKey: { name: spec.partitionKey.name, type: attributeType(spec.partitionKey.type) },
        ...(spec.sortKey ? { sortKey: { name: spec.sortKey.name, type: attributeType(spec.sortKey.type) } } : {}),
        billing: Billing.onDemand(),
        encryption: TableEncryptionV2.awsManagedKey(),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: props.pointInTimeRecovery },
        deletionProtection: props.deletionProtection,
        removalPolicy: props.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
        ...(spec.ttlAttribute ? { timeToLiveAttribute: spec.ttlAttribute } : {}),
        ...(spec.stream ? { dynamoStream: StreamViewType.NEW_IMAGE } : {}),
        ...(spec.indexes?.length ? { globalSecondaryIndexes: spec.indexes.map(globalSecondaryIndex) } : {}),
      });
    }
    this.tables = tables as Record<TableId, TableV2>;
  }

  /** The table-name variables every function gets (the names the code reads in functions/config.ts). */
  environment(): Record<string, string> {
    return Object.fromEntries((TABLES as readonly TableSpec[]).map((spec) => [spec.envVar, this.tables[spec.id as TableId].tableName]));
  }
}
