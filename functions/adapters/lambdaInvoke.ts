import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { instrument } from './instrument.js';

let lambdaClient: LambdaClient | undefined;

/**
 * One Lambda client per process; locally AWS_ENDPOINT_URL_LAMBDA points it at the local invoke endpoint.
 * No SDK retries: a retried invoke would deliver a push batch twice, or ask a check-back twice; the push
 * worker's backoff and the check-back state machine's next check retry instead.
 */
function lambda(): LambdaClient {
  if (lambdaClient) return lambdaClient;
  lambdaClient = new LambdaClient({ maxAttempts: 1 });
  instrument(lambdaClient.middlewareStack, { meter: false });
  return lambdaClient;
}

export type InvokeOutcome = { readonly functionError?: string; readonly result: unknown } | { readonly failure: string };

/** Invokes a user's function with a JSON payload; its result parsed as JSON (null when it is not JSON). */
export async function invokeJson(functionArn: string, payload: string, timeoutSeconds: number): Promise<InvokeOutcome> {
  try {
    const out = await lambda().send(new InvokeCommand({ FunctionName: functionArn, Payload: Buffer.from(payload) }), {
      abortSignal: AbortSignal.timeout(timeoutSeconds * 1000),
    });
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    let result: unknown = null;
    try {
      result = text ? JSON.parse(text) : null;
    } catch {
      result = null;
    }
    return { ...(out.FunctionError ? { functionError: out.FunctionError } : {}), result };
  } catch (error) {
    return { failure: `invoke failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}` };
  }
}
