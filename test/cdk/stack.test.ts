import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { API_KEY_AUTHORIZER, RETENTION_FUNCTION, ROUTES, type FunctionSpec } from '../../lib/routes.js';
import { readStackConfig } from '../../lib/stackConfig.js';
import { TABLES, type TableSpec } from '../../lib/tables.js';
import { API_HANDLERS } from '../../local/handlers.js';
import { keySchemaOf } from '../../local/tables.js';
import { resourcesOf, synthStack, type Resources } from './synth.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const { template } = synthStack();
const t = template();
const functions = resourcesOf(t, 'AWS::Lambda::Function');
const tables = resourcesOf(t, 'AWS::DynamoDB::GlobalTable');
const policies = resourcesOf(t, 'AWS::IAM::Policy');

const handlerOf = (fn: { Properties: any }) => fn.Properties.Environment.Variables.SLUICE_HANDLER as string;

/** Logical id of each table, found through the table-name variables the functions get. */
function tableLogicalIds(): Record<string, string> {
  const vars = Object.values(functions)[0]!.Properties.Environment.Variables;
  return Object.fromEntries(TABLES.map((spec) => [spec.id, vars[spec.envVar].Ref as string]));
}

describe('CDK stack', () => {
  it('has one function per route plus the retention function, all Node.js 22 on arm64 with explicit memory and timeout', () => {
    const handlers = Object.values(functions).map(handlerOf).sort();
    expect(handlers).toEqual([...ROUTES.map((r) => r.handler), RETENTION_FUNCTION.handler].sort());
    const specs = new Map<string, FunctionSpec>([...ROUTES, RETENTION_FUNCTION].map((s) => [s.handler, s as FunctionSpec]));
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.MemorySize).toBe(specs.get(handlerOf(fn))!.memoryMB ?? 512);
      expect(fn.Properties.Timeout).toBeGreaterThan(0);
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

  it('grants each function exactly the DynamoDB actions of its spec, on exactly those tables, and nothing on "*"', () => {
    const ids = tableLogicalIds();
    const specByHandler = new Map<string, FunctionSpec>(
      [...ROUTES, RETENTION_FUNCTION].map((spec) => [spec.handler, spec as FunctionSpec]),
    );
    for (const fn of Object.values(functions)) {
      const spec = specByHandler.get(handlerOf(fn))!;
      const role = fn.Properties.Role['Fn::GetAtt'][0] as string;
      const statements = Object.values(policies)
        .filter((p) => p.Properties.Roles.some((r: any) => r.Ref === role))
        .flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);
      const granted: Record<string, string[]> = {};
      for (const statement of statements) {
        const actions: string[] = [statement.Action].flat();
        const resources: any[] = [statement.Resource].flat();
        for (const action of actions) expect(action).not.toMatch(/^\*$|:\*$/);
        for (const resource of resources) expect(resource).not.toBe('*');
        const dynamo = actions.filter((a) => a.startsWith('dynamodb:'));
        if (dynamo.length === 0) {
          // The only other grant: writing to the function's own log group.
          expect(actions.sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
          continue;
        }
        expect(resources).toHaveLength(1);
        const tableId = Object.entries(ids).find(([, logical]) => resources[0]['Fn::GetAtt']?.[0] === logical)![0];
        granted[tableId] = [...(granted[tableId] ?? []), ...dynamo].sort();
      }
      const expected = Object.fromEntries(
        Object.entries(spec.access).map(([table, actions]) => [table, actions!.map((a) => `dynamodb:${a}`).sort()]),
      );
      expect(granted, handlerOf(fn)).toEqual(expected);
    }
  });

  it('declares the tables of lib/tables.ts: keys, on-demand, encrypted, PITR, TTL, stream', () => {
    const ids = tableLogicalIds();
    for (const spec of TABLES as readonly TableSpec[]) {
      const table = tables[ids[spec.id]!]!.Properties;
      const { keys, attributes } = keySchemaOf(spec);
      expect(table.KeySchema).toEqual(keys);
      expect(table.AttributeDefinitions).toEqual(attributes);
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
    // + 1: pull's concurrency (the next test).
    expect(alarms).toHaveLength(2 * fnCount + 2 * TABLES.length + 1);
    const metricNames = alarms.map((a) => a.Properties.MetricName);
    expect(metricNames.filter((m) => m === 'Errors')).toHaveLength(fnCount);
    expect(metricNames.filter((m) => m === 'Throttles')).toHaveLength(fnCount);
    expect(metricNames.filter((m) => m === 'WriteThrottleEvents')).toHaveLength(TABLES.length);
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

  it('keeps logs for the configured time, logs API access, schedules retention, and outputs the URL and table names', () => {
    for (const group of Object.values(resourcesOf(t, 'AWS::Logs::LogGroup'))) expect(group.Properties.RetentionInDays).toBe(30);
    const stage = Object.values(resourcesOf(t, 'AWS::ApiGatewayV2::Stage'))[0]!;
    expect(stage.Properties.AccessLogSettings.DestinationArn).toBeDefined();
    t.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    const outputs = Object.keys(t.toJSON().Outputs);
    expect(outputs).toContain('ApiUrl');
    for (const spec of TABLES) expect(outputs).toContain(`${spec.id}TableName`);
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
