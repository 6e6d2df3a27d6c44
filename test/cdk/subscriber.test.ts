/**
 * The Lambda subscriber construct (lib/subscriber.ts) and its example app (examples/subscriber-app/):
 * the app synthesizes (its function bundled too), grants invoke to the Sluice worker role it is given,
 * owns its group through a custom resource, and that custom resource's handler signs its calls as
 * SigV4 says (checked against the AWS SDK's own signer) and answers CloudFormation in every case.
 */
import { SignatureV4 } from '@smithy/signature-v4';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { subscriberApp } from '../../examples/subscriber-app/lib/subscriber-stack.js';
import { CREATE_FAILED_PREFIX, handler, outcomeOf, putGroup, signRequest } from '../../lib/constructs/subscriberGroup/index.mjs';
import { PutGroupBody } from '../../functions/http/schemas.js';
import { LambdaSubscriber, SluiceEndpoint, sluiceParameterNames, subscriberGroupSettings, type LambdaSubscriberProps } from '../../lib/subscriber.js';
import { resourcesOf } from './synth.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const WORKER_ROLE = 'arn:aws:iam::123456789012:role/Sluice-QueuespushWorkerRole-ABC';
const API_URL = 'https://abc123defg.execute-api.eu-west-1.amazonaws.com';
const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

function synthExample(context: Record<string, unknown>) {
  const outdir = mkdtempSync(join(tmpdir(), 'sluice-subscriber-'));
  outdirs.push(outdir);
  const app = new App({ outdir, context });
  const stack = subscriberApp(app);
  const assembly = app.synth();
  return { stack, template: Template.fromJSON(assembly.getStackByName(stack.stackName).template), assembly };
}

const statementsOf = (template: Template) =>
  Object.values(resourcesOf(template, 'AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as any[]);

describe('Lambda subscriber example app', () => {
  // A full synthesis, the function's esbuild bundle included, as `cdk synth` in examples/subscriber-app does.
  const given = synthExample({ sluiceApiUrl: API_URL, sluiceWorkerRoleArn: WORKER_ROLE });
  const t = given.template;
  const fnId = given.stack.getLogicalId(given.stack.fn.node.defaultChild as any);

  it('synthesizes, with the subscriber function bundled and the group handler staged', () => {
    const manifest = JSON.parse(readFileSync(join(given.assembly.directory, `${given.stack.stackName}.assets.json`), 'utf8'));
    const files = Object.values(manifest.files as Record<string, { source: { path: string } }>)
      .map((f) => f.source.path)
      .filter((path) => path.startsWith('asset.'))
      .map((path) => readFileSync(join(given.assembly.directory, path, 'index.mjs'), 'utf8'));
    expect(files).toHaveLength(2);
    // The subscriber's handler, bundled by esbuild, and the group custom resource's handler as written.
    expect(files.some((code) => code.includes('batchItemFailures') && !code.includes('signRequest'))).toBe(true);
    expect(files.some((code) => code.includes('export async function signRequest') || code.includes('export function signRequest'))).toBe(true);
    expect(Object.keys(resourcesOf(t, 'AWS::Lambda::Function'))).toHaveLength(2);
  });

  it('allows exactly the given worker role to invoke exactly the subscriber function', () => {
    const permissions = Object.values(resourcesOf(t, 'AWS::Lambda::Permission'));
    expect(permissions.map((p) => p.Properties)).toEqual([
      { Action: 'lambda:InvokeFunction', FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] }, Principal: WORKER_ROLE },
    ]);
    // Nobody gets lambda:InvokeFunction through an identity policy, on "*" or otherwise.
    for (const statement of statementsOf(t)) expect([statement.Action].flat().filter((a: string) => a.startsWith('lambda:'))).toEqual([]);
  });

  it('creates the group through a custom resource with the Lambda delivery settings, after the permission', () => {
    const groups = Object.entries(resourcesOf(t, 'Custom::SluiceGroup'));
    expect(groups).toHaveLength(1);
    const [groupId, group] = groups[0]!;
    const props = group.Properties;
    expect(props).toMatchObject({ ApiUrl: API_URL, Region: 'eu-west-1', Topic: 'orders', Group: 'billing', Mode: 'shared' });
    // Settings: one JSON string, the function ARN spliced in by CloudFormation.
    const parts = props.Settings['Fn::Join'][1] as any[];
    const settings = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'arn:aws:lambda:eu-west-1:123456789012:function:f')).join(''));
    expect(settings).toEqual({
      mode: 'shared',
      filter: { expression: 'body.total > 100' },
      delivery: { type: 'lambda', functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:f', batchSize: 10 },
    });
    expect(PutGroupBody.safeParse(settings).success).toBe(true);
    expect(parts.find((p) => typeof p !== 'string')).toEqual({ 'Fn::GetAtt': [fnId, 'Arn'] });
    const permissionId = Object.keys(resourcesOf(t, 'AWS::Lambda::Permission'))[0]!;
    expect((t.toJSON().Resources[groupId].DependsOn as string[])).toContain(permissionId);
  });

  it("the group function may only PUT groups of that Sluice API, in the API's region and the app's account", () => {
    const provider = Object.entries(resourcesOf(t, 'AWS::Lambda::Function')).find(([id]) => id !== fnId)![1];
    expect(provider.Properties).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs22.x', Timeout: 120 });
    const group = Object.values(resourcesOf(t, 'Custom::SluiceGroup'))[0]!;
    const providerId = Object.keys(resourcesOf(t, 'AWS::Lambda::Function')).find((id) => id !== fnId)!;
    expect(group.Properties.ServiceToken).toEqual({ 'Fn::GetAtt': [providerId, 'Arn'] });
    const roleId = provider.Properties.Role['Fn::GetAtt'][0];
    const policies = Object.values(resourcesOf(t, 'AWS::IAM::Policy')).filter((p) => p.Properties.Roles.some((r: any) => r.Ref === roleId));
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
    expect(statements.find((s: any) => s.Action === 'execute-api:Invoke')).toEqual({
      Effect: 'Allow',
      Action: 'execute-api:Invoke',
      Resource: {
        'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:eu-west-1:', { Ref: 'AWS::AccountId' }, ':abc123defg/*/PUT/v1/topics/*/groups/*']],
      },
    });
    expect(statements.map((s: any) => s.Action).flat().sort()).toEqual(['execute-api:Invoke', 'logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(resourcesOf(t, 'AWS::IAM::Role')[roleId]!.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it("by default reads the Sluice stack's SSM parameters at deploy time (the names the Sluice stack writes)", () => {
    const { template } = synthExample({ sluiceStack: 'MySluice' });
    const names = sluiceParameterNames('MySluice');
    const parameters = template.toJSON().Parameters as Record<string, any>;
    const byDefault = (name: string) => Object.entries(parameters).find(([, p]) => p.Default === name)!;
    const [roleParam, role] = byDefault(names.pushWorkerRoleArn);
    const [urlParam, url] = byDefault(names.apiUrl);
    expect(role.Type).toBe('AWS::SSM::Parameter::Value<String>');
    expect(url.Type).toBe('AWS::SSM::Parameter::Value<String>');
    const permission = Object.values(resourcesOf(template, 'AWS::Lambda::Permission'))[0]!;
    expect(permission.Properties.Principal).toEqual({ Ref: roleParam });
    const group = Object.values(resourcesOf(template, 'Custom::SluiceGroup'))[0]!;
    expect(group.Properties.ApiUrl).toEqual({ Ref: urlParam });
    // The region and API id are cut from the URL by CloudFormation.
    expect(JSON.stringify(group.Properties.Region)).toContain('Fn::Split');
  });
});

describe('LambdaSubscriber construct', () => {
  const newStack = () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Sub', { env: { account: '123456789012', region: 'eu-west-1' } });
    const role = new Role(stack, 'FnRole', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    const logGroup = new LogGroup(stack, 'FnLogs');
    logGroup.grantWrite(role);
    const fn = new LambdaFunction(stack, 'Fn', { code: Code.fromInline('export const handler = async () => ({});'), handler: 'index.handler', runtime: Runtime.NODEJS_22_X, role, logGroup });
    return { app, stack, fn };
  };
  const sluice = SluiceEndpoint.fromAttributes({ apiUrl: API_URL, pushWorkerRoleArn: WORKER_ROLE });

  it('refuses at synth time what the Sluice API would refuse', () => {
    const { stack, fn } = newStack();
    const base: LambdaSubscriberProps = { sluice, topic: 'orders', group: 'g', handler: fn };
    const cases: [Partial<LambdaSubscriberProps>, RegExp][] = [
      [{ group: 'bad name' }, /group must match/],
      [{ topic: '' }, /topic must match/],
      [{ batchSize: 0 }, /delivery.batchSize/],
      [{ batchSize: 101 }, /delivery.batchSize/],
      [{ timeoutSeconds: 31 }, /delivery.timeoutSeconds/],
      [{ filter: {} }, /give filter.tags or filter.expression/],
      [{ filter: { expression: 'body.total >' } }, /filter.expression/],
      [{ transform: '$$$(' }, /transform/],
      [{ maxDeliveries: 0 }, /maxDeliveries/],
    ];
    cases.forEach(([change, error], i) => {
      expect(() => new LambdaSubscriber(stack, `Bad${i}`, { ...base, ...change }), JSON.stringify(change)).toThrow(error);
    });
    expect(() => SluiceEndpoint.fromAttributes({ apiUrl: 'https://sluice.example.com', pushWorkerRoleArn: WORKER_ROLE }).apiLocation()).toThrow(/execute-api URL/);
  });

  it('shares one group function per stack, with one grant per Sluice API', () => {
    const { stack, fn } = newStack();
    new LambdaSubscriber(stack, 'A', { sluice, topic: 'orders', group: 'a', handler: fn, mode: 'ordered', batchSize: 1 });
    new LambdaSubscriber(stack, 'B', { sluice, topic: 'refunds', group: 'b', handler: fn, filter: { tags: { any: ['eu'] } }, transform: 'body.total' });
    const t = Template.fromStack(stack);
    expect(Object.keys(resourcesOf(t, 'AWS::Lambda::Function'))).toHaveLength(2);
    expect(Object.keys(resourcesOf(t, 'Custom::SluiceGroup'))).toHaveLength(2);
    expect(Object.keys(resourcesOf(t, 'AWS::Lambda::Permission'))).toHaveLength(2);
    expect(statementsOf(t).filter((s) => s.Action === 'execute-api:Invoke')).toHaveLength(1);
    const modes = Object.values(resourcesOf(t, 'Custom::SluiceGroup')).map((g) => g.Properties.Mode).sort();
    expect(modes).toEqual(['ordered', 'shared']);
  });

  it('builds the PUT body the API schema accepts', () => {
    const body = subscriberGroupSettings(
      { sluice, topic: 't', group: 'g', handler: undefined as any, mode: 'ordered', startFrom: 'earliest', maxDeliveries: 5, maxConcurrency: 2, timeoutSeconds: 20, transform: 'body' },
      'arn:aws:lambda:eu-west-1:123456789012:function:f',
    );
    expect(PutGroupBody.parse(body)).toMatchObject({
      mode: 'ordered',
      startFrom: 'earliest',
      maxDeliveries: 5,
      transform: 'body',
      delivery: { type: 'lambda', batchSize: 10, maxConcurrency: 2, timeoutSeconds: 20 },
    });
  });

  it("passes cdk-nag's AWS Solutions checks (a subscriber function with its own role and log group)", () => {
    for (const endpoint of [(stack: Stack) => SluiceEndpoint.fromStackName(stack, 'Sluice'), () => sluice]) {
      const { app, stack, fn } = newStack();
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      new LambdaSubscriber(stack, 'Sub', { sluice: endpoint(stack), topic: 'orders', group: 'g', handler: fn });
      Validations.of(fn).acknowledge({ id: 'AwsSolutions::AwsSolutions-L1', reason: 'test function' });
      expect(() => app.synth()).not.toThrow();
    }
  });
});

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (d: SourceData) =>
  typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** The AWS SDK's SHA-256 interface, on node:crypto. */
class Sha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(secret));
  }
  update(data: SourceData) {
    this.hash.update(bytesOf(data));
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
}

describe('group custom resource handler', () => {
  // Its log lines (what it did, for CloudWatch) are not test output.
  beforeEach(() => {
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    return () => vi.restoreAllMocks();
  });
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

  it('signs as the AWS SDK signs (SigV4, execute-api), with and without a session token', async () => {
    const now = new Date('2026-03-04T05:06:07Z');
    for (const creds of [credentials, { ...credentials, sessionToken: 'token/with+chars=' }]) {
      const url = 'https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1/topics/orders.v2/groups/billing_1';
      const body = JSON.stringify({ mode: 'shared', delivery: { type: 'lambda', functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:f' } });
      const ours = signRequest({ method: 'PUT', url, body, region: 'eu-west-1', credentials: creds, now });
      const sdk = new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials: creds, sha256: Sha256, applyChecksum: false });
      const u = new URL(url);
      const signed = await sdk.sign(
        { method: 'PUT', protocol: 'https:', hostname: u.hostname, path: u.pathname, query: {}, headers: { host: u.hostname, 'content-type': 'application/json' }, body },
        { signingDate: now },
      );
      expect(ours.authorization).toBe(signed.headers.authorization);
      expect(ours['x-amz-date']).toBe(signed.headers['x-amz-date']);
      expect(ours['x-amz-security-token']).toBe(signed.headers['x-amz-security-token']);
    }
  });

  /** A local server standing in for both the Sluice API and CloudFormation's response URL. */
  async function fakeAws(replies: number[]) {
    const calls: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];
    const answers: any[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url === '/cfn-response') {
          answers.push(JSON.parse(body));
          res.end();
          return;
        }
        calls.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const status = replies.shift() ?? 200;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status >= 400 ? JSON.stringify({ error: { code: status === 404 ? 'NotFound' : 'ValidationError', message: 'no good' } }) : '{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { base, calls, answers, close: () => new Promise((resolve) => server.close(resolve)) };
  }

  const eventFor = (base: string, type: 'Create' | 'Update' | 'Delete', physicalResourceId?: string) => ({
    RequestType: type,
    RequestId: 'req-1',
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Sub/x',
    LogicalResourceId: 'BillingGroup',
    ResponseURL: `${base}/cfn-response`,
    ...(physicalResourceId ? { PhysicalResourceId: physicalResourceId } : {}),
    ResourceProperties: {
      ApiUrl: base,
      Region: 'eu-west-1',
      Topic: 'orders',
      Group: 'billing',
      Mode: 'ordered',
      Settings: JSON.stringify({ mode: 'ordered', delivery: { type: 'lambda', functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:f', batchSize: 5 } }),
    },
  });
  const context = { getRemainingTimeInMillis: () => 40_000 };
  const withCredentials = async (fn: () => Promise<void>) => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_SESSION_TOKEN: 'tok' });
    try {
      await fn();
    } finally {
      for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  };

  it('Create: PUTs the settings, signed, and answers SUCCESS with an id naming the API host, topic and group', async () => {
    const aws = await fakeAws([201]);
    await withCredentials(() => handler(eventFor(aws.base, 'Create'), context));
    await aws.close();
    expect(aws.calls).toHaveLength(1);
    const call = aws.calls[0]!;
    expect(call.method).toBe('PUT');
    expect(call.url).toBe('/v1/topics/orders/groups/billing');
    expect(JSON.parse(call.body)).toEqual(JSON.parse(eventFor(aws.base, 'Create').ResourceProperties.Settings));
    expect(call.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/);
    expect(call.headers['x-amz-security-token']).toBe('tok');
    expect(aws.answers).toEqual([
      expect.objectContaining({ Status: 'SUCCESS', RequestId: 'req-1', LogicalResourceId: 'BillingGroup', PhysicalResourceId: `${new URL(aws.base).host}/orders/billing`, Data: {} }),
    ]);
  });

  it('Create refused by the API: FAILED with its error, and an id whose rollback Delete touches nothing', async () => {
    const aws = await fakeAws([400]);
    await withCredentials(() => handler(eventFor(aws.base, 'Create'), context));
    expect(aws.calls).toHaveLength(1); // a 4xx is not retried
    const [answer] = aws.answers;
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toMatch(/400: ValidationError: no good/);
    expect(answer.PhysicalResourceId).toBe(`${CREATE_FAILED_PREFIX}req-1`);
    await withCredentials(() => handler(eventFor(aws.base, 'Delete', answer.PhysicalResourceId), context));
    await aws.close();
    expect(aws.calls).toHaveLength(1);
    expect(aws.answers[1]).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: answer.PhysicalResourceId });
  });

  it('retries throttles and server errors, then succeeds', async () => {
    const aws = await fakeAws([503, 429, 200]);
    const status = await putGroup({ apiUrl: aws.base, region: 'eu-west-1', topic: 'orders', group: 'billing', settings: {}, deadline: Date.now() + 20_000, credentials });
    await aws.close();
    expect(status).toBe(200);
    expect(aws.calls).toHaveLength(3);
  });

  it('Delete: switches the group to pull delivery in its mode; succeeds even when the topic or the API is gone', async () => {
    const aws = await fakeAws([200, 404]);
    const id = `${new URL(aws.base).host}/orders/billing`;
    await withCredentials(() => handler(eventFor(aws.base, 'Delete', id), context));
    expect(JSON.parse(aws.calls[0]!.body)).toEqual({ mode: 'ordered', delivery: { type: 'pull' } });
    await withCredentials(() => handler(eventFor(aws.base, 'Delete', id), context));
    expect(aws.answers.map((a) => [a.Status, a.PhysicalResourceId])).toEqual([
      ['SUCCESS', id],
      ['SUCCESS', id],
    ]);
    await aws.close();
    // The API unreachable (connection refused) until the deadline: still SUCCESS, the group left as it is.
    const gone = await outcomeOf(eventFor(aws.base, 'Delete', id), { deadline: Date.now() + 1_500 });
    expect(gone).toMatchObject({ status: 'SUCCESS', physicalResourceId: id });
  });

  it('Update failing keeps the old physical id (CloudFormation rolls back with the old settings)', async () => {
    const outcome = await outcomeOf(eventFor('https://abc123defg.execute-api.eu-west-1.amazonaws.com', 'Update', 'old-id'), {
      put: async () => {
        throw new Error('boom');
      },
    });
    expect(outcome).toEqual({ status: 'FAILED', reason: expect.stringContaining('boom'), physicalResourceId: 'old-id' });
  });
});
