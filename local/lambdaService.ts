import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import type { ClientContext, Context } from 'aws-lambda';
import { currentInvocation, invokeWithin, LAMBDA_MAX_RESPONSE_BYTES } from './invocation.js';
import { localContext } from './lambdaContext.js';
import type { LocalService } from './periodic.js';

/**
 * A local stand-in for AWS Lambda's Invoke API, so code that invokes a user's function through
 * @aws-sdk/client-lambda (a push group with `delivery: {type: "lambda", functionArn}`) runs unchanged: the SDK
 * reaches it through AWS_ENDPOINT_URL_LAMBDA. Each function name or ARN maps to a module the user registers
 * (sluice.functions.json, SLUICE_LOCAL_FUNCTIONS) or, in tests, to a handler in the process.
 * docs/local-runtime.md, "Lambda subscribers", says what it enforces and what differs from Lambda.
 */

/** A Lambda handler: async (event, context), or the older (event, context, callback). */
export type LambdaHandler = (event: unknown, context: Context, callback?: (error?: unknown, result?: unknown) => void) => unknown;

export interface LocalFunctionSpec {
  /** "./path/to/module.mjs#exportName" (the export `handler` when there is no "#"), or a function (tests). */
  readonly handler: string | LambdaHandler;
  /** Seconds, 1..900; Lambda's default for a new function, 3 s, when absent. */
  readonly timeoutSeconds?: number;
  /** What context.memoryLimitInMB says; 128 (Lambda's default) when absent. */
  readonly memoryMB?: number;
}

/** Functions by name, full ARN or partial ARN ("123456789012:function:name"); a string is a spec's `handler`. */
export type LocalFunctions = Readonly<Record<string, string | LocalFunctionSpec>>;

/** Lambda's default timeout for a function created without one. */
export const LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3;
const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
/** Invoke's request limits: 6 MB for a synchronous invocation, 1 MB for an asynchronous one (Invoke API reference). */
export const LAMBDA_MAX_SYNC_REQUEST_BYTES = 6_291_456;
export const LAMBDA_MAX_ASYNC_REQUEST_BYTES = 1_048_576;
/** The account id ARNs get when the caller gave only a name (moto's default account, which the emulator's other ARNs carry). */
const LOCAL_ACCOUNT = '123456789012';
/** The file `npm start` reads functions from when SLUICE_LOCAL_FUNCTIONS names none. */
export const FUNCTIONS_FILE = 'sluice.functions.json';

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
/** The FunctionName forms Invoke accepts: a name, a partial ARN or a full ARN, each optionally with ":qualifier". */
const FUNCTION_NAME =
  /^(?:arn:aws[a-zA-Z-]*:lambda:([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):(\d{12}):function:|(\d{12}):function:)?([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?$/;

export interface FunctionId {
  readonly name: string;
  readonly region?: string;
  readonly account?: string;
  readonly qualifier?: string;
}

/** Reads a FunctionName as Invoke does; undefined when it is none of the accepted forms. */
export function parseFunctionName(value: string): FunctionId | undefined {
  const m = FUNCTION_NAME.exec(value);
  if (!m || m[4]!.length > 64) return undefined;
  const account = m[2] ?? m[3];
  return { name: m[4]!, ...(m[1] ? { region: m[1] } : {}), ...(account ? { account } : {}), ...(m[5] ? { qualifier: m[5] } : {}) };
}

const functionArnOf = (id: FunctionId) =>
  `arn:aws:lambda:${id.region ?? process.env.AWS_REGION ?? 'us-east-1'}:${id.account ?? LOCAL_ACCOUNT}:function:${id.name}`;

interface Registered {
  readonly key: string;
  readonly id: FunctionId;
  readonly arn: string;
  readonly source: string;
  readonly timeoutMs: number;
  readonly memoryMB: number;
  readonly resolve: () => Promise<LambdaHandler>;
}

/** Loading failures Lambda reports as the function's error (Runtime.ImportModuleError, Runtime.HandlerNotFound). */
class RuntimeError extends Error {
  constructor(
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

function moduleLoader(spec: string, baseDir: string): { source: string; load: () => Promise<LambdaHandler> } {
  const hash = spec.lastIndexOf('#');
  const file = hash >= 0 ? spec.slice(0, hash) : spec;
  const exportName = hash >= 0 ? spec.slice(hash + 1) : 'handler';
  if (!file || !exportName) throw new Error(`'${spec}' is not "path/to/module.mjs#export".`);
  const path = isAbsolute(file) ? file : resolve(baseDir, file);
  return {
    source: `${path}#${exportName}`,
    load: async () => {
      let module: Record<string, unknown>;
      try {
        module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      } catch (error) {
        throw new RuntimeError('Runtime.ImportModuleError', `Error: Cannot load module '${path}': ${(error as Error).message ?? String(error)}`);
      }
      const handler = module[exportName];
      if (typeof handler !== 'function') throw new RuntimeError('Runtime.HandlerNotFound', `${path}#${exportName} is undefined or not exported`);
      return handler as LambdaHandler;
    },
  };
}

function register(spec: string | LocalFunctionSpec, key: string, baseDir: string): Registered {
  const id = parseFunctionName(key);
  if (!id) throw new Error(`'${key}' is not a Lambda function name or ARN.`);
  const s: LocalFunctionSpec = typeof spec === 'string' ? { handler: spec } : spec;
  const unknown = Object.keys(s).filter((k) => !['handler', 'timeoutSeconds', 'memoryMB'].includes(k));
  if (unknown.length > 0) throw new Error(`Function ${key}: unknown settings ${unknown.join(', ')} (handler, timeoutSeconds, memoryMB).`);
  const timeoutSeconds = s.timeoutSeconds ?? LAMBDA_DEFAULT_TIMEOUT_SECONDS;
  if (!(typeof timeoutSeconds === 'number' && timeoutSeconds > 0 && timeoutSeconds <= LAMBDA_MAX_TIMEOUT_SECONDS)) {
    throw new Error(`Function ${key}: timeoutSeconds must be a number of seconds up to ${LAMBDA_MAX_TIMEOUT_SECONDS}, not ${JSON.stringify(s.timeoutSeconds)}.`);
  }
  let source: string;
  let load: () => Promise<LambdaHandler>;
  if (typeof s.handler === 'function') {
    const fn = s.handler;
    source = `(in-process) ${fn.name || 'anonymous'}`;
    load = () => Promise.resolve(fn);
  } else if (typeof s.handler === 'string') {
    ({ source, load } = moduleLoader(s.handler, baseDir));
  } else throw new Error(`Function ${key}: handler must be "path/to/module.mjs#export".`);
  let loaded: Promise<LambdaHandler> | undefined;
  return {
    key,
    id,
    arn: functionArnOf(id),
    source,
    timeoutMs: timeoutSeconds * 1000,
    memoryMB: s.memoryMB ?? 128,
    // Loaded once, on the first invocation, as a Lambda instance would; a failed load is tried again next time.
    resolve: () =>
      (loaded ??= load().catch((error: unknown) => {
        loaded = undefined;
        throw error;
      })),
  };
}

/** Reads a functions file: a JSON object from function name or ARN to "module#export" or {handler, timeoutSeconds, memoryMB}. */
export function readFunctionsFile(path: string): LocalFunctions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the local functions file ${path}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${path} must hold a JSON object from function name or ARN to "path/to/module.mjs#export".`);
  }
  return parsed as LocalFunctions;
}

/**
 * The functions `npm start` serves: the file SLUICE_LOCAL_FUNCTIONS names (it must exist), else
 * sluice.functions.json in the working directory if there is one. Module paths are relative to the file.
 */
export function functionsFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): { file?: string; functions: LocalFunctions; baseDir: string } {
  const named = env.SLUICE_LOCAL_FUNCTIONS;
  const file = named ? resolve(cwd, named) : resolve(cwd, FUNCTIONS_FILE);
  if (!named && !existsSync(file)) return { functions: {}, baseDir: cwd };
  return { file, functions: readFunctionsFile(file), baseDir: dirname(file) };
}

/** SLUICE_LAMBDA_PORT, else 0 (a free port: a fixed one would clash with the test suite's `npm start` beside yours). */
export function lambdaPortFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SLUICE_LAMBDA_PORT;
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`SLUICE_LAMBDA_PORT must be a port number, not '${raw}'.`);
  return n;
}

export interface LambdaServiceOptions {
  /** 0 (a free port) by default. */
  readonly port?: number;
  readonly host?: string;
  readonly functions?: LocalFunctions;
  /** Where relative module paths of `functions` start; the working directory by default. */
  readonly baseDir?: string;
  /** Where failed invocations are reported (stderr by default). */
  readonly log?: (line: string) => void;
}

export interface RegisteredFunction {
  /** As registered: a name or an ARN. */
  readonly key: string;
  readonly arn: string;
  readonly source: string;
  readonly timeoutSeconds: number;
}

export interface InvocationCounts {
  readonly invocations: number;
  readonly functionErrors: number;
  readonly timedOut: number;
  readonly notFound: number;
}

export interface LambdaService extends LocalService {
  /** What AWS_ENDPOINT_URL_LAMBDA should be. */
  readonly url: string;
  readonly counts: InvocationCounts;
  /** Adds or replaces a function (tests register handlers of their own). */
  register(nameOrArn: string, spec: string | LocalFunctionSpec, baseDir?: string): void;
  unregister(nameOrArn: string): void;
  functions(): RegisteredFunction[];
}

interface AwsError {
  readonly status: number;
  readonly type: string;
  readonly body: Record<string, string>;
}

const userError = (status: number, type: string, message: string, messageKey = 'message'): AwsError => ({
  status,
  type,
  body: { Type: 'User', [messageKey]: message },
});

/** The payload Lambda returns for an error the function threw (Node.js runtime: errorType, errorMessage, trace). */
function errorPayload(error: unknown): Record<string, unknown> {
  if (error instanceof RuntimeError) return { errorType: error.errorType, errorMessage: error.message };
  if (error instanceof Error) {
    return { errorType: error.name || 'Error', errorMessage: error.message, trace: (error.stack ?? '').split('\n') };
  }
  return { errorType: typeof error, errorMessage: typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error)), trace: [] };
}

function invokeHandler(handler: LambdaHandler, event: unknown, context: Context): Promise<unknown> {
  if (handler.length < 3) return Promise.resolve().then(() => handler(event, context));
  return new Promise((resolvePromise, reject) => {
    const returned = handler(event, context, (error, result) => (error ? reject(error) : resolvePromise(result)));
    if (returned && typeof (returned as Promise<unknown>).then === 'function') (returned as Promise<unknown>).then(resolvePromise, reject);
  });
}

function clientContextOf(header: string | undefined): ClientContext | undefined {
  if (!header) return undefined;
  try {
    return JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as ClientContext;
  } catch {
    return undefined;
  }
}

/**
 * Serves Lambda's Invoke API (`POST /2015-03-31/functions/{FunctionName}/invocations`) on loopback for the
 * registered functions: RequestResponse (the result, or X-Amz-Function-Error: Unhandled with
 * {errorType, errorMessage, trace}), Event (202, run in the background) and DryRun (204); the function's
 * timeout (Sandbox.Timedout), Lambda's 6 MB response limit (Function.ResponseSizeTooLarge) and its request
 * limits (RequestTooLargeException); an unknown function is a 404 ResourceNotFoundException.
 */
export async function startLambdaService(options: LambdaServiceOptions = {}): Promise<LambdaService> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((line: string) => console.error(line));
  const registry = new Map<string, Registered>();
  for (const [key, spec] of Object.entries(options.functions ?? {})) {
    registry.set(key, register(spec, key, options.baseDir ?? process.cwd()));
  }
  const counts = { invocations: 0, functionErrors: 0, timedOut: 0, notFound: 0 };
  const background = new Set<Promise<unknown>>();

  /** The registered function a FunctionName means: same name, and same region and account where both say one. */
  const find = (id: FunctionId): Registered | undefined => {
    for (const f of registry.values()) {
      if (f.id.name !== id.name) continue;
      if (f.id.region && id.region && f.id.region !== id.region) continue;
      if (f.id.account && id.account && f.id.account !== id.account) continue;
      return f;
    }
    return undefined;
  };

  const invoke = (f: Registered, event: unknown, context: Context) =>
    invokeWithin(
      f.timeoutMs,
      async () => currentInvocation.run({ functionName: f.id.name }, async () => invokeHandler(await f.resolve(), event, context)),
      (lateByMs, late) =>
        log(
          `[sluice] Lambda ${f.id.name} (request ${context.awsRequestId}) ${late.kind === 'threw' ? 'failed' : 'finished'} ${lateByMs} ms after ` +
            'its timeout; its result was dropped. On AWS Lambda stops a function at its timeout.',
        ),
    );

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    const fail = (e: AwsError) => {
      res.writeHead(e.status, { 'content-type': 'application/json', 'x-amzn-errortype': e.type, 'x-amzn-requestid': requestId });
      res.end(JSON.stringify(e.body));
    };
    const url = new URL(req.url ?? '/', `http://${host}`);
    const match = INVOKE_PATH.exec(url.pathname);
    if (!match || req.method !== 'POST') {
      req.resume();
      return fail(userError(404, 'UnknownOperationException', `Only Invoke (POST /2015-03-31/functions/{FunctionName}/invocations) is served locally, not ${req.method} ${url.pathname}.`));
    }
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (!['RequestResponse', 'Event', 'DryRun'].includes(invocationType)) {
      req.resume();
      return fail(userError(400, 'InvalidParameterValueException', `Unsupported invocation type: ${invocationType}`));
    }
    const limit = invocationType === 'Event' ? LAMBDA_MAX_ASYNC_REQUEST_BYTES : LAMBDA_MAX_SYNC_REQUEST_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size <= limit) chunks.push(chunk as Buffer);
    }
    if (size > limit) return fail(userError(413, 'RequestTooLargeException', `Request must be smaller than ${limit} bytes for the InvokeFunction operation`));

    const raw = decodeURIComponent(match[1]!);
    const id = parseFunctionName(raw);
    if (!id) return fail(userError(400, 'ValidationException', `1 validation error detected: Value '${raw}' at 'functionName' failed to satisfy constraint`));
    const f = find(id);
    if (!f) {
      counts.notFound++;
      return fail(userError(404, 'ResourceNotFoundException', `Function not found: ${functionArnOf(id)}${id.qualifier ? `:${id.qualifier}` : ''}`, 'Message'));
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let event: unknown = {};
    if (text.trim() !== '') {
      try {
        event = JSON.parse(text);
      } catch (error) {
        return fail(userError(400, 'InvalidRequestContentException', `Could not parse request body into json: ${(error as Error).message}`));
      }
    }
    const headers = { 'x-amzn-requestid': requestId, 'x-amz-executed-version': '$LATEST' };
    if (invocationType === 'DryRun') {
      res.writeHead(204, headers);
      return res.end();
    }

    counts.invocations++;
    const invokedArn = `${functionArnOf({ ...f.id, ...id })}${id.qualifier ? `:${id.qualifier}` : ''}`;
    const clientContext = invocationType === 'RequestResponse' ? clientContextOf(req.headers['x-amz-client-context'] as string | undefined) : undefined;
    const context: Context = {
      ...localContext(f.id.name, f.timeoutMs),
      awsRequestId: requestId,
      invokedFunctionArn: invokedArn,
      memoryLimitInMB: String(f.memoryMB),
      ...(clientContext ? { clientContext } : {}),
    };
    const started = Date.now();
    const invocation = invoke(f, event, context);

    if (invocationType === 'Event') {
      res.writeHead(202, headers);
      res.end();
      const settled = invocation.outcome.then((outcome) => {
        if (outcome.kind === 'returned') return;
        counts.functionErrors++;
        if (outcome.kind === 'timedOut') counts.timedOut++;
        log(
          `[sluice] Lambda ${f.id.name} (Event invocation ${requestId}) ${outcome.kind === 'timedOut' ? `timed out after ${f.timeoutMs / 1000} s` : `failed: ${inspect(outcome.error)}`}. ` +
            'Lambda would retry it twice (after about 1 and 2 minutes); locally it is not retried.',
        );
      });
      background.add(settled);
      void settled.finally(() => background.delete(settled));
      return;
    }

    const outcome = await invocation.outcome;
    let payload: string;
    let functionError = false;
    if (outcome.kind === 'returned') {
      try {
        payload = JSON.stringify(outcome.value) ?? 'null';
      } catch (error) {
        functionError = true;
        payload = JSON.stringify(errorPayload(error));
      }
      if (!functionError && Buffer.byteLength(payload) > LAMBDA_MAX_RESPONSE_BYTES) {
        functionError = true;
        log(`[sluice] Lambda ${f.id.name} (request ${requestId}): RESPONSE TOO LARGE, ${Buffer.byteLength(payload)} bytes; Lambda allows ${LAMBDA_MAX_RESPONSE_BYTES}.`);
        payload = JSON.stringify({
          errorMessage: `Response payload size exceeded maximum allowed payload size (${LAMBDA_MAX_RESPONSE_BYTES} bytes).`,
          errorType: 'Function.ResponseSizeTooLarge',
        });
      }
    } else if (outcome.kind === 'threw') {
      functionError = true;
      payload = JSON.stringify(errorPayload(outcome.error));
    } else {
      functionError = true;
      counts.timedOut++;
      log(`[sluice] Lambda ${f.id.name} (request ${requestId}): FUNCTION TIMEOUT after ${f.timeoutMs / 1000} s.`);
      payload = JSON.stringify({
        errorType: 'Sandbox.Timedout',
        errorMessage: `RequestId: ${requestId} Error: Task timed out after ${(f.timeoutMs / 1000).toFixed(2)} seconds`,
      });
    }
    if (functionError) counts.functionErrors++;
    const logTail =
      req.headers['x-amz-log-type'] === 'Tail'
        ? {
            'x-amz-log-result': Buffer.from(
              `START RequestId: ${requestId} Version: $LATEST\nEND RequestId: ${requestId}\n` +
                `REPORT RequestId: ${requestId}\tDuration: ${Date.now() - started} ms\tMemory Size: ${f.memoryMB} MB\t\n`,
            ).toString('base64'),
          }
        : {};
    res.writeHead(200, {
      ...headers,
      ...logTail,
      'content-type': 'application/json',
      ...(functionError ? { 'x-amz-function-error': 'Unhandled' } : {}),
    });
    res.end(payload);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`[sluice] Lambda endpoint: ${inspect(error)}`);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceException' });
        res.end(JSON.stringify({ Type: 'Service', Message: String(error) }));
      } else res.end();
    });
  });
  await new Promise<void>((done, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => done());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  return {
    name: 'lambda',
    url: `http://${host}:${port}`,
    counts,
    register: (nameOrArn, spec, baseDir) => void registry.set(nameOrArn, register(spec, nameOrArn, baseDir ?? options.baseDir ?? process.cwd())),
    unregister: (nameOrArn) => void registry.delete(nameOrArn),
    functions: () => [...registry.values()].map((f) => ({ key: f.key, arn: f.arn, source: f.source, timeoutSeconds: f.timeoutMs / 1000 })),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
      // Event invocations in flight: their outcome, at most their timeout away.
      await Promise.all([...background]);
    },
  };
}
