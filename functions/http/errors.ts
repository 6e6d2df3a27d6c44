import { ZodError } from 'zod';
import { SluiceError, type ErrorCode } from '../domain/errors.js';

/**
 * Failures of the invocation itself, which the gateway reports (the local one in local/apiServer.ts; on AWS,
 * API Gateway answers 500 `{"message":"Internal Server Error"}` for the first two and 503 for the third):
 * the function ran past its timeout, its reply was over Lambda's 6 MB response limit, or the HTTP API's
 * 30 s integration timeout passed first.
 */
export type InvocationErrorCode = 'FunctionTimeout' | 'ResponseTooLarge' | 'IntegrationTimeout';

/** The one place that turns errors into the documented error shape (API.md, "Errors"). */
const STATUS: Record<ErrorCode | InvocationErrorCode | 'InternalError' | 'NotFound' | 'MethodNotAllowed', number> = {
  ValidationError: 400,
  NotSupported: 400,
  TransactionTooLarge: 400,
  TopicNotFound: 404,
  GroupNotFound: 404,
  MessageNotFound: 404,
  TransactionNotFound: 404,
  NotFound: 404,
  MethodNotAllowed: 405,
  Conflict: 409,
  OutOfOrderSequence: 409,
  PayloadTooLarge: 413,
  Throttled: 429,
  InternalError: 500,
  FunctionTimeout: 500,
  ResponseTooLarge: 500,
  IntegrationTimeout: 503,
};

export interface HttpResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export function errorResult(code: keyof typeof STATUS, message: string): HttpResult {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (code === 'Throttled') headers['retry-after'] = '1';
  return { statusCode: STATUS[code], headers, body: JSON.stringify({ error: { code, message } }) };
}

/** DynamoDB's own throttling reaches the client as our 429, so it retries instead of failing. */
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded']);

export function describeZodError(error: ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}

export function toErrorResult(error: unknown): { result: HttpResult; unexpected: boolean } {
  if (error instanceof SluiceError) return { result: errorResult(error.code, error.message), unexpected: false };
  if (error instanceof ZodError) return { result: errorResult('ValidationError', describeZodError(error)), unexpected: false };
  if (error instanceof Error && THROTTLING.has(error.name)) {
    return { result: errorResult('Throttled', 'Storage is throttling; retry the request.'), unexpected: false };
  }
  return { result: errorResult('InternalError', 'The request failed inside the broker; it is safe to retry.'), unexpected: true };
}
