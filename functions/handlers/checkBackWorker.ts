import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { dynamoStores } from '../adapters/stores.js';
import { transactionPorts } from '../adapters/transactionPorts.js';
import { loadConfig } from '../config.js';
import { runCheck } from '../domain/transactions/checkBack.js';

const logger = new Logger({ serviceName: 'sluice-transactions' });
const processor = new BatchProcessor(EventType.SQS);
/** Time kept back from the function's timeout for answering the task token. */
const DEADLINE_MARGIN_MS = 3000;

/** What the check-back state machine sends (lib/checkBack.ts builds it). */
const CheckRequestBody = z.object({
  id: z.string().min(1),
  check: z.number().int().min(1),
  taskToken: z.string().min(1),
  giveUp: z.boolean().optional(),
});

/**
 * The check-back queue's consumer: each record is one request of the check-back state machine, waiting
 * on its task token. A failure leaves the record on the queue (tried again after the visibility timeout);
 * runCheck is safe to repeat.
 */
export const handler = middy(async (event: SQSEvent, context: Context) => {
  const config = loadConfig();
  const stores = dynamoStores(config);
  const ports = transactionPorts(config);
  const deadline = Date.now() + context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS;
  const check = async (record: SQSRecord) => {
    let parsed: z.infer<typeof CheckRequestBody>;
    try {
      parsed = CheckRequestBody.parse(JSON.parse(record.body));
    } catch {
      logger.error('malformed check-back request dropped', { messageId: record.messageId });
      return;
    }
    const outcome = await runCheck(stores, ports, parsed, deadline);
    logger.debug('check-back', { id: parsed.id, check: parsed.check, ...outcome });
  };
  return processPartialResponse(event, check, processor, { context });
}).use(injectLambdaContext(logger));
