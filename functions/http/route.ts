import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { z } from 'zod';
import { loadConfig } from '../config.js';
import { dynamoStores } from '../adapters/stores.js';
import { SluiceError, validation } from '../domain/errors.js';
import { LIMITS } from '../domain/limits.js';
import type { Stores } from '../domain/ports.js';
import { toErrorResult, type HttpResult } from './errors.js';

export const logger = new Logger({ serviceName: 'sluice' });

export interface Reply {
  readonly status: number;
  readonly body?: unknown;
}

export interface RouteInput<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly stores: Stores;
}

interface RouteSpec<P, Q, B> {
  readonly params?: z.ZodType<P>;
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  readonly run: (input: RouteInput<P, Q, B>) => Promise<Reply>;
}

function readBody(event: APIGatewayProxyEventV2): unknown {
  if (event.body === undefined || event.body === null || event.body === '') return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text, 'utf8') > LIMITS.maxRequestBytes) {
    throw new SluiceError('PayloadTooLarge', `The request body is over ${LIMITS.maxRequestBytes} bytes.`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw validation('The request body is not valid JSON.');
  }
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
  const base = async (event: APIGatewayProxyEventV2, _context: Context): Promise<HttpResult> => {
    const params = parse(spec.params, event.pathParameters ?? {}, 'path');
    const query = parse(spec.query, event.queryStringParameters ?? {}, 'query');
    const body = parse(spec.body, spec.body ? readBody(event) : undefined, 'body');
    const reply = await spec.run({ params, query, body, stores: dynamoStores(loadConfig()) });
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
