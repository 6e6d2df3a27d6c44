import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { OVERDUE_DELAYED_METRIC } from '../../lib/constructs/delaySweep.js';
import { QUEUES, type QueueSpec } from '../../lib/queues.js';
import {
  API_KEY_AUTHORIZER,
  DELAY_LANDING_FUNCTION,
  DELAY_SWEEP_FUNCTION,
  NON_ROUTE_FUNCTIONS,
  ROUTES,
  timeoutSecondsOf,
  type FunctionSpec,
} from '../../lib/routes.js';
import { readStackConfig } from '../../lib/stackConfig.js';
import { STREAMS, type StreamConsumerSpec } from '../../lib/streams.js';
import { TABLES, type TableSpec } from '../../lib/tables.js';
import { API_HANDLERS } from '../../local/handlers.js';
import { keySchemaOf } from '../../local/tables.js';
import { resourcesOf, synthStack, type Resources } from './synth.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const { template } = synthStack();
const t = template();
const functions = resourcesOf(t, 'AWS::Lambda::Function');
const tables = resourcesOf(t, 'AWS::DynamoDB::GlobalTable');

const handlerOf = (fn: { Properties: any }) => fn.Properties.Environment.Variables.SLUICE_HANDLER as string;

/**
 * Every function the stack creates by default, by spec: the routes, and every other function (retention,
 * the queues' consumers, the delay sweep, the stream consumers) but the API key authorizer (auth=apiKey only).
 */
const FUNCTION_SPECS = [...ROUTES, ...NON_ROUTE_FUNCTIONS.filter((spec) => spec.handler !== API_KEY_AUTHORIZER.handler)] as readonly FunctionSpec[];
const specByHandler = new Map<string, FunctionSpec>(FUNCTION_SPECS.map((spec) => [spec.handler, spec]));

/** Logical id of each table, found through the table-name variables the functions get. */
function tableLogicalIds(): Record<string, string> {
  const vars = Object.values(functions)[0]!.Properties.Environment.Variables;
  return Object.fromEntries(TABLES.map((spec) => [spec.id, vars[spec.envVar].Ref as string]));
}

/** Logical id of each queue (through the queue-URL variables) and of its dead-letter queue (through its redrive policy). */
function queueLogicalIds(): Record<string, { queue: string; deadLetters: string }> {
  const vars = Object.values(functions)[0]!.Properties.Environment.Variables;
  const queues = resourcesOf(t, 'AWS::SQS::Queue');
  return Object.fromEntries(
    QUEUES.map((spec) => {
      const queue = vars[spec.envVar].Ref as string;
      const deadLetters = queues[queue]!.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0] as string;
      return [spec.id, { queue, deadLetters }];
    }),
  );
}

const functionIdOf = (handler: string) => Object.entries(functions).find(([, fn]) => handlerOf(fn) === handler)![0];

/** Logical id of each stream consumer's on-failure queue, by "<table>StreamFailures", through its event source mapping. */
function streamFailureQueueIds(): Record<string, string> {
  const mappings = Object.values(resourcesOf(t, 'AWS::Lambda::EventSourceMapping'));
  return Object.fromEntries(
    (STREAMS as readonly StreamConsumerSpec[]).map((spec) => {
      const mapping = mappings.find((m) => m.Properties.FunctionName.Ref === functionIdOf(spec.handler) && m.Properties.StartingPosition)!;
      return [`${spec.table}StreamFailures`, mapping.Properties.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0] as string];
    }),
  );
}

/** The statements of every IAM policy attached to a role (by logical id). */
const statementsOf = (template: typeof t, roleId: string) =>
  Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);

/**
 * What a function's role may do, as "action resource" lines: tables as "table:<Id>" (an index as
 * "table:<Id>/index/<name>"), queues as "queue:<Id>" and "queue:<Id>DeadLetters", its own log group as
 * "own-log-group". Anything unnamed keeps its raw form, so an unexpected grant shows up in the diff.
 */
function grantsOf(handler: string): string[] {
  const fn = functions[functionIdOf(handler)]!;
  const names: Record<string, string> = { [fn.Properties.LoggingConfig.LogGroup.Ref]: 'own-log-group' };
  const streams: Record<string, string> = {};
  for (const [id, logical] of Object.entries(tableLogicalIds())) {
    names[logical] = `table:${id}`;
    streams[logical] = `stream:${id}`;
  }
  for (const [id, { queue, deadLetters }] of Object.entries(queueLogicalIds())) {
    names[queue] = `queue:${id}`;
    names[deadLetters] = `queue:${id}DeadLetters`;
  }
  for (const [name, logical] of Object.entries(streamFailureQueueIds())) names[logical] = `queue:${name}`;
  for (const logical of Object.keys(resourcesOf(t, 'AWS::StepFunctions::StateMachine'))) names[logical] = 'state-machine:CheckBack';
  const nameOf = (resource: any): string => {
    if (typeof resource?.Ref === 'string' && names[resource.Ref]?.startsWith('state-machine:')) return names[resource.Ref]!;
    if (resource?.['Fn::GetAtt']?.[1] === 'Arn') return names[resource['Fn::GetAtt'][0]] ?? JSON.stringify(resource);
    if (resource?.['Fn::GetAtt']?.[1] === 'StreamArn') return streams[resource['Fn::GetAtt'][0]] ?? JSON.stringify(resource);
    if (resource?.['Fn::Join']) {
      const [separator, parts] = resource['Fn::Join'] as [string, any[]];
      return parts.map((part) => (typeof part === 'string' ? part : nameOf(part))).join(separator);
    }
    return JSON.stringify(resource);
  };
  const lines: string[] = [];
  for (const statement of statementsOf(t, fn.Properties.Role['Fn::GetAtt'][0])) {
    expect(statement.Effect).toBe('Allow');
    expect(statement.Condition).toBeUndefined();
    for (const action of [statement.Action].flat()) {
      for (const resource of [statement.Resource].flat()) lines.push(`${action} ${nameOf(resource)}`);
    }
  }
  return lines.sort();
}

/** What an SQS event source grants its function on its queue (CDK's grantConsumeMessages). */
const CONSUME_ACTIONS = ['ChangeMessageVisibility', 'DeleteMessage', 'GetQueueAttributes', 'GetQueueUrl', 'ReceiveMessage'];
/** What a DynamoDB stream event source grants its function on the table's stream (TableV2's grantStreamRead). */
const STREAM_READ_ACTIONS = ['DescribeStream', 'GetRecords', 'GetShardIterator', 'ListStreams'];
/** What an SQS on-failure destination grants the function on that queue (CDK's grantSendMessages). */
const SEND_ACTIONS = ['GetQueueAttributes', 'GetQueueUrl', 'SendMessage'];

/** What a spec says its role may do, in the form of grantsOf. */
function expectedGrantsOf(spec: FunctionSpec): string[] {
  const lines = ['logs:CreateLogStream own-log-group', 'logs:PutLogEvents own-log-group'];
  for (const [table, actions] of Object.entries(spec.access)) {
    const indexes = (TABLES as readonly TableSpec[]).find((t) => t.id === table)!.indexes ?? [];
    for (const action of actions!) {
      lines.push(`dynamodb:${action} table:${table}`);
      // A Query on an index is authorized on the index's ARN.
      if (action === 'Query') for (const index of indexes) lines.push(`dynamodb:Query table:${table}/index/${index.name}`);
    }
  }
  for (const [queue, actions] of Object.entries(spec.queues ?? {})) {
    for (const action of actions!) lines.push(`sqs:${action} queue:${queue}`);
  }
  for (const action of spec.stateMachine ?? []) {
    const granted = action === 'StartExecution' ? ['StartExecution'] : ['SendTaskFailure', 'SendTaskHeartbeat', 'SendTaskSuccess'];
    for (const a of granted) lines.push(`states:${a} state-machine:CheckBack`);
  }
  for (const queue of QUEUES as readonly QueueSpec[]) {
    if (queue.consumer.handler === spec.handler) for (const action of CONSUME_ACTIONS) lines.push(`sqs:${action} queue:${queue.id}`);
  }
  for (const stream of STREAMS as readonly StreamConsumerSpec[]) {
    if (stream.handler !== spec.handler) continue;
    for (const action of STREAM_READ_ACTIONS) lines.push(`dynamodb:${action} stream:${stream.table}`);
    for (const action of SEND_ACTIONS) lines.push(`sqs:${action} queue:${stream.table}StreamFailures`);
  }
  return lines.sort();
}

describe('CDK stack', () => {
  it('has one function per route plus retention, the queue and stream consumers and the delay sweep, on Node.js 22 / arm64 with their memory and timeout', () => {
    const handlers = Object.values(functions).map(handlerOf).sort();
    expect(handlers).toEqual(FUNCTION_SPECS.map((s) => s.handler).sort());
    for (const fn of Object.values(functions)) {
      const spec = specByHandler.get(handlerOf(fn))!;
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.MemorySize).toBe(spec.memoryMB ?? 512);
      expect(fn.Properties.Timeout).toBe(timeoutSecondsOf(spec));
      expect(fn.Properties.Handler).toBe('index.handler');
    }
    const pull = Object.values(functions).find((fn) => handlerOf(fn) === 'pull')!;
    expect(pull.Properties.Timeout).toBeGreaterThan(20);
    expect(pull.Properties.Timeout).toBeLessThan(30);
  });

  it('routes and handlers are the same locally and in the stack', () => {
    expect(Object.keys(API_HANDLERS).sort()).toEqual(ROUTES.map((r) => r.handler).sort());
    const routes = resourcesOf(t, 'AWS::ApiGatewayV2::Route');
    expect(Object.values(routes).map((r) => r.Properties.RouteKey).sort()).toEqual(
      ROUTES.map((r) => `${r.method} ${r.path}`).sort(),
    );
  });

  it('requires IAM (SigV4) on every route by default', () => {
    const routes = Object.values(resourcesOf(t, 'AWS::ApiGatewayV2::Route'));
    expect(routes).toHaveLength(ROUTES.length);
    for (const route of routes) expect(route.Properties.AuthorizationType).toBe('AWS_IAM');
  });

  it('with auth=apiKey, every route goes through the API key authorizer', () => {
    const keyed = synthStack({ auth: 'apiKey' }).template();
    const routes = Object.values(resourcesOf(keyed, 'AWS::ApiGatewayV2::Route'));
    expect(routes).toHaveLength(ROUTES.length);
    for (const route of routes) {
      expect(route.Properties.AuthorizationType).toBe('CUSTOM');
      expect(route.Properties.AuthorizerId).toBeDefined();
    }
    const authorizers = Object.values(resourcesOf(keyed, 'AWS::ApiGatewayV2::Authorizer'));
    expect(authorizers).toHaveLength(1);
    expect(authorizers[0]!.Properties).toMatchObject({
      AuthorizerType: 'REQUEST',
      AuthorizerPayloadFormatVersion: '2.0',
      EnableSimpleResponses: true,
      IdentitySource: ['$request.header.x-api-key'],
    });
    const fns = Object.values(resourcesOf(keyed, 'AWS::Lambda::Function')).map(handlerOf);
    expect(fns).toContain(API_KEY_AUTHORIZER.handler);
  });

  it('grants each function exactly the DynamoDB and SQS actions of its spec, on exactly those tables and queues, nothing on "*"', () => {
    for (const fn of Object.values(functions)) {
      const handler = handlerOf(fn);
      // Besides its spec: writing to its own log group, and for a queue's consumer what its event source needs.
      expect(grantsOf(handler), handler).toEqual(expectedGrantsOf(specByHandler.get(handler)!));
      for (const line of grantsOf(handler)) expect(line, handler).not.toMatch(/^\S*\*\S* |"\*"/);
      expect(fn.Properties.Role['Fn::GetAtt']).toBeDefined();
    }
    // Roles carry no inline or managed policies besides the ones read above.
    for (const role of Object.values(resourcesOf(t, 'AWS::IAM::Role'))) {
      expect(role.Properties.Policies).toBeUndefined();
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('lets only produce, landDelayed and sweepDelayed send to the delay queue, and nobody receive from it but landDelayed', () => {
    const byAction = (action: string) =>
      Object.values(functions)
        .map(handlerOf)
        .filter((handler) => grantsOf(handler).includes(`sqs:${action} queue:Delay`))
        .sort();
    expect(byAction('SendMessage')).toEqual(['landDelayed', 'produce', 'sweepDelayed']);
    expect(byAction('ReceiveMessage')).toEqual(['landDelayed']);
    expect(byAction('DeleteMessage')).toEqual(['landDelayed']);
    // Nothing may touch the dead-letter queue (it is read by people, in the console).
    for (const handler of Object.values(functions).map(handlerOf)) {
      expect(grantsOf(handler).filter((line) => line.includes('DeadLetters')), handler).toEqual([]);
    }
  });

  it('authorizes Query on the indexes of the Delays table, by index name, for Query only', () => {
    const indexGrants = (handler: string) => grantsOf(handler).filter((line) => line.includes('/index/'));
    for (const handler of ['listDelayed', 'sweepDelayed']) {
      expect(indexGrants(handler), handler).toEqual([
        'dynamodb:Query table:Delays/index/byBucket',
        'dynamodb:Query table:Delays/index/byTopic',
      ]);
      expect(grantsOf(handler), handler).toContain('dynamodb:Query table:Delays');
    }
    for (const handler of Object.values(functions).map(handlerOf)) {
      for (const line of indexGrants(handler)) expect(line, handler).toMatch(/^dynamodb:Query /);
    }
    // A function with no Query on Delays gets no index either.
    expect(indexGrants('landDelayed')).toEqual([]);
    expect(indexGrants('produce')).toEqual([]);
  });

  it('gives every function every table name and queue URL', () => {
    const tableIds = tableLogicalIds();
    const queueIds = queueLogicalIds();
    for (const fn of Object.values(functions)) {
      const vars = fn.Properties.Environment.Variables;
      for (const spec of TABLES) expect(vars[spec.envVar], handlerOf(fn)).toEqual({ Ref: tableIds[spec.id] });
      for (const spec of QUEUES) expect(vars[spec.envVar], handlerOf(fn)).toEqual({ Ref: queueIds[spec.id]!.queue });
    }
    expect(Object.keys(queueIds)).toEqual(['Delay', 'Push', 'TransactionTimeout', 'CheckBack']);
    expect(functions[functionIdOf('produce')]!.Properties.Environment.Variables.DELAY_QUEUE_URL).toBeDefined();
  });

  it('declares the tables of lib/tables.ts: keys, indexes, on-demand, encrypted, PITR, TTL, stream', () => {
    const ids = tableLogicalIds();
    for (const spec of TABLES as readonly TableSpec[]) {
      const table = tables[ids[spec.id]!]!.Properties;
      const { keys } = keySchemaOf(spec);
      expect(table.KeySchema).toEqual(keys);
      // One definition per key attribute of the table and of its indexes, and no other.
      const keyAttributes = new Map<string, string>();
      for (const owner of [spec, ...(spec.indexes ?? [])]) {
        for (const key of [owner.partitionKey, owner.sortKey]) if (key) keyAttributes.set(key.name, key.type);
      }
      const byAttribute = (a: { AttributeName: string }, b: { AttributeName: string }) => a.AttributeName.localeCompare(b.AttributeName);
      expect([...table.AttributeDefinitions].sort(byAttribute)).toEqual(
        [...keyAttributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })).sort(byAttribute),
      );
      expect(table.GlobalSecondaryIndexes ?? []).toEqual(
        (spec.indexes ?? []).map((index) => ({
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
            ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' }] : []),
          ],
          Projection: { ProjectionType: index.keysOnly ? 'KEYS_ONLY' : 'ALL' },
        })),
      );
      expect(table.BillingMode).toBe('PAY_PER_REQUEST');
      expect(table.SSESpecification).toMatchObject({ SSEEnabled: true });
      expect(table.Replicas[0].PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table.Replicas[0].DeletionProtectionEnabled).toBe(true);
      if (spec.ttlAttribute) expect(table.TimeToLiveSpecification).toEqual({ AttributeName: spec.ttlAttribute, Enabled: true });
      if (spec.stream) expect(table.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
    }
    const retained = Object.values(t.toJSON().Resources as Resources & Record<string, any>)
      .filter((r: any) => r.Type === 'AWS::DynamoDB::GlobalTable')
      .map((r: any) => r.DeletionPolicy);
    expect(retained.every((p) => p === 'Retain')).toBe(true);
  });

  it('declares the Delays table with its two all-attribute indexes (byTopic tk/ds, byBucket bk/ds) and TTL on exp', () => {
    const delays = tables[tableLogicalIds().Delays!]!.Properties;
    expect(delays.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(delays.TimeToLiveSpecification).toEqual({ AttributeName: 'exp', Enabled: true });
    expect(delays.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'byTopic',
        KeySchema: [{ AttributeName: 'tk', KeyType: 'HASH' }, { AttributeName: 'ds', KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: 'byBucket',
        KeySchema: [{ AttributeName: 'bk', KeyType: 'HASH' }, { AttributeName: 'ds', KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    // GlobalTable replicas list the indexes too (on-demand: no capacity to set).
    expect(delays.Replicas[0].GlobalSecondaryIndexes).toEqual([{ IndexName: 'byTopic' }, { IndexName: 'byBucket' }]);
  });

  it('the tables the local runtime created have the key schemas of the template', async () => {
    const client = new DynamoDBClient({});
    const ids = tableLogicalIds();
    for (const spec of TABLES as readonly TableSpec[]) {
      const local = (await client.send(new DescribeTableCommand({ TableName: process.env[spec.envVar] }))).Table!;
      const deployed = tables[ids[spec.id]!]!.Properties;
      expect(local.KeySchema).toEqual(deployed.KeySchema);
      expect([...local.AttributeDefinitions!].sort((a, b) => a.AttributeName!.localeCompare(b.AttributeName!))).toEqual(
        [...deployed.AttributeDefinitions].sort((a: any, b: any) => a.AttributeName.localeCompare(b.AttributeName)),
      );
      const localIndexes = (local.GlobalSecondaryIndexes ?? []).map((index) => ({
        IndexName: index.IndexName,
        KeySchema: index.KeySchema,
        Projection: { ProjectionType: index.Projection!.ProjectionType },
      }));
      const byName = (a: { IndexName?: string }, b: { IndexName?: string }) => a.IndexName!.localeCompare(b.IndexName!);
      expect(localIndexes.sort(byName), spec.id).toEqual([...(deployed.GlobalSecondaryIndexes ?? [])].sort(byName));
    }
  });

  it('context options change removal, protection and recovery, and bad context is refused clearly', () => {
    const loose = synthStack({ removalPolicy: 'destroy', deletionProtection: false, pointInTimeRecovery: false }).template();
    const resources = Object.values(loose.toJSON().Resources as Record<string, any>).filter((r) => r.Type === 'AWS::DynamoDB::GlobalTable');
    for (const r of resources) {
      expect(r.DeletionPolicy).toBe('Delete');
      expect(r.Properties.Replicas[0].DeletionProtectionEnabled).toBe(false);
      expect(r.Properties.Replicas[0].PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: false });
    }
    const context: Record<string, unknown> = { auth: 'password', deletionProtection: 'false' };
    expect(() => readStackConfig((k) => context[k])).toThrow(/Bad CDK context: auth/);
    expect(readStackConfig((k) => ({ deletionProtection: 'false' })[k as 'deletionProtection']).deletionProtection).toBe(false);
  });

  it('alarms on errors and throttles of every function and on DynamoDB throttling, sent to SNS when an email is given', () => {
    const alarms = Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm'));
    const fnCount = Object.keys(functions).length;
    // + 1: pull's concurrency (the next test); + 1 per queue: its dead-letter queue; + 1: overdue delayed messages;
    // + 1 per stream consumer: its on-failure queue; + 1: the push dispatcher's stream lag; + 3: check-back
    // executions failed, timed out, aborted (test/cdk/transactions.test.ts).
    expect(alarms).toHaveLength(2 * fnCount + 2 * TABLES.length + 1 + QUEUES.length + 1 + STREAMS.length + 1 + 3);
    const metricNames = alarms.map((a) => a.Properties.MetricName);
    expect(metricNames.filter((m) => m === 'Errors')).toHaveLength(fnCount);
    expect(metricNames.filter((m) => m === 'Throttles')).toHaveLength(fnCount);
    expect(metricNames.filter((m) => m === 'WriteThrottleEvents')).toHaveLength(TABLES.length);
    // Every function, the queue consumer and the sweep included, has both.
    for (const metricName of ['Errors', 'Throttles']) {
      const watched = alarms
        .filter((a) => a.Properties.MetricName === metricName)
        .map((a) => handlerOf(functions[a.Properties.Dimensions[0].Value.Ref]!))
        .sort();
      expect(watched, metricName).toEqual(Object.values(functions).map(handlerOf).sort());
    }
    expect(alarms.every((a) => a.Properties.AlarmActions === undefined)).toBe(true);

    expect(Object.keys(resourcesOf(synthStack({ alarms: false }).template(), 'AWS::CloudWatch::Alarm'))).toEqual([]);

    const withEmail = synthStack({ alarmEmail: 'ops@example.com' }).template();
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const topicId = Object.keys(resourcesOf(withEmail, 'AWS::SNS::Topic'))[0]!;
    for (const alarm of Object.values(resourcesOf(withEmail, 'AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    }
  });

  it('reserves no Lambda concurrency by default (a reservation fails the deploy in low-limit accounts)', () => {
    for (const fn of Object.values(functions)) expect(fn.Properties.ReservedConcurrentExecutions, handlerOf(fn)).toBeUndefined();
  });

  it('reserves concurrency for pull and produce when the context asks, and for no other function', () => {
    // As `cdk deploy -c pullConcurrency=300 -c produceConcurrency=50` passes them: strings.
    const context: Record<string, string> = { pullConcurrency: '300', produceConcurrency: '50' };
    const reserved = synthStack(readStackConfig((k) => context[k])).template();
    const byHandler = Object.fromEntries(
      Object.values(resourcesOf(reserved, 'AWS::Lambda::Function')).map((fn) => [handlerOf(fn), fn.Properties.ReservedConcurrentExecutions]),
    );
    expect(byHandler.pull).toBe(300);
    expect(byHandler.produce).toBe(50);
    for (const [handler, value] of Object.entries(byHandler)) {
      if (handler !== 'pull' && handler !== 'produce') expect(value, handler).toBeUndefined();
    }
    const onlyPull = Object.values(resourcesOf(synthStack({ pullConcurrency: 120 }).template(), 'AWS::Lambda::Function'));
    expect(onlyPull.find((fn) => handlerOf(fn) === 'pull')!.Properties.ReservedConcurrentExecutions).toBe(120);
    expect(onlyPull.find((fn) => handlerOf(fn) === 'produce')!.Properties.ReservedConcurrentExecutions).toBeUndefined();

    const bad: Record<string, string>[] = [
      { pullConcurrency: '0' },
      { produceConcurrency: '-5' },
      { pullConcurrency: 'many' },
      { apiRateLimit: '0' },
      { pullBurstLimit: '2.5' },
    ];
    for (const raw of bad) expect(() => readStackConfig((k) => raw[k]), JSON.stringify(raw)).toThrow(/Bad CDK context/);
  });

  it('throttles the API stage (1000 req/s, burst 500) and the pull route tighter (20 req/s, burst 40) by default', () => {
    const [stageId, stage] = Object.entries(resourcesOf(t, 'AWS::ApiGatewayV2::Stage'))[0]!;
    expect(stage.Properties.StageName).toBe('$default');
    expect(stage.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 500 });
    const pullRoute = Object.entries(resourcesOf(t, 'AWS::ApiGatewayV2::Route')).find(([, r]) => r.Properties.RouteKey.endsWith('/pull'))!;
    // Keys as CloudFormation spells them (RouteSettings is untyped JSON: nothing capitalizes them for us).
    expect(stage.Properties.RouteSettings).toEqual({ [pullRoute[1].Properties.RouteKey]: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 } });
    // The route must exist before a stage's RouteSettings may name it.
    const dependsOn = (t.toJSON().Resources[stageId] as { DependsOn?: string[] }).DependsOn ?? [];
    expect(dependsOn).toContain(pullRoute[0]);

    const context: Record<string, string> = { apiRateLimit: '200', apiBurstLimit: '100', pullRateLimit: '2.5', pullBurstLimit: '5' };
    const custom = synthStack(readStackConfig((k) => context[k])).template();
    const customStage = Object.values(resourcesOf(custom, 'AWS::ApiGatewayV2::Stage'))[0]!;
    expect(customStage.Properties.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 200, ThrottlingBurstLimit: 100 });
    expect(Object.values(customStage.Properties.RouteSettings)).toEqual([{ ThrottlingRateLimit: 2.5, ThrottlingBurstLimit: 5 }]);
  });

  it("alarms at 80% of pull's concurrency cap (its throttle's bound, or its reservation if lower) and of produce's reservation", () => {
    const concurrencyAlarms = (template: typeof t) =>
      Object.fromEntries(
        Object.values(resourcesOf(template, 'AWS::CloudWatch::Alarm'))
          .filter((a) => a.Properties.MetricName === 'ConcurrentExecutions')
          .map((a) => {
            const ref = a.Properties.Dimensions[0].Value.Ref as string;
            const fn = resourcesOf(template, 'AWS::Lambda::Function')[ref]!;
            return [handlerOf(fn), a.Properties.Threshold as number];
          }),
      );
    // 40 + 20 s × 20/s = 440 pulls at most; 80% = 352.
    expect(concurrencyAlarms(t)).toEqual({ pull: 352 });
    expect(concurrencyAlarms(synthStack({ pullConcurrency: 300, produceConcurrency: 50 }).template())).toEqual({ pull: 240, produce: 40 });
    expect(concurrencyAlarms(synthStack({ pullConcurrency: 5000 }).template())).toEqual({ pull: 352 });
  });

  it('alarms when a dead-letter queue holds a message', () => {
    const queueIds = queueLogicalIds();
    const alarms = Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties.Namespace === 'AWS/SQS');
    // And one per stream consumer's on-failure queue (test/cdk/push.test.ts).
    expect(alarms).toHaveLength(QUEUES.length + STREAMS.length);
    for (const spec of QUEUES) {
      const alarm = alarms.find((a) => a.Properties.Dimensions[0].Value['Fn::GetAtt'][0] === queueIds[spec.id]!.deadLetters)!;
      expect(alarm.Properties).toMatchObject({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueIds[spec.id]!.deadLetters, 'QueueName'] } }],
        Statistic: 'Maximum',
        Period: 300,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
    }
  });

  it('alarms when the sweep reports overdue delayed messages in two 5-minute periods in a row', () => {
    const alarms = Object.values(resourcesOf(t, 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties.MetricName === 'OverdueDelayed');
    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.Properties).toEqual({
      AlarmDescription: expect.any(String),
      Namespace: 'Sluice',
      MetricName: 'OverdueDelayed',
      Dimensions: [{ Name: 'service', Value: 'sluice-delay' }],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 2,
      TreatMissingData: 'notBreaching',
    });
  });

  it('the overdue alarm watches the metric the sweep handler publishes (namespace and dimensions)', async () => {
    const { metrics } = await import('../../functions/handlers/sweepDelayed.js');
    metrics.addMetric(OVERDUE_DELAYED_METRIC.metricName, 'Count', 1);
    const emf = metrics.serializeMetrics() as unknown as Record<string, any>;
    metrics.clearMetrics();
    const directive = emf._aws.CloudWatchMetrics[0];
    expect(directive.Namespace).toBe(OVERDUE_DELAYED_METRIC.namespace);
    expect(directive.Metrics.map((m: { Name: string }) => m.Name)).toContain(OVERDUE_DELAYED_METRIC.metricName);
    // CloudWatch keys a metric by all its dimensions: the alarm must name exactly the published set.
    const published = Object.fromEntries((directive.Dimensions as string[][]).flat().map((name) => [name, emf[name]]));
    expect(published).toEqual(OVERDUE_DELAYED_METRIC.dimensionsMap);
  });

  it('creates each queue of lib/queues.ts encrypted, TLS only, with its own dead-letter queue', () => {
    const queueIds = queueLogicalIds();
    const queues = resourcesOf(t, 'AWS::SQS::Queue');
    // Each queue and its dead-letter queue, and each stream consumer's on-failure queue (test/cdk/push.test.ts).
    expect(Object.keys(queues)).toHaveLength(2 * QUEUES.length + STREAMS.length);
    const queuePolicies = Object.values(resourcesOf(t, 'AWS::SQS::QueuePolicy'));
    for (const spec of QUEUES as readonly QueueSpec[]) {
      const { queue, deadLetters } = queueIds[spec.id]!;
      expect(queues[queue]!.Properties).toEqual({
        VisibilityTimeout: spec.visibilityTimeoutSeconds,
        SqsManagedSseEnabled: true,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [deadLetters, 'Arn'] }, maxReceiveCount: spec.maxReceiveCount },
      });
      expect(queues[deadLetters]!.Properties).toEqual({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: spec.deadLetterRetentionDays * 86_400,
      });
      for (const id of [queue, deadLetters]) {
        const policy = queuePolicies.find((p) => p.Properties.Queues.some((q: any) => q.Ref === id))!;
        expect(policy.Properties.PolicyDocument.Statement, id).toEqual([
          {
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 'sqs:*',
            Resource: { 'Fn::GetAtt': [id, 'Arn'] },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ]);
      }
    }
    const delay = QUEUES.find((q) => q.id === 'Delay')!;
    expect(queues[queueIds.Delay!.queue]!.Properties.RedrivePolicy.maxReceiveCount).toBe(10);
    expect(delay.deadLetterRetentionDays).toBe(14);
  });

  it('feeds each queue to its consumer in batches with partial batch failures, its visibility timeout covering the consumer', () => {
    const queueIds = queueLogicalIds();
    const all = Object.values(resourcesOf(t, 'AWS::Lambda::EventSourceMapping'));
    // The others read DynamoDB streams (test/cdk/push.test.ts).
    expect(all).toHaveLength(QUEUES.length + STREAMS.length);
    const mappings = all.filter((m) => m.Properties.EventSourceArn['Fn::GetAtt'][1] === 'Arn');
    expect(mappings).toHaveLength(QUEUES.length);
    for (const spec of QUEUES as readonly QueueSpec[]) {
      const mapping = mappings.find((m) => m.Properties.EventSourceArn['Fn::GetAtt'][0] === queueIds[spec.id]!.queue)!;
      expect(mapping.Properties).toEqual({
        EventSourceArn: { 'Fn::GetAtt': [queueIds[spec.id]!.queue, 'Arn'] },
        FunctionName: { Ref: functionIdOf(spec.consumer.handler) },
        BatchSize: spec.consumer.batchSize,
        MaximumBatchingWindowInSeconds: spec.consumer.maxBatchingWindowSeconds,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      });
      const consumer = functions[functionIdOf(spec.consumer.handler)]!;
      expect(spec.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(consumer.Properties.Timeout);
    }
    const delay = mappings.find((m) => m.Properties.EventSourceArn['Fn::GetAtt'][0] === queueIds.Delay!.queue)!;
    expect(delay.Properties.BatchSize).toBe(10);
    expect(delay.Properties.FunctionName).toEqual({ Ref: functionIdOf(DELAY_LANDING_FUNCTION.handler) });
  });

  it('runs the delay sweep every minute from one EventBridge Scheduler schedule in the stack\'s schedule group', () => {
    const groups = Object.entries(resourcesOf(t, 'AWS::Scheduler::ScheduleGroup'));
    expect(groups).toHaveLength(1);
    const [, group] = groups[0]!;
    const schedules = Object.values(resourcesOf(t, 'AWS::Scheduler::Schedule'));
    expect(schedules).toHaveLength(1);
    const schedule = schedules[0]!.Properties;
    expect(schedule).toMatchObject({
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      GroupName: group.Properties.Name,
    });
    expect(schedule.Target.Arn).toEqual({ 'Fn::GetAtt': [functionIdOf(DELAY_SWEEP_FUNCTION.handler), 'Arn'] });
    expect(schedule.Target.RetryPolicy).toEqual({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 });
  });

  it("the Scheduler's role can only invoke the sweep function, and only Scheduler can assume it, for this account and group", () => {
    const schedule = Object.values(resourcesOf(t, 'AWS::Scheduler::Schedule'))[0]!.Properties;
    const roleId = schedule.Target.RoleArn['Fn::GetAtt'][0] as string;
    const role = resourcesOf(t, 'AWS::IAM::Role')[roleId]!.Properties;
    const groupId = Object.keys(resourcesOf(t, 'AWS::Scheduler::ScheduleGroup'))[0]!;
    expect(role.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' }, 'aws:SourceArn': { 'Fn::GetAtt': [groupId, 'Arn'] } },
        },
      },
    ]);
    expect(role.Policies).toBeUndefined();
    expect(role.ManagedPolicyArns).toBeUndefined();
    const sweepArn = { 'Fn::GetAtt': [functionIdOf(DELAY_SWEEP_FUNCTION.handler), 'Arn'] };
    // The function and its qualifiers (versions, aliases: it has none); no other function.
    expect(statementsOf(t, roleId)).toEqual([
      { Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: [sweepArn, { 'Fn::Join': ['', [sweepArn, ':*']] }] },
    ]);
    // No other role is assumable by Scheduler.
    const schedulerRoles = Object.entries(resourcesOf(t, 'AWS::IAM::Role')).filter(([, r]) =>
      JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('scheduler.amazonaws.com'),
    );
    expect(schedulerRoles.map(([id]) => id)).toEqual([roleId]);
  });

  it('grants iam:PassRole to nobody (no function creates schedules; CloudFormation passes the Scheduler role)', () => {
    for (const template of [t, synthStack({ auth: 'apiKey', alarmEmail: 'ops@example.com' }).template()]) {
      const documents = [
        ...Object.values(resourcesOf(template, 'AWS::IAM::Policy')).map((p) => p.Properties.PolicyDocument),
        ...Object.values(resourcesOf(template, 'AWS::IAM::Role')).flatMap((r) =>
          (r.Properties.Policies ?? []).map((p: any) => p.PolicyDocument),
        ),
      ];
      expect(documents.length).toBeGreaterThan(0);
      for (const document of documents) {
        for (const statement of document.Statement) {
          for (const action of [statement.Action].flat() as string[]) expect(action.toLowerCase()).not.toMatch(/^iam:|^\*$/);
        }
      }
      expect(Object.keys(resourcesOf(template, 'AWS::IAM::ManagedPolicy'))).toEqual([]);
    }
  });

  it('keeps logs for the configured time, logs API access, schedules retention, and outputs the URL and table names', () => {
    for (const group of Object.values(resourcesOf(t, 'AWS::Logs::LogGroup'))) expect(group.Properties.RetentionInDays).toBe(30);
    const stage = Object.values(resourcesOf(t, 'AWS::ApiGatewayV2::Stage'))[0]!;
    expect(stage.Properties.AccessLogSettings.DestinationArn).toBeDefined();
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    const outputs = Object.keys(t.toJSON().Outputs);
    expect(outputs).toContain('ApiUrl');
    for (const spec of TABLES) expect(outputs).toContain(`${spec.id}TableName`);
    for (const spec of QUEUES) expect(outputs).toEqual(expect.arrayContaining([`${spec.id}QueueUrl`, `${spec.id}DeadLetterQueueUrl`]));
  });

  it("passes cdk-nag's AWS Solutions checks (every acknowledgement carries a reason)", () => {
    for (const auth of ['iam', 'apiKey'] as const) {
      const { app } = synthStack({ auth, alarmEmail: 'ops@example.com' }, { nag: true });
      expect(() => app.synth()).not.toThrow();
    }
  });

  it('cdk-nag is live: an unencrypted, TLS-optional SNS topic fails synthesis', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    new Topic(new Stack(app, 'Bad'), 'Topic');
    expect(() => app.synth()).toThrow(/SNS Topic does not require publishers to use SSL/);
  });
});
