import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { DEFAULT_TIMEOUT_SECONDS } from '../lib/routes.js';

/**
 * The Lambda context a local invocation gets: the fields handlers and Powertools read. `timeoutMs` is the
 * function's timeout (lib/routes.ts), so getRemainingTimeInMillis() counts down from it as on Lambda.
 */
export function localContext(functionName: string, timeoutMs = DEFAULT_TIMEOUT_SECONDS * 1000): Context {
  const started = Date.now();
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
