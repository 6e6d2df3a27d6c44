/**
 * The push delivery part of the stack (issue 9): the Push queue and its dead-letter queue, the push
 * worker behind it, the Log table's stream feeding the dispatcher with an on-failure queue, who may
 * touch the Secrets table and the Push queue, no lambda:InvokeFunction for the worker, the alarms, and
 * what the stack exports for Lambda subscribers in other apps.
 */
import { describe, expect, it } from 'vitest';
import { sluiceParameterNames } from '../../lib/constructs/sluiceExports.js';
import { STREAM_FAILURE_RETENTION_DAYS } from '../../lib/constructs/streams.js';
import { QUEUES } from '../../lib/queues.js';
import { PUSH_DISPATCH_FUNCTION, PUSH_WORKER_FUNCTION, timeoutSecondsOf } from '../../lib/routes.js';
import { PUSH_DISPATCH_ITERATOR_AGE_ALARM_MS } from '../../lib/sluice-stack.js';
import { STREAMS } from '../../lib/streams.js';
import { TABLES } from '../../lib/tables.js';
import { resourcesOf, synthStack } from './synth.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const t = synthStack().template();
const keyed = synthStack({ auth: 'apiKey', alarmEmail: 'ops@example.com' }).template();
const functions = resourcesOf(t, 'AWS::Lambda::Function');
const handlerOf = (fn: { Properties: any }) => fn.Properties.Environment.Variables.SLUICE_HANDLER as string;
const functionIdOf = (handler: string) => Object.entries(functions).find(([, fn]) => handlerOf(fn) === handler)![0];
const envOf = () => Object.values(functions)[0]!.Properties.Environment.Variables;

const tableId = (id: string) => envOf()[TABLES.find((s) => s.id === id)!.envVar].Ref as string;
const queueId = (id: string) => envOf()[QUEUES.find((s) => s.id === id)!.envVar].Ref as string;
const queues = resourcesOf(t, 'AWS::SQS::Queue');
const pushQueue = queueId('Push');
const pushDeadLetters = queues[pushQueue]!.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0] as string;
const mappings = Object.values(resourcesOf(t, 'AWS::Lambda::EventSourceMapping'));
const streamMapping = mappings.find((m) => m.Properties.FunctionName.Ref === functionIdOf('dispatchPush'))!;
const failureQueue = streamMapping.Properties.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0] as string;

/** Every statement of every IAM policy of a template, with the logical ids of the roles it is attached to. */
function statements(template: typeof t): { roles: string[]; statement: any }[] {
  return Object.values(resourcesOf(template, 'AWS::IAM::Policy')).flatMap((p) =>
    (p.Properties.PolicyDocument.Statement as any[]).map((statement) => ({
      roles: (p.Properties.Roles as any[]).map((r) => r.Ref as string),
      statement,
    })),
  );
}

const roleOf = (handler: string) => functions[functionIdOf(handler)]!.Properties.Role['Fn::GetAtt'][0] as string;
const handlerOfRole = (roleId: string) => handlerOf(Object.values(functions).find((fn) => fn.Properties.Role['Fn::GetAtt'][0] === roleId)!);

/** Handlers whose role may do `action` on the resource that `matches`. */
function whoMay(action: string, matches: (resource: any) => boolean): string[] {
  const who = new Set<string>();
  for (const { roles, statement } of statements(t)) {
    if (![statement.Action].flat().includes(action)) continue;
    if (![statement.Resource].flat().some(matches)) continue;
    for (const role of roles) who.add(handlerOfRole(role));
  }
  return [...who].sort();
}
const arnOf = (logicalId: string) => (r: any) => r?.['Fn::GetAtt']?.[0] === logicalId && r['Fn::GetAtt'][1] === 'Arn';

describe('push delivery in the stack', () => {
  it('creates the Push queue (SSE, TLS only, visibility above the worker timeout) and its dead-letter queue after 10 receives', () => {
    const spec = QUEUES.find((q) => q.id === 'Push')!;
    expect(queues[pushQueue]!.Properties).toEqual({
      VisibilityTimeout: 60,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [pushDeadLetters, 'Arn'] }, maxReceiveCount: 10 },
    });
    expect(queues[pushDeadLetters]!.Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86_400 });
    expect(spec.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(timeoutSecondsOf(PUSH_WORKER_FUNCTION));
    for (const id of [pushQueue, pushDeadLetters]) {
      const policy = Object.values(resourcesOf(t, 'AWS::SQS::QueuePolicy')).find((p) => p.Properties.Queues.some((q: any) => q.Ref === id))!;
      expect(policy.Properties.PolicyDocument.Statement).toEqual([
        expect.objectContaining({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      ]);
    }
  });

  it('feeds the Push queue to the push worker one message at a time, with partial batch responses', () => {
    const worker = mappings.filter((m) => m.Properties.FunctionName.Ref === functionIdOf('pushWorker'));
    expect(worker).toHaveLength(1);
    expect(worker[0]!.Properties).toEqual({
      EventSourceArn: { 'Fn::GetAtt': [pushQueue, 'Arn'] },
      FunctionName: { Ref: functionIdOf('pushWorker') },
      BatchSize: 1,
      MaximumBatchingWindowInSeconds: 0,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const fn = functions[functionIdOf('pushWorker')]!.Properties;
    expect(fn.Timeout).toBe(45);
    expect(fn.Runtime).toBe('nodejs22.x');
  });

  it("feeds the Log table's stream to the dispatcher: LATEST, batches of 100, 10 retries, bisect, partial failures, an on-failure queue", () => {
    const spec = STREAMS.find((s) => s.handler === 'dispatchPush')!;
    expect(spec.table).toBe('Log');
    expect(resourcesOf(t, 'AWS::DynamoDB::GlobalTable')[tableId('Log')]!.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
    expect(streamMapping.Properties).toEqual({
      EventSourceArn: { 'Fn::GetAtt': [tableId('Log'), 'StreamArn'] },
      FunctionName: { Ref: functionIdOf('dispatchPush') },
      StartingPosition: 'LATEST',
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 0,
      MaximumRetryAttempts: 10,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [failureQueue, 'Arn'] } } },
    });
    // No other function reads a stream.
    expect(mappings.filter((m) => m.Properties.StartingPosition)).toHaveLength(STREAMS.length);
    expect(functions[functionIdOf('dispatchPush')]!.Properties.Timeout).toBe(timeoutSecondsOf(PUSH_DISPATCH_FUNCTION));
  });

  it("the stream's on-failure queue is encrypted, TLS only, keeps 14 days, alarms on its first message, and is an output", () => {
    expect(queues[failureQueue]!.Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: STREAM_FAILURE_RETENTION_DAYS * 86_400 });
    const policy = Object.values(resourcesOf(t, 'AWS::SQS::QueuePolicy')).find((p) => p.Properties.Queues.some((q: any) => q.Ref === failureQueue))!;
    expect(policy.Properties.PolicyDocument.Statement).toEqual([
      {
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'sqs:*',
        Resource: { 'Fn::GetAtt': [failureQueue, 'Arn'] },
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ]);
    const alarms = Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm')).filter(
      (a) => a.Properties.Namespace === 'AWS/SQS' && a.Properties.Dimensions[0].Value['Fn::GetAtt'][0] === failureQueue,
    );
    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.Properties).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Statistic: 'Maximum', Threshold: 1 });
    expect(t.toJSON().Outputs.LogStreamFailureQueueUrl.Value).toEqual({ Ref: failureQueue });
    // Only the dispatcher may write to it (its event source's destination); nobody reads it.
    expect(whoMay('sqs:SendMessage', arnOf(failureQueue))).toEqual(['dispatchPush']);
    expect(whoMay('sqs:ReceiveMessage', arnOf(failureQueue))).toEqual([]);
  });

  it('only putGroup, the push worker and the transaction check-back signers touch the Secrets table', () => {
    const secrets = tableId('Secrets');
    const onSecrets = (r: any) => JSON.stringify(r).includes(`"${secrets}"`);
    const actions: Record<string, string[]> = {};
    for (const { roles, statement } of statements(t)) {
      if (![statement.Resource].flat().some(onSecrets)) continue;
      for (const role of roles) (actions[handlerOfRole(role)] ??= []).push(...[statement.Action].flat());
    }
    expect(Object.fromEntries(Object.entries(actions).map(([h, a]) => [h, a.sort()]))).toEqual({
      putGroup: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      pushWorker: ['dynamodb:GetItem'],
      // The check-back signing secret: made by the first prepare with a check-back URL, read when signing checks.
      prepareTransaction: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      checkBackWorker: ['dynamodb:GetItem', 'dynamodb:PutItem'],
    });
  });

  it('only the dispatcher and the worker send to the Push queue, only the worker receives from it, nobody touches its dead letters', () => {
    expect(whoMay('sqs:SendMessage', arnOf(pushQueue))).toEqual(['dispatchPush', 'pushWorker']);
    for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']) {
      expect(whoMay(action, arnOf(pushQueue)), action).toEqual(['pushWorker']);
    }
    const onDeadLetters = statements(t).filter(({ statement }) => [statement.Resource].flat().some(arnOf(pushDeadLetters)));
    expect(onDeadLetters).toEqual([]);
  });

  it('only the dispatcher reads the Log stream, and only on that stream', () => {
    const onStream = (r: any) => r?.['Fn::GetAtt']?.[1] === 'StreamArn';
    for (const action of ['dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:DescribeStream', 'dynamodb:ListStreams']) {
      expect(whoMay(action, onStream), action).toEqual(['dispatchPush']);
      expect(whoMay(action, (r) => r === '*'), action).toEqual([]);
    }
    const streamStatements = statements(t).filter(({ statement }) => [statement.Resource].flat().some(onStream));
    for (const { statement } of streamStatements) {
      expect([statement.Resource].flat()).toEqual([{ 'Fn::GetAtt': [tableId('Log'), 'StreamArn'] }]);
    }
  });

  it('grants lambda:InvokeFunction to no function role, and on "*" to nobody (subscribers allow the worker role themselves)', () => {
    for (const template of [t, keyed]) {
      const invokes = statements(template).filter(({ statement }) =>
        [statement.Action].flat().some((a: string) => /^lambda:(InvokeFunction|\*)$|^\*$/i.test(a)),
      );
      // The Scheduler's role on the sweep function, and nothing else.
      expect(invokes).toHaveLength(1);
      expect(invokes[0]!.statement.Resource).not.toContain('*');
      for (const resource of [invokes[0]!.statement.Resource].flat()) expect(JSON.stringify(resource)).toContain('sweepDelayed');
      const roleIds = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).map((fn) => fn.Properties.Role['Fn::GetAtt'][0]);
      for (const { roles, statement } of statements(template)) {
        const actions = [statement.Action].flat() as string[];
        if (roles.some((r) => roleIds.includes(r))) expect(actions.filter((a) => a.startsWith('lambda:'))).toEqual([]);
      }
    }
    const worker = statements(t).filter(({ roles }) => roles.includes(roleOf('pushWorker')));
    expect(worker.flatMap(({ statement }) => [statement.Action].flat()).filter((a: string) => !/^(dynamodb|sqs|logs):/.test(a))).toEqual([]);
  });

  it('exports the API URL and the push worker role ARN as outputs and as SSM parameters named after the stack', () => {
    const outputs = t.toJSON().Outputs;
    const workerRole = { 'Fn::GetAtt': [roleOf('pushWorker'), 'Arn'] };
    expect(outputs.PushWorkerRoleArn.Value).toEqual(workerRole);
    const parameters = Object.values(resourcesOf(t, 'AWS::SSM::Parameter')).map((p) => p.Properties);
    const names = sluiceParameterNames('Test');
    expect(parameters).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Name: names.pushWorkerRoleArn, Type: 'String', Value: workerRole }),
        expect.objectContaining({ Name: names.apiUrl, Type: 'String', Value: outputs.ApiUrl.Value }),
      ]),
    );
    expect(parameters).toHaveLength(2);
  });

  it('alarms on errors and throttles of the dispatcher and the worker, and on the dispatcher falling behind its stream', () => {
    const alarms = Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm'));
    for (const handler of ['dispatchPush', 'pushWorker']) {
      const watched = alarms.filter((a) => a.Properties.Dimensions?.[0]?.Value?.Ref === functionIdOf(handler)).map((a) => a.Properties.MetricName);
      expect(watched.sort(), handler).toEqual(handler === 'dispatchPush' ? ['Errors', 'IteratorAge', 'Throttles'] : ['Errors', 'Throttles']);
    }
    const lag = alarms.find((a) => a.Properties.MetricName === 'IteratorAge')!;
    expect(lag.Properties).toMatchObject({
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionIdOf('dispatchPush') } }],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: PUSH_DISPATCH_ITERATOR_AGE_ALARM_MS,
      EvaluationPeriods: 2,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    // The Push dead-letter queue has its alarm too (the loop over lib/queues.ts).
    expect(alarms.filter((a) => a.Properties.Dimensions?.[0]?.Value?.['Fn::GetAtt']?.[0] === pushDeadLetters)).toHaveLength(1);
  });
});
