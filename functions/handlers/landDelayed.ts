import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseDelayQueueBody } from '../adapters/delayQueue.js';
import { dynamoStores } from '../adapters/stores.js';
import { loadConfig } from '../config.js';
import { landDelayed } from '../domain/delay/land.js';

const logger = new Logger({ serviceName: 'sluice-delay' });
const processor = new BatchProcessor(EventType.SQS);

/** Time kept back from the function's timeout for the reply (and an append in flight at the deadline). */
const DEADLINE_MARGIN_MS = 3000;

/**
 * The delay queue's consumer (SQS event source, partial batch responses): each queue message names
 * pending messages of one topic due in one second, and lands them. A failed record is retried by SQS
 * after the visibility timeout, then goes to the queue's dead-letter queue; landings are conditional,
 * so a retry or a duplicate delivery never lands a message twice.
 */
export const handler = middy(async (event: SQSEvent, context: Context) => {
  const stores = dynamoStores(loadConfig());
  const deadline = Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS;
  const land = async (record: SQSRecord) => {
    const message = parseDelayQueueBody(record.body);
    if (!message) {
      // Not ours (nothing else should write to this queue): retrying would never help.
      logger.error('malformed delay-queue message dropped', { messageId: record.messageId });
      return;
    }
    const summary = await landDelayed(stores, message, deadline);
    logger.debug('landed', { messageId: record.messageId, ...summary });
  };
  return processPartialResponse(event, land, processor, { context });
}).use(injectLambdaContext(logger));
