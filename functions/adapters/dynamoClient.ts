import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { instrument } from './instrument.js';

/**
 * One DynamoDB document client per process. The endpoint comes from the SDK's own AWS_ENDPOINT_URL /
 * AWS_ENDPOINT_URL_DYNAMODB variables, so the same code targets the emulator, LocalStack or AWS.
 */
let client: DynamoDBDocumentClient | undefined;

export function dynamo(): DynamoDBDocumentClient {
  if (client) return client;
  const base = new DynamoDBClient({ maxAttempts: 5 });
  instrument(base.middlewareStack, { meter: true });
  client = DynamoDBDocumentClient.from(base, { marshallOptions: { removeUndefinedValues: true } });
  return client;
}
