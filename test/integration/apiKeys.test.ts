import type { APIGatewayRequestAuthorizerEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { DynamoApiKeyStore } from '../../functions/adapters/apiKeyStore.js';
import { dynamo } from '../../functions/adapters/dynamoClient.js';
import { createApiKey, hashApiKey, revokeApiKey } from '../../functions/domain/apiKeys.js';
import { handler } from '../../functions/handlers/apiKeyAuthorizer.js';
import { localContext } from '../../local/lambdaContext.js';

function authorizerEvent(key: string | undefined): APIGatewayRequestAuthorizerEventV2 {
  return {
    version: '2.0',
    type: 'REQUEST',
    routeArn: 'arn:aws:execute-api:us-east-1:000000000000:api/$default/POST/v1/topics/t/messages',
    identitySource: key ? [key] : [],
    routeKey: 'POST /v1/topics/{topic}/messages',
    rawPath: '/v1/topics/t/messages',
    rawQueryString: '',
    headers: key ? { 'x-api-key': key } : {},
    requestContext: {} as APIGatewayRequestAuthorizerEventV2['requestContext'],
  } as APIGatewayRequestAuthorizerEventV2;
}

describe('API keys and the Lambda authorizer', () => {
  const store = new DynamoApiKeyStore(dynamo(), process.env.API_KEYS_TABLE!);

  it('stores only the hash of a new key, lets it in, refuses other keys, and refuses it once revoked', async () => {
    const { key, record } = await createApiKey(store, 'ci');
    expect(record.keyHash).toBe(hashApiKey(key));
    const stored = (await store.list()).find((r) => r.id === record.id)!;
    expect(JSON.stringify(stored)).not.toContain(key);

    const allowed = await handler(authorizerEvent(key), localContext('authorizer'));
    expect(allowed).toEqual({ isAuthorized: true, context: { keyId: record.id } });
    for (const wrong of [undefined, '', `${key}x`, key.slice(0, -1), 'slk_' + 'a'.repeat(43)]) {
      expect((await handler(authorizerEvent(wrong), localContext('authorizer'))).isAuthorized).toBe(false);
    }

    expect((await revokeApiKey(store, record.id))?.revokedAt).toBeGreaterThan(0);
    expect((await handler(authorizerEvent(key), localContext('authorizer'))).isAuthorized).toBe(false);
    expect(await revokeApiKey(store, 'no-such-id')).toBeUndefined();
  });
});
