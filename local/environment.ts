import { tableEnvironment } from './tables.js';
import { queueEnvironment, type QueueUrls } from './queues.js';

/**
 * Points the AWS SDK and the handlers at a local emulator: the SDK's own AWS_ENDPOINT_URL, dummy
 * credentials (moto accepts any), and the table-name variables the CDK stack would set.
 */
export function useLocalAws(endpoint: string, tablePrefix: string) {
  process.env.AWS_ENDPOINT_URL = endpoint;
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
  process.env.AWS_ENDPOINT_URL_LAMBDA = url;
}
