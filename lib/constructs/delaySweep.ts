import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Schedule, ScheduleExpression, ScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { QueueId } from '../queues.js';
import { DELAY_SWEEP_FUNCTION, DELAY_SWEEP_SECONDS } from '../routes.js';
import type { TableId } from '../tables.js';
import { BrokerFunction } from './brokerFunction.js';

/**
 * The CloudWatch metric the sweep publishes (Embedded Metric Format, through Powertools Metrics, whose
 * serviceName becomes the dimension "service"): how many pending delayed messages one run found past
 * their due time. Keep in step with functions/handlers/sweepDelayed.ts: an alarm whose dimensions
 * differ from the published ones watches a metric that does not exist and never fires.
 */
export const OVERDUE_DELAYED_METRIC = {
  namespace: 'Sluice',
  metricName: 'OverdueDelayed',
  dimensionsMap: { service: 'sluice-delay' },
} as const;

/** The sweep's retries when an invocation fails: the next run comes a minute later anyway. */
const SWEEP_RETRY_ATTEMPTS = 2;
const SWEEP_MAX_EVENT_AGE = Duration.minutes(5);

export interface DelaySweepProps {
  readonly tables: Record<TableId, TableV2>;
  readonly queues: Record<QueueId, IQueue>;
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
}

/**
 * The delay sweep function and the one recurring EventBridge Scheduler schedule that runs it every
 * DELAY_SWEEP_SECONDS, in a schedule group of the stack. The Scheduler's execution role may only
 * invoke the sweep function (the LambdaInvoke target grants it) and may only be assumed by EventBridge
 * Scheduler for schedules of this account and this group. No function creates schedules, so no
 * function has iam:PassRole: CloudFormation passes the role when it creates the schedule, with the
 * deployer's rights.
 */
export class DelaySweep extends Construct {
  readonly fn: NodejsFunction;
  readonly scheduleGroup: ScheduleGroup;
  readonly schedule: Schedule;
  readonly schedulerRole: Role;

  constructor(scope: Construct, id: string, props: DelaySweepProps) {
    super(scope, id);
    this.fn = new BrokerFunction(this, DELAY_SWEEP_FUNCTION.handler, {
      spec: DELAY_SWEEP_FUNCTION,
      tables: props.tables,
      queues: props.queues,
      environment: props.environment,
      logRetention: props.logRetention,
    }).fn;
    // The group holds only schedules the stack defines, so it goes with the stack.
    this.scheduleGroup = new ScheduleGroup(this, 'Group', { removalPolicy: RemovalPolicy.DESTROY });
    const stack = Stack.of(this);
    // What LambdaInvoke would create itself (confused-deputy conditions included), made here so that
    // the acknowledgement below can name it.
    this.schedulerRole = new Role(this, 'SchedulerRole', {
      description: 'EventBridge Scheduler: invokes the Sluice delay sweep',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account, 'aws:SourceArn': this.scheduleGroup.scheduleGroupArn } },
      }),
    });
    this.schedule = new Schedule(this, 'Schedule', {
      description: 'Sluice delay sweep: hands pending delayed messages due soon (or overdue) to the delay queue',
      scheduleGroup: this.scheduleGroup,
      schedule: ScheduleExpression.rate(Duration.seconds(DELAY_SWEEP_SECONDS)),
      target: new LambdaInvoke(this.fn, {
        role: this.schedulerRole,
        retryAttempts: SWEEP_RETRY_ATTEMPTS,
        maxEventAge: SWEEP_MAX_EVENT_AGE,
      }),
    });
    // grantInvoke allows the function's ARN and "<ARN>:*" (its versions and aliases; it has none).
    const fnLogicalId = stack.resolve(stack.getLogicalId(this.fn.node.defaultChild as CfnFunction)) as string;
    Validations.of(this.schedulerRole).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::<${fnLogicalId}.Arn>:*]`,
      reason:
        'lambda:InvokeFunction on the sweep function and its qualifiers (versions, aliases) only: the wildcard spans ' +
        'no other function. It is what the LambdaInvoke target grants.',
    });
  }

  /** Most overdue pending messages one sweep saw in 5 minutes. */
  metricOverdue(): Metric {
    return new Metric({
      ...OVERDUE_DELAYED_METRIC,
      dimensionsMap: { ...OVERDUE_DELAYED_METRIC.dimensionsMap },
      statistic: 'Maximum',
      period: Duration.minutes(5),
    });
  }
}
