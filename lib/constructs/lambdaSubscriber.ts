import { Aws, CustomResource, Duration, Fn, Stack, Token, Validations } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, CfnPermission, Code, Function as LambdaFunction, Runtime, type IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { StringParameter } from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { checkExpression } from '../../functions/domain/groups/expression.js';
import { Name, PutGroupBody } from '../../functions/http/schemas.js';
import { sluiceParameterNames } from './sluiceExports.js';

/** Where a Sluice deployment is, for a Lambda subscriber in another CDK app (same account). */
export interface SluiceEndpointAttributes {
  /** The API's base URL, the Sluice stack's `ApiUrl` output: https://<api id>.execute-api.<region>.amazonaws.com. */
  readonly apiUrl: string;
  /** The Sluice stack's `PushWorkerRoleArn` output: the role that invokes subscribed functions. */
  readonly pushWorkerRoleArn: string;
}

export class SluiceEndpoint implements SluiceEndpointAttributes {
  /**
   * The Sluice stack named `stackName` in this account and region, read at deploy time from the SSM
   * parameters it publishes (/sluice/<stack name>/api-url and /push-worker-role-arn).
   */
  static fromStackName(scope: Construct, stackName = 'Sluice'): SluiceEndpoint {
    const names = sluiceParameterNames(stackName);
    return new SluiceEndpoint(
      StringParameter.valueForStringParameter(scope, names.apiUrl),
      StringParameter.valueForStringParameter(scope, names.pushWorkerRoleArn),
    );
  }

  /** A Sluice deployment given by its outputs (literal strings, or tokens such as another stack's attributes). */
  static fromAttributes(attributes: SluiceEndpointAttributes): SluiceEndpoint {
    return new SluiceEndpoint(attributes.apiUrl, attributes.pushWorkerRoleArn);
  }

  private constructor(
    readonly apiUrl: string,
    readonly pushWorkerRoleArn: string,
  ) {}

  /** The API id and region, from the execute-api host name (at synth time, or in CloudFormation for a token). */
  apiLocation(): { apiId: string; region: string } {
    if (!Token.isUnresolved(this.apiUrl)) {
      const match = /^https:\/\/([a-z0-9]+)\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?\/?$/.exec(this.apiUrl);
      if (!match) throw new Error(`Sluice apiUrl must be the execute-api URL the Sluice stack outputs as ApiUrl, not ${this.apiUrl}`);
      return { apiId: match[1]!, region: match[2]! };
    }
    // "https://<id>.execute-api.<region>.amazonaws.com": the host is the third "/"-separated part.
    const hostParts = Fn.split('.', Fn.select(2, Fn.split('/', this.apiUrl)));
    return { apiId: Fn.select(0, hostParts), region: Fn.select(2, hostParts) };
  }
}

/** A group filter (API.md "Expression filter and transform"): tags, a JSONata expression, or both. */
export interface SubscriberFilter {
  readonly tags?: { readonly any?: readonly string[]; readonly all?: readonly string[] };
  /** JSONata over {body, key, tags, headers, partition, offset, producedAt}; a message it is not truthy for is skipped. */
  readonly expression?: string;
}

export interface LambdaSubscriberProps {
  /** The Sluice deployment: `SluiceEndpoint.fromStackName(this, 'Sluice')` or `SluiceEndpoint.fromAttributes(...)`. */
  readonly sluice: SluiceEndpoint;
  /** An existing topic (the subscriber does not create it). */
  readonly topic: string;
  /** The consumer group the subscriber owns: created, updated with the stack, switched to pull when removed. */
  readonly group: string;
  /** Invoked with `{topic, group, messages}`; may return `{batchItemFailures: [{itemIdentifier: id}]}`. */
  readonly handler: IFunction;
  /** Messages per invocation, 1..100. Default 10. */
  readonly batchSize?: number;
  readonly filter?: SubscriberFilter;
  /** JSONata whose result replaces the body delivered. */
  readonly transform?: string;
  /** `ordered`: one batch per partition in flight, in order. Default `shared`. A group's mode cannot change later. */
  readonly mode?: 'shared' | 'ordered';
  /** Where a new group starts: `earliest`, `latest` (default), an ISO time or epoch milliseconds. */
  readonly startFrom?: string | number;
  /** Deliveries before a message goes to the group's dead letters. Default 16. */
  readonly maxDeliveries?: number;
  /** Invocations in flight for the group at once, 1..100. Default 8. */
  readonly maxConcurrency?: number;
  /**
   * Seconds the push worker waits for one invocation, 1..30 (default 30). Keep the function's own timeout
   * at or below it: an invocation the worker stopped waiting for is retried while it may still be running.
   */
  readonly timeoutSeconds?: number;
}

/** The settings a subscriber PUTs (functions/http/schemas.ts PutGroupBody, with Lambda delivery). */
export function subscriberGroupSettings(props: LambdaSubscriberProps, functionArn: string): Record<string, unknown> {
  return {
    mode: props.mode ?? 'shared',
    ...(props.startFrom !== undefined ? { startFrom: props.startFrom } : {}),
    ...(props.maxDeliveries !== undefined ? { maxDeliveries: props.maxDeliveries } : {}),
    ...(props.filter ? { filter: props.filter } : {}),
    ...(props.transform !== undefined ? { transform: props.transform } : {}),
    delivery: {
      type: 'lambda',
      functionArn,
      batchSize: props.batchSize ?? 10,
      ...(props.maxConcurrency !== undefined ? { maxConcurrency: props.maxConcurrency } : {}),
      ...(props.timeoutSeconds !== undefined ? { timeoutSeconds: props.timeoutSeconds } : {}),
    },
  };
}

/** Refuses at synth time what the Sluice API would refuse at deploy time (names, ranges, JSONata syntax). */
function validate(props: LambdaSubscriberProps): void {
  const problems: string[] = [];
  for (const [field, value] of [['topic', props.topic], ['group', props.group]] as const) {
    if (!Token.isUnresolved(value) && !Name.safeParse(value).success) problems.push(`${field} must match [A-Za-z0-9_.-]{1,128}`);
  }
  // The function's ARN is a token here; any well-formed ARN stands in for it.
  const body = subscriberGroupSettings(props, 'arn:aws:lambda:us-east-1:123456789012:function:placeholder');
  const parsed = PutGroupBody.safeParse(body);
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${i.path.join('.') || 'settings'}: ${i.message}`));
  for (const [field, text] of [['filter.expression', props.filter?.expression], ['transform', props.transform]] as const) {
    if (text === undefined || Token.isUnresolved(text)) continue;
    try {
      checkExpression(field, text);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  if (problems.length > 0) throw new Error(`LambdaSubscriber ${props.topic}/${props.group}: ${problems.join('; ')}`);
}

/** A CloudFormation expression as cdk-nag names it in a finding (its utils/flatten-cfn-reference.ts, v3). */
function flattenCfnReference(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
  const o = (node ?? {}) as Record<string, unknown>;
  if (Array.isArray(o['Fn::Join'])) {
    const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
    return items.map(flattenCfnReference).join(delimiter);
  }
  if (o['Fn::Sub'] !== undefined) return flattenCfnReference(o['Fn::Sub']);
  if (Array.isArray(o['Fn::GetAtt'])) {
    const [resource, attribute] = o['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenCfnReference(resource)}.${flattenCfnReference(attribute)}>`;
  }
  if (o['Fn::ImportValue'] !== undefined) return flattenCfnReference(o['Fn::ImportValue']);
  if (o.Ref !== undefined) return `<${flattenCfnReference(o.Ref)}>`;
  return JSON.stringify(node);
}

const HANDLER_DIR = fileURLToPath(new URL('./subscriberGroup', import.meta.url));
const PROVIDER_ID = 'SluiceSubscriberGroups';

/**
 * One function per stack that creates, updates and releases Sluice groups for every LambdaSubscriber of
 * the stack (CloudFormation custom resource, lib/constructs/subscriberGroup/index.mjs). Its role may only
 * write its own log group and call PUT on the group routes of the Sluice APIs its subscribers name.
 */
export class SubscriberGroupProvider extends Construct {
  static of(scope: Construct): SubscriberGroupProvider {
    const stack = Stack.of(scope);
    return (stack.node.tryFindChild(PROVIDER_ID) as SubscriberGroupProvider | undefined) ?? new SubscriberGroupProvider(stack, PROVIDER_ID);
  }

  readonly fn: LambdaFunction;
  readonly role: Role;
  private readonly allowedApis = new Set<string>();

  private constructor(scope: Construct, id: string) {
    super(scope, id);
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'Creates and updates Sluice consumer groups of Lambda subscribers (CloudFormation custom resource)',
    });
    const logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH });
    logGroup.grantWrite(this.role);
    this.fn = new LambdaFunction(this, 'Function', {
      description: 'Sluice Lambda subscribers: PUTs their consumer groups through the Sluice API (SigV4)',
      code: Code.fromAsset(HANDLER_DIR, { exclude: ['*.d.mts'] }),
      handler: 'index.handler',
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: 128,
      // Retries within this; the answer to CloudFormation is always sent before it ends.
      timeout: Duration.minutes(2),
      role: this.role,
      logGroup,
    });
    Validations.of(this.fn).acknowledge({
      id: 'AwsSolutions::AwsSolutions-L1',
      reason: 'Node.js 22, the runtime Sluice targets and tests; the handler uses only node built-ins.',
    });
  }

  /** Allows PUT on the group routes of the API at `apiId` in `region` (same account), once per API. */
  allowApi(apiId: string, region: string): void {
    const stack = Stack.of(this);
    const arn = `arn:${Aws.PARTITION}:execute-api:${region}:${Aws.ACCOUNT_ID}:${apiId}/*/PUT/v1/topics/*/groups/*`;
    const key = JSON.stringify(stack.resolve(arn));
    if (this.allowedApis.has(key)) return;
    this.allowedApis.add(key);
    this.role.addToPrincipalPolicy(new PolicyStatement({ actions: ['execute-api:Invoke'], resources: [arn] }));
    // For cdk-nag's AWS Solutions checks, when the app runs them (the finding names the resource as cdk-nag flattens it).
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions::AwsSolutions-IAM5[Resource::${flattenCfnReference(stack.resolve(arn))}]`,
      reason:
        'execute-api:Invoke on PUT /v1/topics/*/groups/* of this one Sluice API: when a subscriber is renamed, CloudFormation ' +
        'releases the old group after the policy has been updated for the new one, so the grant cannot name each group.',
    });
  }
}

/**
 * Subscribes a Lambda function to a Sluice topic: allows the Sluice push worker's role to invoke the
 * function (a resource-based permission on the function, for that role only), and creates the consumer
 * group with Lambda delivery through the Sluice API (a custom resource that PUTs the group, SigV4-signed;
 * the Sluice stack must use auth=iam). Updating the props updates the group; removing the subscriber
 * switches the group back to pull delivery (the API has no group delete) and removes the permission.
 *
 * ```ts
 * new LambdaSubscriber(this, 'Billing', {
 *   sluice: SluiceEndpoint.fromStackName(this, 'Sluice'),
 *   topic: 'orders', group: 'billing', handler: fn, batchSize: 10,
 *   filter: { expression: 'body.total > 100' },
 * });
 * ```
 */
export class LambdaSubscriber extends Construct {
  /** The resource-based permission that lets the push worker's role invoke the function. */
  readonly permission: CfnPermission;
  /** The custom resource that owns the group. */
  readonly group: CustomResource;

  constructor(scope: Construct, id: string, props: LambdaSubscriberProps) {
    super(scope, id);
    validate(props);
    // Resource-based, for exactly the worker's role: the worker has no lambda:InvokeFunction of its own.
    this.permission = new CfnPermission(this, 'InvokeBySluice', {
      action: 'lambda:InvokeFunction',
      functionName: props.handler.functionArn,
      principal: props.sluice.pushWorkerRoleArn,
    });
    const provider = SubscriberGroupProvider.of(this);
    const { apiId, region } = props.sluice.apiLocation();
    provider.allowApi(apiId, region);
    const settings = subscriberGroupSettings(props, props.handler.functionArn);
    this.group = new CustomResource(this, 'Group', {
      serviceToken: provider.fn.functionArn,
      resourceType: 'Custom::SluiceGroup',
      properties: {
        ApiUrl: props.sluice.apiUrl,
        Region: region,
        Topic: props.topic,
        Group: props.group,
        Mode: props.mode ?? 'shared',
        // One JSON string: CloudFormation would turn numbers in nested properties into strings.
        Settings: Stack.of(this).toJsonString(settings),
      },
    });
    // The permission exists before the group can invoke, and outlives it when the subscriber is removed.
    this.group.node.addDependency(this.permission);
  }
}
