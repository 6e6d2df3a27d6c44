import { RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { AttributeType, Billing, StreamViewType, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { TABLES, type TableSpec } from './tables.js';

/**
 * The Sluice stack. This foundation declares the tables from lib/tables.ts (the same list the local
 * runtime creates); functions, the HTTP API, auth and alarms are the CDK-stack issue's work.
 */
export class SluiceStack extends Stack {
  readonly tables: Record<string, TableV2> = {};

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    for (const spec of TABLES as readonly TableSpec[]) {
      this.tables[spec.id] = new TableV2(this, spec.id, {
        partitionKey: { name: spec.partitionKey.name, type: AttributeType[spec.partitionKey.type === 'S' ? 'STRING' : 'NUMBER'] },
        ...(spec.sortKey
          ? { sortKey: { name: spec.sortKey.name, type: AttributeType[spec.sortKey.type === 'S' ? 'STRING' : 'NUMBER'] } }
          : {}),
        billing: Billing.onDemand(),
        encryption: TableEncryptionV2.awsManagedKey(),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        ...(spec.ttlAttribute ? { timeToLiveAttribute: spec.ttlAttribute } : {}),
        ...(spec.stream ? { dynamoStream: StreamViewType.NEW_IMAGE } : {}),
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }
  }
}
