import { createServer, type Server } from 'node:http';
import type { HandlerName } from '../lib/routes.js';
import { errorResult, type HttpResult } from '../functions/http/errors.js';
import { API_HANDLERS, type ApiHandler } from './handlers.js';
import { localContext } from './lambdaContext.js';
import { matchRoute, toApiGatewayEvent } from './apiGateway.js';
import { currentInvocation } from './invocation.js';

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

/** Serves the API on loopback by invoking the very handlers Lambda runs, with real API Gateway v2 events. */
export async function startApiServer(port: number, host = '127.0.0.1'): Promise<ApiServer> {
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
      const handler = await loadHandler(matched.route.handler);
      const functionName = matched.route.handler;
      send(await currentInvocation.run({ functionName }, () => handler(event, localContext(`sluice-${functionName}`))));
    } catch (error) {
      console.error('[sluice] local gateway error', error);
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
