import { afterAll, beforeAll } from 'vitest';
import { useLocalLambdaEndpoint } from '../../local/environment.js';
import { startLambdaService, type LambdaService, type LambdaServiceOptions } from '../../local/lambdaService.js';

/**
 * Runs the local Lambda Invoke endpoint (local/lambdaService.ts) in this worker for one test file and points
 * AWS_ENDPOINT_URL_LAMBDA at it until afterAll, as `npm start` does: code that invokes a subscriber's function
 * through @aws-sdk/client-lambda reaches the handlers registered here (`functions`, or `state.service.register`).
 */
export function useLambdaService(options: LambdaServiceOptions = {}) {
  const state: { service?: LambdaService } = {};
  let saved: string | undefined;
  beforeAll(async () => {
    state.service = await startLambdaService({ log: () => undefined, ...options });
    saved = process.env.AWS_ENDPOINT_URL_LAMBDA;
    useLocalLambdaEndpoint(state.service.url);
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_LAMBDA;
    else process.env.AWS_ENDPOINT_URL_LAMBDA = saved;
    await state.service?.stop();
  });
  return state;
}
