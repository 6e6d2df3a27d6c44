import { createServer, type Server } from 'node:http';
import { inspect } from 'node:util';
import { timeoutSecondsOf, type HandlerName } from '../lib/routes.js';
import { errorResult, type HttpResult } from '../functions/http/errors.js';
import { API_HANDLERS, type ApiHandler } from './handlers.js';
import { localContext } from './lambdaContext.js';
import { matchRoute, toApiGatewayEvent } from './apiGateway.js';
import { currentInvocation, HTTP_API_INTEGRATION_TIMEOUT_MS, invokeWithin, LAMBDA_MAX_RESPONSE_BYTES } from './invocation.js';

/** API Gateway HTTP API refuses payloads over 10 MB before any Lambda runs; so does the local gateway. */
const GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

const loaded = new Map<string, Promise<ApiHandler>>();

/** Loads a handler module the way Lambda would: once per process, then warm. */
function loadHandler(name: HandlerName): Promise<ApiHandler> {
  let handler = loaded.get(name);
  if (!handler) {
    handler = API_HANDLERS[name]().then((m) => m.handler);
    loaded.set(name, handler);
  }
  return handler;
}

export interface ApiServer {
  readonly url: string;
  close(): Promise<void>;
}

export interface ApiServerOptions {
  readonly host?: string;
  /** Handlers to run instead of a route's own module, e.g. a slow or oversized one in a test of the gateway. */
  readonly handlers?: Partial<Record<HandlerName, ApiHandler>>;
  /** Seconds, instead of the timeouts lib/routes.ts declares (a test need not wait 10 s for a timeout). */
  readonly timeoutSeconds?: Partial<Record<HandlerName, number>>;
  /** Seconds; the HTTP API's 30 s by default. */
  readonly integrationTimeoutSeconds?: number;
  /** Where the gateway reports invocations that failed (stderr by default). */
  readonly log?: (line: string) => void;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;

/** The size Lambda checks against its response limit: the handler's result as JSON. */
function serializedBytes(result: unknown): number {
  return Buffer.byteLength(JSON.stringify(result) ?? '', 'utf8');
}

/**
 * Serves the API on loopback by invoking the very handlers Lambda runs, with real API Gateway v2 events, and
 * enforces what Lambda and API Gateway would: each function's timeout (its context counts down from it) and
 * Lambda's 6 MB response limit. docs/local-runtime.md lists what it enforces and how AWS answers.
 */
export async function startApiServer(port: number, options: ApiServerOptions = {}): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((line: string) => console.error(line));
  const integrationTimeoutMs = (options.integrationTimeoutSeconds ?? HTTP_API_INTEGRATION_TIMEOUT_MS / 1000) * 1000;

  const server: Server = createServer(async (req, res) => {
    const send = (result: HttpResult) => {
      res.writeHead(result.statusCode, result.headers);
      res.end(result.body);
    };
    try {
      const url = new URL(req.url ?? '/', `http://${host}`);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > GATEWAY_MAX_BODY_BYTES) {
          send(errorResult('PayloadTooLarge', `The request body is over ${GATEWAY_MAX_BODY_BYTES} bytes.`));
          req.destroy();
          return;
        }
        chunks.push(chunk as Buffer);
      }
      const matched = matchRoute(req.method ?? 'GET', url.pathname);
      if (matched === undefined) return send(errorResult('NotFound', `No route for ${req.method} ${url.pathname}.`));
      if (matched === 'method-not-allowed') {
        return send(errorResult('MethodNotAllowed', `${req.method} is not allowed on ${url.pathname}.`));
      }
      const event = toApiGatewayEvent(req, url, matched, Buffer.concat(chunks).toString('utf8'));
      const functionName = matched.route.handler;
      const handler = options.handlers?.[functionName] ?? (await loadHandler(functionName));
      const timeoutMs = (options.timeoutSeconds?.[functionName] ?? timeoutSecondsOf(matched.route)) * 1000;
      const context = localContext(`sluice-${functionName}`, timeoutMs);
      const what = `${req.method} ${url.pathname} (function ${functionName}, request ${context.awsRequestId})`;
      // The function's timeout ends the invocation, unless the HTTP API stops waiting first.
      const functionTimesOutFirst = timeoutMs <= integrationTimeoutMs;
      const invocation = invokeWithin(
        Math.min(timeoutMs, integrationTimeoutMs),
        () => currentInvocation.run({ functionName }, () => handler(event, context)),
        (lateByMs, late) =>
          log(
            `[sluice] ${what} ${late.kind === 'threw' ? 'failed' : 'finished'} ${seconds(lateByMs)} after the gateway ` +
              'had given up on it; its result was dropped. On AWS Lambda stops a function at its timeout.',
          ),
      );
      const outcome = await invocation.outcome;

      if (outcome.kind === 'timedOut' && functionTimesOutFirst) {
        log(
          `[sluice] FUNCTION TIMEOUT: ${what} did not answer within its ${seconds(timeoutMs)} timeout; ` +
            `the client got 500 FunctionTimeout. On AWS Lambda stops it ("Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds") ` +
            'and API Gateway answers 500; here its work goes on in the background.',
        );
        return send(
          errorResult(
            'FunctionTimeout',
            `The function did not answer within its ${seconds(timeoutMs)} timeout. Part of its work may have been done.`,
          ),
        );
      }
      if (outcome.kind === 'timedOut') {
        log(
          `[sluice] INTEGRATION TIMEOUT: ${what} did not answer within the HTTP API's ${seconds(integrationTimeoutMs)} ` +
            `integration timeout (its own timeout is ${seconds(timeoutMs)}); the client got 503 IntegrationTimeout.`,
        );
        return send(
          errorResult('IntegrationTimeout', `The API stopped waiting for the function after ${seconds(integrationTimeoutMs)}; it may still be running.`),
        );
      }
      if (outcome.kind === 'threw') {
        log(`[sluice] ${what} failed with an unhandled error (on AWS: a function error, API Gateway answers 500): ${inspect(outcome.error)}`);
        return send(errorResult('InternalError', 'The function failed with an unhandled error.'));
      }
      const bytes = serializedBytes(outcome.value);
      if (bytes > LAMBDA_MAX_RESPONSE_BYTES) {
        log(
          `[sluice] RESPONSE TOO LARGE — a bug in ${functionName}: ${what} returned ${bytes} bytes of JSON, over Lambda's ` +
            `${LAMBDA_MAX_RESPONSE_BYTES}-byte limit for a synchronous response. On AWS the invocation fails after all it ` +
            'wrote ("Response payload size exceeded maximum allowed payload size") and API Gateway answers 500; so does this gateway.',
        );
        return send(
          errorResult(
            'ResponseTooLarge',
            `The function's reply (${bytes} bytes) is over Lambda's ${LAMBDA_MAX_RESPONSE_BYTES}-byte response limit. ` +
              'What it did before replying has been done.',
          ),
        );
      }
      send(outcome.value);
    } catch (error) {
      log(`[sluice] local gateway error: ${inspect(error)}`);
      if (!res.headersSent) send(errorResult('InternalError', 'The local gateway failed to invoke the handler.'));
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolveListen());
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return {
    url: `http://${host}:${actualPort}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
