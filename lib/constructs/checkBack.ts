import { Duration, Validations } from 'aws-cdk-lib';
import type { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { checkBackDefinition } from '../checkBack.js';

export interface CheckBackProps {
  /** The CheckBack queue of lib/queues.ts: the state machine's requests to the check-back worker. */
  readonly queue: IQueue;
  readonly logRetention: RetentionDays;
}

/**
 * The transaction check-back state machine of lib/checkBack.ts: a Standard workflow (check-backs can last
 * days: maxChecks waits of up to an hour), started only for transactions still prepared at their timeout.
 * Its role may send to the CheckBack queue and nothing else; executions are traced (X-Ray) and logged in a
 * log group of its own (events only, not the execution data: that holds transaction ids and task tokens).
 */
export class CheckBack extends Construct {
  readonly stateMachine: StateMachine;

  constructor(scope: Construct, id: string, props: CheckBackProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromChainable(checkBackDefinition(this, props.queue)),
      stateMachineType: StateMachineType.STANDARD,
      // A check-back lasts at most maxChecks (100) waits of an hour plus the asks; a week bounds it well.
      timeout: Duration.days(7),
      tracingEnabled: true,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
      comment: 'Sluice transaction check-back (lib/checkBack.ts)',
    });
    const policy = this.stateMachine.role.node.tryFindChild('DefaultPolicy');
    if (policy) {
      Validations.of(policy).acknowledge({
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason:
          'Only the actions that accept no narrower resource: X-Ray PutTraceSegments / PutTelemetryRecords / GetSampling* and the ' +
          'CloudWatch Logs log-delivery actions (CreateLogDelivery, DescribeLogGroups, …) that Step Functions logging needs ' +
          '(https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy). SQS sending is on the CheckBack queue only.',
      });
    }
  }

  /** Executions that failed, timed out or were aborted: a transaction whose check-back could not finish. */
  metricUnfinished(): Metric[] {
    const period = Duration.minutes(5);
    return [this.stateMachine.metricFailed({ period }), this.stateMachine.metricTimedOut({ period }), this.stateMachine.metricAborted({ period })];
  }
}
