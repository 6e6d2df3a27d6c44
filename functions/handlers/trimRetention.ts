import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { dynamoStores } from '../adapters/stores.js';
import { loadConfig } from '../config.js';
import { trimAllTopics } from '../domain/retention.js';

const logger = new Logger({ serviceName: 'sluice-retention' });

/** Scheduled (every few minutes): deletes log segments past their topic's retention. */
export const handler = middy(async () => {
  const deleted = await trimAllTopics(dynamoStores(loadConfig()));
  logger.info('retention pass', { deletedSegments: deleted });
  return { deletedSegments: deleted };
}).use(injectLambdaContext(logger));
