import { CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { BrokerAlarms } from './constructs/alarms.js';
import { BrokerApi } from './constructs/api.js';
import { BrokerFunction } from './constructs/brokerFunction.js';
import { DelaySweep } from './constructs/delaySweep.js';
import { BrokerQueues } from './constructs/queues.js';
import { Storage } from './constructs/storage.js';
import { QUEUES } from './queues.js';
import { DELAY_SWEEP_FUNCTION, RETENTION_FUNCTION, RETENTION_SCHEDULE_MINUTES } from './routes.js';
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

/**
 * The whole broker: tables, queues, one function per route behind an authenticated HTTP API, the queue
 * consumers, the retention schedule, the delay sweep's schedule, alarms.
 */
export class SluiceStack extends Stack {
  readonly storage: Storage;
  readonly queues: BrokerQueues;
  readonly api: BrokerApi;
  readonly delaySweep: DelaySweep;
  readonly alarms?: BrokerAlarms;

  constructor(scope: Construct, id: string, props: SluiceStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.logRetentionDays as RetentionDays;
    this.storage = new Storage(this, 'Storage', config);
    this.queues = new BrokerQueues(this, 'Queues');
    const { tables } = this.storage;
    const queues = this.queues.queues;
    // Every function gets every table name and queue URL (functions/config.ts requires them all).
    const environment = { ...this.storage.environment(), ...this.queues.environment() };
    this.api = new BrokerApi(this, 'Api', { auth: config.auth, tables, queues, environment, logRetention, limits: config });
    const consumers = this.queues.addConsumers({ tables, environment, logRetention });
    this.delaySweep = new DelaySweep(this, 'DelaySweep', { tables, queues, environment, logRetention });

    const retention = new BrokerFunction(this, 'Retention', {
      spec: RETENTION_FUNCTION,
      tables,
      queues,
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
        functions: {
          ...this.api.functions,
          [RETENTION_FUNCTION.handler]: retention,
          ...consumers,
          [DELAY_SWEEP_FUNCTION.handler]: this.delaySweep.fn,
        },
        tables,
        concurrencyCaps: concurrencyCaps(config),
        deadLetterQueues: this.queues.deadLetterQueues,
        metricAlarms: {
          OverdueDelayed: {
            metric: this.delaySweep.metricOverdue(),
            threshold: 1,
            evaluationPeriods: 2,
            description:
              'Sluice delay sweep: pending delayed messages past their due time in two 5-minute periods in a row ' +
              '(docs/deploy.md, "Delay messages").',
          },
        },
        ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
      });
    }

    for (const spec of TABLES) {
      new CfnOutput(this, `${spec.id}TableName`, { value: tables[spec.id].tableName, description: spec.purpose });
    }
    for (const spec of QUEUES) {
      new CfnOutput(this, `${spec.id}QueueUrl`, { value: queues[spec.id].queueUrl, description: spec.purpose });
      new CfnOutput(this, `${spec.id}DeadLetterQueueUrl`, { value: this.queues.deadLetterQueues[spec.id].queueUrl });
    }

    Validations.of(this).acknowledge({
      id: 'AwsSolutions::AwsSolutions-L1',
      reason: 'Node.js 22 is the runtime Sluice targets and tests (the project brief fixes it); a newer runtime is a deliberate upgrade.',
    });
  }
}
