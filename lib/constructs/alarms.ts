import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData, type IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Alias } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface BrokerAlarmsProps {
  readonly functions: Record<string, IFunction>;
  readonly tables: Record<string, TableV2>;
  readonly alarmEmail?: string;
  /**
   * Concurrent executions a function may reach (its reserved concurrency, or what its route's throttle
   * allows); an alarm fires at 80% of it, before clients are throttled.
   */
  readonly concurrencyCaps?: Record<string, number>;
  /** Dead-letter queues: an alarm fires when one holds a message. */
  readonly deadLetterQueues?: Record<string, IQueue>;
  /** Further alarms on metrics of their own (e.g. one the code publishes), by name. */
  readonly metricAlarms?: Record<string, MetricAlarmSpec>;
}

export interface MetricAlarmSpec {
  readonly metric: Metric;
  /** Fires when the metric is at or above this for `evaluationPeriods` periods in a row; missing data does not breach. */
  readonly threshold: number;
  readonly evaluationPeriods: number;
  readonly description: string;
}

/** Share of a function's concurrency cap at which its concurrency alarm fires. */
export const CONCURRENCY_ALARM_SHARE = 0.8;

/**
 * Alarms on function errors and throttles, on functions nearing their concurrency cap, on DynamoDB
 * throttling, on messages in dead-letter queues and on the metrics given, sent to an SNS topic when an
 * email is given.
 */
export class BrokerAlarms extends Construct {
  readonly alarms: Alarm[] = [];
  readonly topic?: Topic;

  constructor(scope: Construct, id: string, props: BrokerAlarmsProps) {
    super(scope, id);
    let action: IAlarmAction | undefined;
    if (props.alarmEmail) {
      this.topic = new Topic(this, 'AlarmTopic', {
        displayName: 'Sluice alarms',
        enforceSSL: true,
        masterKey: Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns'),
      });
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
      action = new SnsAction(this.topic);
    }
    const add = (name: string, metric: Metric, description: string, threshold = 1, evaluationPeriods = 1) => {
      const alarm = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (action) alarm.addAlarmAction(action);
      this.alarms.push(alarm);
    };
    const period = Duration.minutes(5);
    for (const [name, fn] of Object.entries(props.functions)) {
      add(`${name}Errors`, fn.metricErrors({ period, statistic: 'Sum' }), `Sluice ${name}: the function failed (5 min).`);
      add(`${name}Throttles`, fn.metricThrottles({ period, statistic: 'Sum' }), `Sluice ${name}: Lambda throttled invocations (5 min).`);
    }
    for (const [name, cap] of Object.entries(props.concurrencyCaps ?? {})) {
      const fn = props.functions[name];
      if (!fn) throw new Error(`concurrencyCaps names no function: ${name}`);
      add(
        `${name}Concurrency`,
        fn.metric('ConcurrentExecutions', { period, statistic: 'Maximum' }),
        `Sluice ${name}: ${Math.round(CONCURRENCY_ALARM_SHARE * 100)}% of its ${cap} concurrent executions in use (5 min); ` +
          'beyond it clients are throttled (docs/deploy.md, "Concurrency and throttling").',
        Math.ceil(CONCURRENCY_ALARM_SHARE * cap),
      );
    }
    for (const [name, table] of Object.entries(props.tables)) {
      for (const metricName of ['ReadThrottleEvents', 'WriteThrottleEvents']) {
        add(
          `${name}${metricName}`,
          new Metric({ namespace: 'AWS/DynamoDB', metricName, dimensionsMap: { TableName: table.tableName }, period, statistic: 'Sum' }),
          `Sluice table ${name}: DynamoDB throttled requests (${metricName}, 5 min).`,
        );
      }
    }
    for (const [name, queue] of Object.entries(props.deadLetterQueues ?? {})) {
      add(
        `${name}DeadLetters`,
        queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        `Sluice queue ${name}: messages in its dead-letter queue, i.e. received too often without being processed (docs/deploy.md).`,
      );
    }
    for (const [name, spec] of Object.entries(props.metricAlarms ?? {})) {
      add(name, spec.metric, spec.description, spec.threshold, spec.evaluationPeriods);
    }
  }
}
