import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { parsePushWork } from '../adapters/pushQueue.js';
import { pushPorts } from '../adapters/pushPorts.js';
import { dynamoStores } from '../adapters/stores.js';
import { loadConfig } from '../config.js';
import { runPushWork } from '../domain/push/runWork.js';

const logger = new Logger({ serviceName: 'sluice-push' });
const processor = new BatchProcessor(EventType.SQS);
/** Time kept back from the function's timeout: the last delivery's acks and the wake-up. */
const DEADLINE_MARGIN_MS = 3000;

/** The push queue's consumer: delivers one (group, partition) per record. */
export const handler = middy(async (event: SQSEvent, context: Context) => {
  const config = loadConfig();
  const stores = dynamoStores(config);
  const ports = pushPorts(config);
  const deadline = Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS;
  const work = async (record: SQSRecord) => {
    const item = parsePushWork(record.body);
    if (!item) {
      logger.error('malformed push work dropped', { messageId: record.messageId });
      return;
    }
    const outcome = await runPushWork(stores, ports, item, deadline);
    logger.debug('push work', { ...item, ...outcome });
  };
  return processPartialResponse(event, work, processor, { context });
}).use(injectLambdaContext(logger));
