import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { trimTopic } from '../../functions/domain/log/retention.js';
import { topicKeyOf } from '../../functions/domain/ports.js';
import { sweepExpiredItems } from '../../local/ttlSweeper.js';

/**
 * What removes one topic's old segments on AWS by `at` (epoch ms): the retention pass over this topic (it
 * keeps each partition's newest segment, deletes what TTL will not take), then DynamoDB TTL on this topic's
 * log only (local/ttlSweeper.ts; other test files' topics share the tables). Returns how many segments went.
 */
export async function retentionFor(topicName: string, at: number): Promise<number> {
  const stores = dynamoStores(loadConfig());
  const topic = await stores.catalog.getTopic(topicName);
  if (!topic) throw new Error(`no topic ${topicName}`);
  const deleted = await trimTopic(stores, topicName, at);
  const swept = await sweepExpiredItems(new DynamoDBClient({}), {
    nowSeconds: Math.floor(at / 1000),
    tables: ['Log'],
    partitionKeyPrefix: `${topicKeyOf(topic)}#`,
  });
  return deleted + (swept.Log ?? 0);
}
