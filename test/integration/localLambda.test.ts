/**
 * The local Lambda Invoke endpoint (local/lambdaService.ts): a real LambdaClient, pointed at it only through
 * AWS_ENDPOINT_URL_LAMBDA, invokes users' modules registered by a functions file and handlers of the test, and
 * gets what Lambda answers: the result, a function error (X-Amz-Function-Error: Unhandled), a timeout, the 6 MB
 * limits, and ResourceNotFoundException for an unknown function.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import {
  InvalidRequestContentException,
  InvokeCommand,
  LambdaClient,
  RequestTooLargeException,
  ResourceNotFoundException,
  type InvokeCommandInput,
} from '@aws-sdk/client-lambda';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { forgetConfig } from '../../functions/config.js';
import { functionsFromEnvironment, parseFunctionName, readFunctionsFile } from '../../local/lambdaService.js';
import { startLocalRuntime } from '../../local/runtime.js';
import { useLambdaService } from '../support/lambda.js';
import { sleep, uniqueName } from '../support/api.js';

const ARN = 'arn:aws:lambda:us-east-1:123456789012:function:my-subscriber';
const FIXTURE = resolve(import.meta.dirname, '../support/lambdaFixture.ts');

// A functions file in a directory of its own, naming the module relative to itself, as a user's would.
const dir = mkdtempSync(join(tmpdir(), 'sluice-functions-'));
const file = join(dir, 'sluice.functions.json');
writeFileSync(
  file,
  JSON.stringify({
    [ARN]: `${relative(dir, FIXTURE)}#handler`,
    'broken-subscriber': { handler: `${relative(dir, FIXTURE)}#broken`, timeoutSeconds: 5 },
    'no-such-export': `${relative(dir, FIXTURE)}#notAFunction`,
    'no-such-module': './nowhere.mjs',
  }),
);
const registered = functionsFromEnvironment({ SLUICE_LOCAL_FUNCTIONS: file }, '/');

const lambda = useLambdaService({ functions: registered.functions, baseDir: registered.baseDir });

let client: LambdaClient | undefined;
/** The SDK client as the push worker builds it: no endpoint of its own, so AWS_ENDPOINT_URL_LAMBDA decides. */
const sdk = () => (client ??= new LambdaClient({ maxAttempts: 1 }));
afterAll(() => client?.destroy());

async function invoke(input: InvokeCommandInput) {
  const out = await sdk().send(new InvokeCommand(input));
  const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
  return { ...out, payload: text ? JSON.parse(text) : undefined };
}

describe('local Lambda endpoint', () => {
  it('reads the functions file: names relative to it, specs as strings or objects', () => {
    expect(registered.file).toBe(file);
    expect(registered.baseDir).toBe(dirname(file));
    expect(Object.keys(readFunctionsFile(file))).toEqual([ARN, 'broken-subscriber', 'no-such-export', 'no-such-module']);
    expect(lambda.service!.functions()).toContainEqual({ key: ARN, arn: ARN, source: `${FIXTURE}#handler`, timeoutSeconds: 3 });
    expect(() => functionsFromEnvironment({ SLUICE_LOCAL_FUNCTIONS: join(dir, 'missing.json') }, '/')).toThrow(/Cannot read/);
    expect(functionsFromEnvironment({}, dir).file).toBe(file); // sluice.functions.json in the working directory
    expect(functionsFromEnvironment({}, tmpdir()).functions).toEqual({});
  });

  it('the SDK reaches it through AWS_ENDPOINT_URL_LAMBDA, while AWS_ENDPOINT_URL still points at the emulator', () => {
    expect(process.env.AWS_ENDPOINT_URL_LAMBDA).toBe(lambda.service!.url);
    expect(process.env.AWS_ENDPOINT_URL).toBe(inject('awsEndpoint'));
  });

  it('a RequestResponse invoke returns the module’s result, with a Lambda context', async () => {
    const event = { records: [{ id: 'a' }, { id: 'b', fail: true }] };
    const out = await invoke({ FunctionName: ARN, Payload: JSON.stringify(event) });
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBeUndefined();
    expect(out.ExecutedVersion).toBe('$LATEST');
    expect(out.payload).toMatchObject({
      got: event,
      functionName: 'my-subscriber',
      invokedFunctionArn: ARN,
      batchItemFailures: [{ itemIdentifier: 'b' }],
    });
    expect(out.payload.remainingMs).toBeGreaterThan(2000);
    expect(out.payload.remainingMs).toBeLessThanOrEqual(3000);
    // The module is loaded once, like a warm Lambda instance.
    const again = await invoke({ FunctionName: ARN, Payload: '{}' });
    expect(again.payload.loadedAt).toBe(out.payload.loadedAt);
  });

  it('accepts the function’s name, partial ARN and ARN with a qualifier', async () => {
    for (const name of ['my-subscriber', '123456789012:function:my-subscriber', `${ARN}:$LATEST`, 'my-subscriber:$LATEST']) {
      const out = await invoke({ FunctionName: name, Payload: '{"x":1}' });
      expect(out.payload.got).toEqual({ x: 1 });
    }
    expect(parseFunctionName(`${ARN}:live`)).toEqual({ name: 'my-subscriber', region: 'us-east-1', account: '123456789012', qualifier: 'live' });
    expect(parseFunctionName('not a name')).toBeUndefined();
  });

  it('a thrown error is a function error: 200, FunctionError "Unhandled", {errorType, errorMessage, trace}', async () => {
    const out = await invoke({ FunctionName: 'broken-subscriber', Payload: '{}' });
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBe('Unhandled');
    expect(out.payload).toMatchObject({ errorType: 'RangeError', errorMessage: 'the subscriber broke' });
    expect(out.payload.trace[0]).toBe('RangeError: the subscriber broke');
    expect(lambda.service!.counts.functionErrors).toBeGreaterThanOrEqual(1);
  });

  it('a module or export that cannot be loaded is a function error, as Lambda’s runtime reports it', async () => {
    const missingExport = await invoke({ FunctionName: 'no-such-export' });
    expect(missingExport.FunctionError).toBe('Unhandled');
    expect(missingExport.payload.errorType).toBe('Runtime.HandlerNotFound');
    const missingModule = await invoke({ FunctionName: 'no-such-module' });
    expect(missingModule.FunctionError).toBe('Unhandled');
    expect(missingModule.payload.errorType).toBe('Runtime.ImportModuleError');
  });

  it('refuses an unknown function with ResourceNotFoundException (404, x-amzn-ErrorType)', async () => {
    const error = await sdk()
      .send(new InvokeCommand({ FunctionName: 'arn:aws:lambda:us-east-1:123456789012:function:nobody', Payload: '{}' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceNotFoundException);
    const e = error as ResourceNotFoundException;
    expect(e.$metadata.httpStatusCode).toBe(404);
    expect(e.Type).toBe('User');
    expect(e.message).toBe('Function not found: arn:aws:lambda:us-east-1:123456789012:function:nobody');
    // Another account's function of the same name is another function.
    await expect(invoke({ FunctionName: 'arn:aws:lambda:us-east-1:999999999999:function:my-subscriber' })).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it('enforces the function’s timeout: a function error of type Sandbox.Timedout', async () => {
    let finished = false;
    lambda.service!.register('slow', {
      timeoutSeconds: 0.5,
      handler: async () => {
        await sleep(2000);
        finished = true;
        return 'too late';
      },
    });
    const started = Date.now();
    const out = await invoke({ FunctionName: 'slow', Payload: '{}' });
    const took = Date.now() - started;
    expect(out.FunctionError).toBe('Unhandled');
    expect(out.payload.errorType).toBe('Sandbox.Timedout');
    expect(out.payload.errorMessage).toMatch(/Task timed out after 0\.50 seconds/);
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1500);
    expect(finished).toBe(false);
    expect(lambda.service!.counts.timedOut).toBeGreaterThanOrEqual(1);
  });

  it('enforces Lambda’s 6 MB response limit (Function.ResponseSizeTooLarge) and request limits (413)', async () => {
    lambda.service!.register('huge', { handler: async () => 'x'.repeat(6_291_556) });
    const out = await invoke({ FunctionName: 'huge' });
    expect(out.FunctionError).toBe('Unhandled');
    expect(out.payload.errorType).toBe('Function.ResponseSizeTooLarge');
    expect(out.payload.errorMessage).toContain('6291556 bytes');

    lambda.service!.register('echo', { handler: async (event: unknown) => event });
    const big = JSON.stringify({ b: 'y'.repeat(6_291_456) });
    await expect(invoke({ FunctionName: 'echo', Payload: big })).rejects.toBeInstanceOf(RequestTooLargeException);
    const async = JSON.stringify({ b: 'y'.repeat(1_048_576) });
    await expect(invoke({ FunctionName: 'echo', Payload: async, InvocationType: 'Event' })).rejects.toBeInstanceOf(RequestTooLargeException);
    // Just under 6 MB answers, and so does the reply of the same size.
    const fits = JSON.stringify({ b: 'z'.repeat(6_000_000) });
    expect((await invoke({ FunctionName: 'echo', Payload: fits })).payload.b).toHaveLength(6_000_000);
  });

  it('refuses a payload that is not JSON', async () => {
    await expect(invoke({ FunctionName: 'echo', Payload: '{not json' })).rejects.toBeInstanceOf(InvalidRequestContentException);
  });

  it('an Event invoke answers 202 at once and runs the function; DryRun answers 204 and runs nothing', async () => {
    const calls: unknown[] = [];
    lambda.service!.register('later', {
      handler: async (event: unknown) => {
        await sleep(200);
        calls.push(event);
      },
    });
    const started = Date.now();
    const out = await invoke({ FunctionName: 'later', InvocationType: 'Event', Payload: '{"n":1}' });
    expect(out.StatusCode).toBe(202);
    expect(Date.now() - started).toBeLessThan(200);
    expect(calls).toEqual([]);
    await sleep(400);
    expect(calls).toEqual([{ n: 1 }]);
    const dry = await invoke({ FunctionName: 'later', InvocationType: 'DryRun' });
    expect(dry.StatusCode).toBe(204);
    await sleep(300);
    expect(calls).toHaveLength(1);
  });

  it('supports callback-style handlers', async () => {
    lambda.service!.register('callback', {
      handler: (event: unknown, _context, callback) => void setTimeout(() => callback!(null, { echoed: event }), 10),
    });
    expect((await invoke({ FunctionName: 'callback', Payload: '[1]' })).payload).toEqual({ echoed: [1] });
  });
});

describe('npm start wiring', () => {
  it('startLocalRuntime serves the local functions, points AWS_ENDPOINT_URL_LAMBDA at them and prints them', async () => {
    const saved = { ...process.env };
    const lines: string[] = [];
    const runtime = await startLocalRuntime({
      apiPort: 0,
      endpoint: inject('awsEndpoint'),
      tablePrefix: uniqueName('rt'),
      functions: { [ARN]: `${FIXTURE}#handler` },
      log: (line) => lines.push(line),
    });
    try {
      expect(process.env.AWS_ENDPOINT_URL_LAMBDA).toBe(runtime.lambda.url);
      expect(lines).toContain(`[sluice] Lambda endpoint on ${runtime.lambda.url} (AWS_ENDPOINT_URL_LAMBDA): 1 local function`);
      expect(lines).toContain(`[sluice]   ${ARN} → ${FIXTURE}#handler (timeout 3 s)`);
      // The push dispatcher consumes the Log table's stream (lib/streams.ts).
      expect(lines.some((l) => l.includes('DynamoDB Streams poller') && l.includes('dispatchPush'))).toBe(true);
      const rt = new LambdaClient({ maxAttempts: 1 });
      const out = await rt.send(new InvokeCommand({ FunctionName: ARN, Payload: '{"hello":"runtime"}' }));
      rt.destroy();
      expect(JSON.parse(Buffer.from(out.Payload!).toString()).got).toEqual({ hello: 'runtime' });
    } finally {
      await runtime.stop();
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
      forgetConfig();
    }
  });
});
