import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { z } from 'zod';
import { loadConfig, type Config } from '../config.js';
import { dynamoStores } from '../adapters/stores.js';
import { SluiceError, validation } from '../domain/errors.js';
import { LIMITS } from '../domain/limits.js';
import type { Stores } from '../domain/ports.js';
import { toErrorResult, type HttpResult } from './errors.js';
import { pathNestedDeeperThan } from './schemas.js';

export const logger = new Logger({ serviceName: 'sluice' });

export interface Reply {
  readonly status: number;
  readonly body?: unknown;
}

/**
 * Time kept back from the invocation's remaining time when telling the domain its deadline. It covers
 * what still runs after the domain has its reply (serializing it, middy's after and error handlers,
 * Lambda sending it back) and a storage call that was already under way at the deadline. A domain that
 * is done by the deadline is answered before Lambda's timeout stops the function.
 */
export const DEADLINE_MARGIN_MS = 1000;

export interface RouteInput<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly stores: Stores;
  /** The validated configuration (for handlers that need ports besides the stores). */
  readonly config: Config;
  /**
   * Epoch ms by which the domain should have finished its reply: now + the invocation's remaining time −
   * DEADLINE_MARGIN_MS. Work still running after it risks the function's timeout (on AWS: stopped part-way,
   * the client gets a 500). It can already be past when the invocation started late.
   */
  readonly deadline: number;
}

interface RouteSpec<P, Q, B> {
  readonly params?: z.ZodType<P>;
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  readonly run: (input: RouteInput<P, Q, B>) => Promise<Reply>;
}

/**
 * How deep any request body may nest. The deepest free-form field (a message body) starts 3 levels down
 * (`{"messages": [{"body": …}]}`); the slack lets the schema's own check, which names the field, answer
 * bodies a few levels too deep.
 */
const MAX_REQUEST_NESTING = LIMITS.maxNestingDepth + 10;

function readBody(event: APIGatewayProxyEventV2): unknown {
  if (event.body === undefined || event.body === null || event.body === '') return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text, 'utf8') > LIMITS.maxRequestBytes) {
    throw new SluiceError('PayloadTooLarge', `The request body is over ${LIMITS.maxRequestBytes} bytes.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw validation('The request body is not valid JSON.');
  }
  // Before any schema walks it: zod and JSON.stringify recurse, and a deep enough body overflows the stack.
  const tooDeep = pathNestedDeeperThan(value, MAX_REQUEST_NESTING);
  if (tooDeep) {
    const at = tooDeep.length > 6 ? `${tooDeep.slice(0, 6).join('.')}…` : tooDeep.join('.');
    throw validation(
      `The request body nests arrays and objects more than ${MAX_REQUEST_NESTING} levels deep (at ${at}); ` +
        `a message body may nest ${LIMITS.maxNestingDepth} levels at most.`,
    );
  }
  return value;
}

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T;
  // An absent body means "all defaults"; a JSON null is not an object and is refused like any other.
  const result = schema.safeParse(value === undefined && where === 'body' ? {} : value);
  if (!result.success) throw result.error;
  return result.data;
}

/**
 * Builds a Lambda handler for one API route (API Gateway HTTP API, payload v2): a middy chain that
 * parses and validates path, query and body with zod, runs one domain call, and maps every error to the
 * documented shape in one place.
 */
export function apiRoute<P = undefined, Q = undefined, B = undefined>(spec: RouteSpec<P, Q, B>) {
  const base = async (event: APIGatewayProxyEventV2, context: Context): Promise<HttpResult> => {
    const deadline = Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS;
    const params = parse(spec.params, event.pathParameters ?? {}, 'path');
    const query = parse(spec.query, event.queryStringParameters ?? {}, 'query');
    const body = parse(spec.body, spec.body ? readBody(event) : undefined, 'body');
    const config = loadConfig();
    const reply = await spec.run({ params, query, body, stores: dynamoStores(config), config, deadline });
    return {
      statusCode: reply.status,
      headers: { 'content-type': 'application/json' },
      body: reply.body === undefined ? '' : JSON.stringify(reply.body),
    };
  };
  return middy(base)
    .use(injectLambdaContext(logger))
    .use({
      onError: async (request) => {
        const { result, unexpected } = toErrorResult(request.error);
        if (unexpected) logger.error('request failed', { error: request.error as Error, path: request.event.rawPath });
        request.response = result;
      },
    });
}
