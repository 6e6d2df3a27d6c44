import { Duration } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import type { QueueId } from '../queues.js';
import { timeoutSecondsOf, type FunctionSpec } from '../routes.js';
import { TABLES, type TableId, type TableSpec } from '../tables.js';

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface BrokerFunctionProps {
  readonly spec: FunctionSpec;
  readonly tables: Record<TableId, TableV2>;
  /** The queues of lib/queues.ts, for the SQS actions the spec lists under `queues`. */
  readonly queues: Record<QueueId, IQueue>;
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
  /** The check-back state machine, for the functions whose spec lists `stateMachine` actions. */
  readonly stateMachine?: IStateMachine;
  /** Reserved concurrency: a cap on the function and a share of the account's pool kept for it. None by default. */
  readonly reservedConcurrency?: number;
}

/**
 * One handler of functions/handlers/ as a Lambda function: esbuild bundle (ESM, AWS SDK left to the
 * runtime), Node.js 22 on arm64, its own log group, and a role of its own that may write to that log
 * group and use only the DynamoDB actions its spec lists, on only those tables (Query also on the
 * table's indexes, each by name), and only the SQS actions it lists, on only those queues. No managed
 * policy: AWSLambdaBasicExecutionRole would allow writing to every log group ("Resource": "*").
 */
export class BrokerFunction extends Construct {
  readonly fn: NodejsFunction;

  constructor(scope: Construct, id: string, props: BrokerFunctionProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention });
    const role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    this.fn = new NodejsFunction(this, 'Function', {
      entry: `${PROJECT_ROOT}functions/handlers/${props.spec.handler}.ts`,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.spec.memoryMB ?? 512,
      timeout: Duration.seconds(timeoutSecondsOf(props.spec)),
      role,
      logGroup,
      reservedConcurrentExecutions: props.reservedConcurrency,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: 'sluice',
        SLUICE_HANDLER: props.spec.handler,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        externalModules: ['@aws-sdk/*'],
        mainFields: ['module', 'main'],
        // ESM bundles still meet CommonJS dependencies that call require().
        banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
      },
    });
    for (const [tableId, actions] of Object.entries(props.spec.access)) {
      const table = props.tables[tableId as TableId];
      const indexes = (TABLES as readonly TableSpec[]).find((spec) => spec.id === tableId)?.indexes ?? [];
      // A Query on a global secondary index is authorized on the index's ARN, not the table's.
      const onIndexes = indexes.length > 0 && actions.includes('Query') ? ['Query'] : [];
      const onTable = actions.filter((a) => !onIndexes.includes(a));
      if (onTable.length > 0) {
        this.fn.addToRolePolicy(new PolicyStatement({ actions: onTable.map((a) => `dynamodb:${a}`), resources: [table.tableArn] }));
      }
      if (onIndexes.length > 0) {
        this.fn.addToRolePolicy(
          new PolicyStatement({
            actions: onIndexes.map((a) => `dynamodb:${a}`),
            resources: [table.tableArn, ...indexes.map((index) => `${table.tableArn}/index/${index.name}`)],
          }),
        );
      }
    }
    for (const [queueId, actions] of Object.entries(props.spec.queues ?? {})) {
      const queue = props.queues[queueId as QueueId];
      this.fn.addToRolePolicy(new PolicyStatement({ actions: actions.map((a) => `sqs:${a}`), resources: [queue.queueArn] }));
    }
    const machineActions = props.spec.stateMachine ?? [];
    if (machineActions.length > 0) {
      if (!props.stateMachine) throw new Error(`${props.spec.handler} uses the check-back state machine, but none was given`);
      // states:StartExecution on the state machine; SendTaskSuccess / Failure / Heartbeat on it.
      if (machineActions.includes('StartExecution')) props.stateMachine.grantStartExecution(this.fn);
      if (machineActions.includes('SendTaskResponse')) props.stateMachine.grantTaskResponse(this.fn);
    }
  }
}
