/**
 * The transaction check-back state machine, declared once: the CDK stack deploys it
 * (lib/constructs/checkBack.ts) and the local runtime creates the very same definition on the emulator
 * (local/stateMachines.ts renders it with checkBackDefinitionJson).
 *
 * It is started only for a transaction still prepared at its timeout (functions/domain/transactions/
 * checkBack.ts), and owns the loop: ask (an SQS message with a task token, answered by the check-back
 * worker after it asked the producer and applied the decision), stop when decided, else wait
 * (checkIntervalSeconds, doubling up to an hour) and ask again, and after maxChecks give up (the worker
 * rolls back: decidedBy checkLimit). Only `sqs` tasks with `.waitForTaskToken`, Choice, Wait and Pass with
 * intrinsic functions (JSONPath): moto and LocalStack both execute these; neither runs Lambda tasks
 * without Docker, and an `http:invoke` task could not sign requests like push does.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Queue, type IQueue } from 'aws-cdk-lib/aws-sqs';
import {
  Choice,
  Condition,
  IntegrationPattern,
  JsonPath,
  Pass,
  StateGraph,
  Succeed,
  TaskInput,
  Timeout,
  Wait,
  WaitTime,
  type IChainable,
} from 'aws-cdk-lib/aws-stepfunctions';
import { SqsSendMessage } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { TX } from '../functions/domain/transactions/limits.js';

/** How long one ask may wait for the worker's answer: the worker's timeout (60 s) a few times over, for SQS retries. */
export const CHECK_TASK_TIMEOUT_SECONDS = 300;

/** SQS errors of the send itself (the task's error names in Step Functions). */
const SQS_ERRORS = ['SQS.SdkClientException', 'SQS.AmazonSQSException', 'States.TaskFailed'];

export function checkBackDefinition(scope: Construct, queue: IQueue): IChainable {
  const request = (giveUp: boolean) =>
    TaskInput.fromObject({
      id: JsonPath.stringAt('$.id'),
      check: JsonPath.numberAt('$.check'),
      taskToken: JsonPath.taskToken,
      ...(giveUp ? { giveUp: true } : {}),
    });
  const ask = new SqsSendMessage(scope, 'Ask the producer', {
    queue,
    messageBody: request(false),
    integrationPattern: IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    taskTimeout: Timeout.duration(Duration.seconds(CHECK_TASK_TIMEOUT_SECONDS)),
    resultPath: '$.outcome',
    comment: 'The check-back worker asks the producer, applies its decision and answers with the transaction state.',
  });
  ask.addRetry({ errors: SQS_ERRORS, interval: Duration.seconds(1), backoffRate: 2, maxAttempts: 5 });

  const giveUp = new SqsSendMessage(scope, 'Give up', {
    queue,
    messageBody: request(true),
    integrationPattern: IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    taskTimeout: Timeout.duration(Duration.seconds(CHECK_TASK_TIMEOUT_SECONDS)),
    resultPath: '$.outcome',
    comment: 'maxChecks asked without a decision: the worker rolls the transaction back (decidedBy checkLimit).',
  });
  giveUp.addRetry({ errors: [...SQS_ERRORS, 'States.Timeout'], interval: Duration.seconds(5), backoffRate: 2, maxAttempts: 6 });
  giveUp.next(new Succeed(scope, 'Rolled back after maxChecks'));

  const next = new Pass(scope, 'Next check', {
    parameters: {
      'id.$': '$.id',
      'maxChecks.$': '$.maxChecks',
      'check.$': 'States.MathAdd($.check, 1)',
      'waitSeconds.$': 'States.MathAdd($.waitSeconds, $.waitSeconds)',
    },
    comment: 'The wait doubles after every check.',
  });
  const capped = new Pass(scope, 'Cap the wait', {
    parameters: { 'id.$': '$.id', 'maxChecks.$': '$.maxChecks', 'check.$': '$.check', waitSeconds: TX.maxCheckIntervalSeconds },
  });
  const wait = new Wait(scope, 'Wait before asking again', { time: WaitTime.secondsPath('$.waitSeconds') });
  const lastCheck = new Choice(scope, 'Checks left?')
    .when(Condition.numberGreaterThanEqualsJsonPath('$.check', '$.maxChecks'), giveUp)
    .otherwise(
      wait.next(next).next(
        new Choice(scope, 'Wait over an hour?')
          .when(Condition.numberGreaterThan('$.waitSeconds', TX.maxCheckIntervalSeconds), capped.next(ask))
          .otherwise(ask),
      ),
    );
  // No answer in time (the worker failed for 5 minutes), or SQS refused the send 5 times: counts as a check without a decision.
  ask.addCatch(lastCheck, { errors: ['States.ALL'], resultPath: '$.error' });
  const decided = new Choice(scope, 'Decided?')
    .when(
      Condition.or(Condition.stringEquals('$.outcome.state', 'committed'), Condition.stringEquals('$.outcome.state', 'rolledBack')),
      new Succeed(scope, 'Decided'),
    )
    .otherwise(lastCheck);
  return ask.next(decided);
}

/**
 * The definition as Amazon States Language JSON, for a queue given by ARN and URL (the local runtime's
 * emulator queue). Built by the same function the stack deploys.
 */
export function checkBackDefinitionJson(queue: { arn: string; url: string }): string {
  const stack = new Stack(undefined, 'CheckBackDefinition');
  const imported = Queue.fromQueueAttributes(stack, 'CheckBackQueue', { queueArn: queue.arn, queueUrl: queue.url });
  const start = checkBackDefinition(stack, imported);
  const graph = new StateGraph(start.startState, 'check-back');
  return JSON.stringify(withoutPseudoParameters(stack.resolve(graph.toGraphJson())));
}

/**
 * Evaluates what CloudFormation would: `{"Ref": "AWS::Partition"}` (task resource ARNs are
 * "arn:${Partition}:states:::sqs:…") and the `Fn::Join` around it.
 */
function withoutPseudoParameters(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutPseudoParameters);
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  if (object.Ref === 'AWS::Partition' && Object.keys(object).length === 1) return 'aws';
  const join = object['Fn::Join'];
  if (Array.isArray(join) && Object.keys(object).length === 1) {
    const [separator, parts] = join as [string, unknown[]];
    const resolved = parts.map(withoutPseudoParameters);
    if (resolved.every((p) => typeof p === 'string')) return resolved.join(separator);
  }
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, withoutPseudoParameters(v)]));
}
