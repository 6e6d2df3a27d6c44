import { CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { BrokerAlarms } from './constructs/alarms.js';
import { BrokerApi } from './constructs/api.js';
import { BrokerFunction } from './constructs/brokerFunction.js';
import { DelaySweep } from './constructs/delaySweep.js';
import { BrokerQueues } from './constructs/queues.js';
import { CheckBack } from './constructs/checkBack.js';
import { sluiceParameterNames } from './constructs/sluiceExports.js';
import { StreamConsumers } from './constructs/streams.js';
import { Storage } from './constructs/storage.js';
import { QUEUES } from './queues.js';
import {
  CHECK_BACK_WORKER_FUNCTION,
  DELAY_SWEEP_FUNCTION,
  PUSH_DISPATCH_FUNCTION,
  PUSH_WORKER_FUNCTION,
  RETENTION_FUNCTION,
  RETENTION_SCHEDULE_MINUTES,
} from './routes.js';
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

/** The push dispatcher's stream lag at which its alarm fires: push deliveries are at least this late. */
export const PUSH_DISPATCH_ITERATOR_AGE_ALARM_MS = 60_000;

/**
 * The whole broker: tables, queues, one function per route behind an authenticated HTTP API, the queue
 * consumers, the stream consumers (the push dispatcher), the retention schedule, the delay sweep's
 * schedule, alarms, and what Lambda subscribers in other apps need (the API URL and the push worker's
 * role ARN, as outputs and SSM parameters).
 */
export class SluiceStack extends Stack {
  readonly storage: Storage;
  readonly queues: BrokerQueues;
  readonly api: BrokerApi;
  readonly delaySweep: DelaySweep;
  readonly streams: StreamConsumers;
  /** The push worker's role: Lambda subscribers allow it to invoke their function (lib/subscriber.ts). */
  readonly pushWorkerRoleArn: string;
  readonly alarms?: BrokerAlarms;
  readonly checkBack: CheckBack;
  /** The check-back worker's role: a producer's check-back Lambda allows it lambda:InvokeFunction. */
  readonly checkBackWorkerRoleArn: string;

  constructor(scope: Construct, id: string, props: SluiceStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.logRetentionDays as RetentionDays;
    this.storage = new Storage(this, 'Storage', config);
    this.queues = new BrokerQueues(this, 'Queues');
    const { tables } = this.storage;
    const queues = this.queues.queues;
    this.checkBack = new CheckBack(this, 'CheckBack', { queue: queues.CheckBack, logRetention });
    const stateMachine = this.checkBack.stateMachine;
    // Every function gets every table name and queue URL (functions/config.ts requires them all).
    const environment = {
      ...this.storage.environment(),
      ...this.queues.environment(),
      CHECK_BACK_STATE_MACHINE_ARN: stateMachine.stateMachineArn,
    };
    this.api = new BrokerApi(this, 'Api', { auth: config.auth, tables, queues, environment, logRetention, limits: config, stateMachine });
    const consumers = this.queues.addConsumers({ tables, environment, logRetention, stateMachine });
    this.delaySweep = new DelaySweep(this, 'DelaySweep', { tables, queues, environment, logRetention });
    this.streams = new StreamConsumers(this, 'Streams', { tables, queues, environment, logRetention });
    const pushWorker = consumers[PUSH_WORKER_FUNCTION.handler];
    if (!pushWorker?.role) throw new Error(`no consumer function ${PUSH_WORKER_FUNCTION.handler} (lib/queues.ts)`);
    // The worker has no lambda:InvokeFunction of its own: each subscriber's function allows this role in
    // its resource-based policy (lib/subscriber.ts), so the worker can invoke exactly the subscribed functions.
    this.pushWorkerRoleArn = pushWorker.role.roleArn;
    const checkBackWorker = consumers[CHECK_BACK_WORKER_FUNCTION.handler];
    if (!checkBackWorker?.role) throw new Error(`no consumer function ${CHECK_BACK_WORKER_FUNCTION.handler} (lib/queues.ts)`);
    this.checkBackWorkerRoleArn = checkBackWorker.role.roleArn;

    const retention = new BrokerFunction(this, 'Retention', {
      spec: RETENTION_FUNCTION,
      tables,
      queues,
      environment,
      logRetention,
    }).fn;
    new Rule(this, 'RetentionSchedule', {
      description: 'Keeps each partition newest log segment from TTL; deletes what TTL will not',
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
          ...this.streams.functions,
        },
        tables,
        concurrencyCaps: concurrencyCaps(config),
        deadLetterQueues: { ...this.queues.deadLetterQueues, ...this.streams.failureQueues },
        metricAlarms: {
          PushDispatchLag: {
            metric: this.streams.metricIteratorAge(PUSH_DISPATCH_FUNCTION.handler),
            threshold: PUSH_DISPATCH_ITERATOR_AGE_ALARM_MS,
            evaluationPeriods: 2,
            description:
              `Sluice push dispatcher: it processed Log stream records over ${PUSH_DISPATCH_ITERATOR_AGE_ALARM_MS / 1000} s old ` +
              'in two 5-minute periods in a row, so push deliveries are at least that late (docs/deploy.md, "Push delivery").',
          },
          ...Object.fromEntries(
            this.checkBack.metricUnfinished().map((metric) => [
              `CheckBack${metric.metricName.replace(/^Executions/, '')}`,
              {
                metric,
                threshold: 1,
                evaluationPeriods: 1,
                description:
                  `Sluice transaction check-back: an execution ${metric.metricName.replace(/^Executions/, '').toLowerCase()} ` +
                  '(a transaction whose check-back did not finish; docs/transactions.md, "Operations").',
              },
            ]),
          ),
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
    for (const [name, queue] of Object.entries(this.streams.failureQueues)) {
      new CfnOutput(this, `${name}FailureQueueUrl`, { value: queue.queueUrl, description: 'Batches the stream consumer gave up on' });
    }
    // For Lambda subscribers in other apps (lib/subscriber.ts): as outputs, and as SSM parameters that
    // an app reads at deploy time knowing only this stack's name.
    const parameters = sluiceParameterNames(this.stackName);
    new CfnOutput(this, 'PushWorkerRoleArn', {
      value: this.pushWorkerRoleArn,
      description: 'The role that invokes Lambda subscribers: a subscribed function must allow it lambda:InvokeFunction',
    });
    new CfnOutput(this, 'CheckBackWorkerRoleArn', {
      value: this.checkBackWorkerRoleArn,
      description: 'The role that invokes check-back Lambdas of transactions: such a function must allow it lambda:InvokeFunction',
    });
    new CfnOutput(this, 'CheckBackStateMachineArn', { value: stateMachine.stateMachineArn, description: 'The transaction check-back state machine' });
    new StringParameter(this, 'ApiUrlParameter', {
      parameterName: parameters.apiUrl,
      stringValue: this.api.httpApi.apiEndpoint,
      description: 'Base URL of the Sluice API (for Lambda subscribers in other apps)',
    });
    new StringParameter(this, 'PushWorkerRoleArnParameter', {
      parameterName: parameters.pushWorkerRoleArn,
      stringValue: this.pushWorkerRoleArn,
      description: 'The Sluice push worker role, which invokes Lambda subscribers',
    });

    Validations.of(this).acknowledge({
      id: 'AwsSolutions::AwsSolutions-L1',
      reason: 'Node.js 22 is the runtime Sluice targets and tests (the project brief fixes it); a newer runtime is a deliberate upgrade.',
    });
  }
}
