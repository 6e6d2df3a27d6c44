import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { Config } from '../config.js';
import { lambdaVerdict } from '../domain/push/reply.js';
import type { PushPorts } from '../domain/push/worker.js';
import { postBatch } from './httpPush.js';
import { instrument } from './instrument.js';

let lambdaClient: LambdaClient | undefined;

/** One Lambda client per process; locally AWS_ENDPOINT_URL_LAMBDA points it at the local invoke endpoint. */
function lambda(): LambdaClient {
  if (lambdaClient) return lambdaClient;
  // No SDK retries: a retried invoke would deliver the batch twice; a failed batch is retried by the
  // push worker's own backoff instead.
  lambdaClient = new LambdaClient({ maxAttempts: 1 });
  instrument(lambdaClient.middlewareStack, { meter: false });
  return lambdaClient;
}

/** The push worker's ways out: signed HTTP POSTs and Lambda invocations. */
export function pushPorts(config: Config): PushPorts {
  return {
    http: (target, batchId, body) => postBatch(target, batchId, body, { allowPrivateAddresses: config.pushAllowPrivate }),
    lambda: async (functionArn, timeoutSeconds, payload) => {
      try {
        const out = await lambda().send(new InvokeCommand({ FunctionName: functionArn, Payload: Buffer.from(payload) }), {
          abortSignal: AbortSignal.timeout(timeoutSeconds * 1000),
        });
        const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
        let parsed: unknown = null;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {
          parsed = null;
        }
        return lambdaVerdict(out.FunctionError, parsed);
      } catch (error) {
        return { kind: 'failed', reason: `invoke failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}` };
      }
    },
  };
}
