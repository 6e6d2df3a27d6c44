import { tableEnvironment } from './tables.js';
import { queueEnvironment, type QueueUrls } from './queues.js';

/**
 * The AWS services Sluice's code calls through the SDK, each with the SDK's per-service endpoint variable
 * (AWS_ENDPOINT_URL_<SERVICE>, which wins over AWS_ENDPOINT_URL for that service's clients:
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). Lambda is not among them: locally
 * its endpoint is our own Invoke server (useLocalLambdaEndpoint), never an emulator.
 */
export const AWS_SERVICES = ['dynamodb', 'dynamodbStreams', 'sqs', 'sfn', 'scheduler'] as const;
export type AwsService = (typeof AWS_SERVICES)[number];

export const ENDPOINT_VARIABLES: Readonly<Record<AwsService | 'lambda', string>> = {
  dynamodb: 'AWS_ENDPOINT_URL_DYNAMODB',
  dynamodbStreams: 'AWS_ENDPOINT_URL_DYNAMODB_STREAMS',
  sqs: 'AWS_ENDPOINT_URL_SQS',
  sfn: 'AWS_ENDPOINT_URL_SFN',
  scheduler: 'AWS_ENDPOINT_URL_SCHEDULER',
  lambda: 'AWS_ENDPOINT_URL_LAMBDA',
};

/** Human names, for logs. */
export const SERVICE_NAMES: Readonly<Record<AwsService, string>> = {
  dynamodb: 'DynamoDB',
  dynamodbStreams: 'DynamoDB Streams',
  sqs: 'SQS',
  sfn: 'Step Functions',
  scheduler: 'Scheduler',
};

/**
 * Which endpoint serves each service: `default` is what AWS_ENDPOINT_URL names (every service without an
 * endpoint of its own, e.g. STS), and one entry per service.
 */
export type AwsEndpoints = { readonly default: string } & Readonly<Record<AwsService, string>>;

/**
 * The emulators a local run uses, chosen by SLUICE_EMULATOR:
 * - `moto` (the default): moto serves every service;
 * - `localstack`: LocalStack (host mode, local/localstack.ts) serves SQS, Step Functions and Scheduler, and moto
 *   DynamoDB and DynamoDB Streams (LocalStack's DynamoDB wraps DynamoDB Local, whose licence is not open
 *   source; this project never starts it).
 * Endpoints the environment names (AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL) win over both: a service with
 * one is served there and nothing is started for it (docs/testing.md, "Emulator targets").
 */
export type EmulatorTarget = 'moto' | 'localstack';
export type Emulator = 'moto' | 'localstack';

export const EMULATOR_TARGETS: Readonly<Record<EmulatorTarget, Readonly<Record<AwsService, Emulator>>>> = {
  moto: { dynamodb: 'moto', dynamodbStreams: 'moto', sqs: 'moto', sfn: 'moto', scheduler: 'moto' },
  localstack: { dynamodb: 'moto', dynamodbStreams: 'moto', sqs: 'localstack', sfn: 'localstack', scheduler: 'localstack' },
};

export function emulatorTargetFromEnvironment(env: NodeJS.ProcessEnv = process.env): EmulatorTarget {
  const raw = (env.SLUICE_EMULATOR ?? '').trim().toLowerCase();
  if (raw === '' || raw === 'moto') return 'moto';
  if (raw === 'localstack') return 'localstack';
  throw new Error(`SLUICE_EMULATOR must be 'moto' or 'localstack', not '${env.SLUICE_EMULATOR}'.`);
}

const nonEmpty = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value.trim());

/**
 * The endpoint the SDK uses for a service in this process: its per-service variable, else AWS_ENDPOINT_URL;
 * undefined means AWS itself. E.g. `awsEndpoint('sfn')` tells which emulator a state machine must be created on.
 */
export function awsEndpoint(service: AwsService | 'lambda', env: NodeJS.ProcessEnv = process.env): string | undefined {
  return nonEmpty(env[ENDPOINT_VARIABLES[service]]) ?? nonEmpty(env.AWS_ENDPOINT_URL);
}

/**
 * The endpoints the environment names, per service (an empty variable counts as unset): the per-service
 * variable, else `fallback` (an endpoint given in code), else AWS_ENDPOINT_URL. Services missing here are the
 * ones a local run must serve itself.
 */
export function givenEndpoints(env: NodeJS.ProcessEnv = process.env, fallback?: string): Partial<Record<AwsService, string>> {
  const base = nonEmpty(fallback) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  const out: Partial<Record<AwsService, string>> = {};
  for (const service of AWS_SERVICES) {
    const endpoint = nonEmpty(env[ENDPOINT_VARIABLES[service]]) ?? base;
    if (endpoint) out[service] = endpoint;
  }
  return out;
}

/** Every service at one endpoint. */
export const sameEndpoint = (endpoint: string): AwsEndpoints =>
  ({ default: endpoint, ...Object.fromEntries(AWS_SERVICES.map((s) => [s, endpoint])) }) as AwsEndpoints;

/**
 * Points the AWS SDK and the handlers at local endpoints, through the SDK's own variables alone, so the code
 * that runs on Lambda needs no local switch: AWS_ENDPOINT_URL is `default`, and a service served elsewhere gets
 * its AWS_ENDPOINT_URL_<SERVICE> (one served at `default` gets none, so the environment stays as plain as
 * with one emulator). A string sets AWS_ENDPOINT_URL alone and leaves any per-service variable as it is.
 * Also dummy credentials (the emulators accept any) and the table-name variables the CDK stack would set.
 */
export function useLocalAws(endpoints: string | AwsEndpoints, tablePrefix: string) {
  if (typeof endpoints === 'string') process.env.AWS_ENDPOINT_URL = endpoints;
  else {
    process.env.AWS_ENDPOINT_URL = endpoints.default;
    for (const service of AWS_SERVICES) {
      if (endpoints[service] === endpoints.default) delete process.env[ENDPOINT_VARIABLES[service]];
      else process.env[ENDPOINT_VARIABLES[service]] = endpoints[service];
    }
  }
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // API.md: the local runtime pushes to private and loopback endpoints; the deployed stack never does.
  process.env.SLUICE_PUSH_ALLOW_PRIVATE ??= 'true';
  Object.assign(process.env, tableEnvironment(tablePrefix));
}

/** Hands the handlers the URLs of the queues createQueues made (the variables the CDK stack would set, e.g. DELAY_QUEUE_URL). */
export function useLocalQueues(urls: QueueUrls) {
  Object.assign(process.env, queueEnvironment(urls));
}

/**
 * Points the AWS SDK's Lambda client at the local Invoke endpoint (local/lambdaService.ts): the SDK's per-service
 * endpoint variable wins over AWS_ENDPOINT_URL, so code invoking a user's function needs no local switch.
 */
export function useLocalLambdaEndpoint(url: string) {
  process.env[ENDPOINT_VARIABLES.lambda] = url;
}
