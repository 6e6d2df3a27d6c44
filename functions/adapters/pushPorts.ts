import type { Config } from '../config.js';
import { lambdaVerdict } from '../domain/push/reply.js';
import type { PushPorts } from '../domain/push/worker.js';
import { postBatch } from './httpPush.js';
import { invokeJson } from './lambdaInvoke.js';

/** The push worker's ways out: signed HTTP POSTs and Lambda invocations. */
export function pushPorts(config: Config): PushPorts {
  return {
    http: (target, batchId, body) => postBatch(target, batchId, body, { allowPrivateAddresses: config.pushAllowPrivate }),
    lambda: async (functionArn, timeoutSeconds, payload) => {
      const outcome = await invokeJson(functionArn, payload, timeoutSeconds);
      if ('failure' in outcome) return { kind: 'failed', reason: outcome.failure };
      return lambdaVerdict(outcome.functionError, outcome.result);
    },
  };
}
