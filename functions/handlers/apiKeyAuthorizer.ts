import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerWithContextResult } from 'aws-lambda';
import { z } from 'zod';
import { DynamoApiKeyStore } from '../adapters/apiKeyStore.js';
import { dynamo } from '../adapters/dynamoClient.js';
import { verifyApiKey } from '../domain/apiKeys.js';

const logger = new Logger({ serviceName: 'sluice-authorizer' });
const table = z.string().min(1).parse(process.env.API_KEYS_TABLE, { error: () => 'API_KEYS_TABLE is not set' });
const store = new DynamoApiKeyStore(dynamo(), table);

/** HTTP API Lambda authorizer (simple responses): lets a request through when its x-api-key is a live key. */
export const handler = middy(
  async (event: APIGatewayRequestAuthorizerEventV2): Promise<APIGatewaySimpleAuthorizerWithContextResult<{ keyId: string }>> => {
    const record = await verifyApiKey(store, event.headers?.['x-api-key']);
    if (!record) logger.info('api key refused', { routeKey: event.routeKey });
    return { isAuthorized: record !== undefined, context: { keyId: record?.id ?? '' } };
  },
).use(injectLambdaContext(logger));
