import { CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { BrokerAlarms } from './constructs/alarms.js';
import { BrokerApi } from './constructs/api.js';
import { BrokerFunction } from './constructs/brokerFunction.js';
import { Storage } from './constructs/storage.js';
import { RETENTION_FUNCTION, RETENTION_SCHEDULE_MINUTES } from './routes.js';
import type { StackConfig } from './stackConfig.js';
import { TABLES } from './tables.js';
import { LIMITS } from '../functions/domain/limits.js';

export interface SluiceStackProps extends StackProps {
  readonly config: StackConfig;
}

/**
 * Most concurrent executions pull and produce can reach. Pull is bounded by its route throttle: the
 * stage admits at most burst + 20 s × rate pulls in any 20 s (the longest wait), and an idle long poll
 * holds its instance about that long; and by its reserved concurrency when set. Produce by its
 * reserved concurrency when set.
 */
export function concurrencyCaps(config: StackConfig): Record<string, number> {
  const throttled = config.pullBurstLimit + Math.ceil(LIMITS.maxWaitSeconds * config.pullRateLimit);
  const caps: Record<string, number> = { pull: Math.min(throttled, config.pullConcurrency ?? Infinity) };
  if (config.produceConcurrency !== undefined) caps.produce = config.produceConcurrency;
  return caps;
}

/** The whole broker: tables, one function per route behind an authenticated HTTP API, the retention schedule, alarms. */
export class SluiceStack extends Stack {
  readonly storage: Storage;
  readonly api: BrokerApi;
  readonly alarms?: BrokerAlarms;

  constructor(scope: Construct, id: string, props: SluiceStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.logRetentionDays as RetentionDays;
    this.storage = new Storage(this, 'Storage', config);
    const environment = this.storage.environment();
    this.api = new BrokerApi(this, 'Api', { auth: config.auth, tables: this.storage.tables, environment, logRetention, limits: config });

    const retention = new BrokerFunction(this, 'Retention', {
      spec: RETENTION_FUNCTION,
      tables: this.storage.tables,
      environment,
      logRetention,
    }).fn;
    new Rule(this, 'RetentionSchedule', {
      description: 'Deletes log segments past their topic retention',
      schedule: Schedule.rate(Duration.minutes(RETENTION_SCHEDULE_MINUTES)),
      targets: [new LambdaFunction(retention, { retryAttempts: 2 })],
    });

    if (config.alarms) {
      this.alarms = new BrokerAlarms(this, 'Alarms', {
        functions: { ...this.api.functions, [RETENTION_FUNCTION.handler]: retention },
        tables: this.storage.tables,
        concurrencyCaps: concurrencyCaps(config),
        ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
      });
    }

    for (const spec of TABLES) {
      new CfnOutput(this, `${spec.id}TableName`, { value: this.storage.tables[spec.id].tableName, description: spec.purpose });
    }

    Validations.of(this).acknowledge({
      id: 'AwsSolutions::AwsSolutions-L1',
      reason: 'Node.js 22 is the runtime Sluice targets and tests (the project brief fixes it); a newer runtime is a deliberate upgrade.',
    });
  }
}
