import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, StreamViewType, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLES, type KeyType, type TableId, type TableSpec } from '../tables.js';

const attributeType = (t: KeyType) => (t === 'S' ? AttributeType.STRING : AttributeType.NUMBER);

export interface StorageProps {
  readonly removalPolicy: 'retain' | 'destroy';
  readonly deletionProtection: boolean;
  readonly pointInTimeRecovery: boolean;
}

/** The tables of lib/tables.ts: on-demand, encrypted, with the key schema the code expects. */
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
      });
    }
    this.tables = tables as Record<TableId, TableV2>;
  }

  /** The table-name variables every function gets (the names the code reads in functions/config.ts). */
  environment(): Record<string, string> {
    return Object.fromEntries((TABLES as readonly TableSpec[]).map((spec) => [spec.envVar, this.tables[spec.id as TableId].tableName]));
  }
}
