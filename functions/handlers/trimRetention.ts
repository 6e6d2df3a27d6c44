import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { dynamoStores } from '../adapters/stores.js';
import { loadConfig } from '../config.js';
import { trimAllTopics } from '../domain/log/retention.js';

const logger = new Logger({ serviceName: 'sluice-retention' });

/**
 * Time kept back from the function's timeout: the calls in flight at the deadline finish (a
 * BatchWriteItem with its unprocessed-item rounds takes up to ~4 s, SDK retries on top), then the
 * resume point is written. 10% of the time left, at least 2 s and at most 30 s (270 s of a 300 s run).
 */
export function passDeadline(remainingMs: number, nowMs = Date.now()): number {
  const margin = Math.min(30_000, Math.max(2_000, remainingMs * 0.1));
  return nowMs + remainingMs - margin;
}

/**
 * Scheduled (every few minutes): keeps each partition's newest segment from TTL and deletes the segments past
 * retention that TTL will not take, within the time it has (functions/domain/log/retention.ts).
 */
export const handler = middy(async (_event: unknown, context: Context) => {
  const started = Date.now();
  const result = await trimAllTopics(dynamoStores(loadConfig()), started, { deadline: passDeadline(context.getRemainingTimeInMillis(), started) });
  logger.info('retention pass', {
    deletedSegments: result.deleted,
    protectedSegments: result.protected,
    extendedSegments: result.extended,
    complete: result.complete,
    topics: result.topics,
    started: result.started,
    ms: Date.now() - started,
  });
  if (!result.complete) logger.warn('retention pass ran out of time; the next pass continues after the last topic it started');
  return { deletedSegments: result.deleted, complete: result.complete };
}).use(injectLambdaContext(logger));
