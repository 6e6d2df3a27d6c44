/**
 * Manage API keys of a deployment that uses `auth=apiKey`:
 *
 *   npm run api-keys -- create <name>     prints the new key once; store it, it cannot be shown again
 *   npm run api-keys -- list
 *   npm run api-keys -- revoke <id>
 *
 * The table comes from API_KEYS_TABLE (the stack output ApiKeysTableName); credentials and region from
 * the usual AWS SDK settings.
 */
import { DynamoApiKeyStore } from '../functions/adapters/apiKeyStore.js';
import { dynamo } from '../functions/adapters/dynamoClient.js';
import { createApiKey, revokeApiKey } from '../functions/domain/apiKeys.js';

const [command, arg] = process.argv.slice(2);
const table = process.env.API_KEYS_TABLE;
if (!table) {
  console.error('Set API_KEYS_TABLE to the stack output ApiKeysTableName.');
  process.exit(2);
}
const store = new DynamoApiKeyStore(dynamo(), table);

if (command === 'create' && arg) {
  const { key, record } = await createApiKey(store, arg);
  console.log(`Created key ${record.id} (${record.name}). The key, shown only now:\n${key}`);
} else if (command === 'list') {
  for (const r of await store.list()) {
    console.log(`${r.id}  ${r.name}  created ${new Date(r.createdAt).toISOString()}${r.revokedAt ? `  REVOKED ${new Date(r.revokedAt).toISOString()}` : ''}`);
  }
} else if (command === 'revoke' && arg) {
  const revoked = await revokeApiKey(store, arg);
  if (!revoked) {
    console.error(`No key with id ${arg}.`);
    process.exit(1);
  }
  console.log(`Revoked ${revoked.id} (${revoked.name}). Authorizer caches forget it within 60 s.`);
} else {
  console.error('usage: api-keys create <name> | list | revoke <id>');
  process.exit(2);
}
