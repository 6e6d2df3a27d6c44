import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { dynamoStores } from '../adapters/stores.js';
import { loadConfig } from '../config.js';
import { dispatchPush, segmentOfLogKey } from '../domain/push/dispatch.js';

const logger = new Logger({ serviceName: 'sluice-push' });

/**
 * The log table's stream consumer: new segments become push work. The whole batch is one dispatch; if it
 * fails, the batch is reported failed from its first record (partial batch response), so the event source
 * retries it. Work sent twice is harmless (the worker leases through the progress model).
 */
export const handler = middy(async (event: DynamoDBStreamEvent) => {
  const segments = event.Records.flatMap((record) => {
    if (record.eventName !== 'INSERT') return [];
    const pk = record.dynamodb?.Keys?.pk?.S;
    const segment = pk ? segmentOfLogKey(pk) : undefined;
    return segment ? [segment] : [];
  });
  try {
    const sent = await dispatchPush(dynamoStores(loadConfig()), segments);
    logger.debug('dispatched', { segments: segments.length, work: sent });
    return { batchItemFailures: [] };
  } catch (error) {
    logger.error('push dispatch failed; the batch will be retried', { error: error as Error });
    const first = event.Records[0]?.dynamodb?.SequenceNumber;
    return { batchItemFailures: first ? [{ itemIdentifier: first }] : [] };
  }
}).use(injectLambdaContext(logger));
