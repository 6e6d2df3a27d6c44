import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseTimeoutBody, transactionPorts } from '../adapters/transactionPorts.js';
import { loadConfig } from '../config.js';
import { onTransactionTimeout } from '../domain/transactions/checkBack.js';

const logger = new Logger({ serviceName: 'sluice-transactions' });
const processor = new BatchProcessor(EventType.SQS);

/**
 * The transaction timeout queue's consumer (SQS event source, partial batch responses): starts the
 * check-back of each transaction still prepared at its timeout. A failed record comes back after the
 * visibility timeout; a start is idempotent (the execution is named after the transaction).
 */
export const handler = middy(async (event: SQSEvent, context: Context) => {
  const ports = transactionPorts(loadConfig());
  const timeout = async (record: SQSRecord) => {
    const id = parseTimeoutBody(record.body);
    if (!id) {
      logger.error('malformed transaction timeout dropped', { messageId: record.messageId });
      return;
    }
    const outcome = await onTransactionTimeout(ports, id);
    logger.debug('transaction timeout', { id, outcome });
  };
  return processPartialResponse(event, timeout, processor, { context });
}).use(injectLambdaContext(logger));
