import type { Config } from '../config.js';
import type { Stores } from '../domain/ports.js';
import { DynamoCatalogStore } from './catalogStore.js';
import { dynamo } from './dynamoClient.js';
import { DynamoDedupStore } from './dedupStore.js';
import { DynamoGroupStateStore } from './groupStateStore.js';
import { DynamoLogStore } from './logStore.js';
import { DynamoDelayStore } from './delayStore.js';
import { DynamoSecretStore } from './secretStore.js';
import { DynamoSessionStore } from './sessionStore.js';
import { SqsDelayQueue, sqs } from './delayQueue.js';
import { SqsPushQueue } from './pushQueue.js';

/** The domain's stores on DynamoDB, built once per process from the validated config. */
let cached: Stores | undefined;

export function dynamoStores(config: Config): Stores {
  if (cached) return cached;
  const client = dynamo();
  cached = {
    catalog: new DynamoCatalogStore(client, config.tables.catalog),
    log: new DynamoLogStore(client, config.tables.log, config.tables.dedup, config.tables.delays),
    dedup: new DynamoDedupStore(client, config.tables.dedup),
    groupState: new DynamoGroupStateStore(client, config.tables.groupState),
    delays: new DynamoDelayStore(client, config.tables.delays),
    delayQueue: new SqsDelayQueue(sqs(), config.delayQueueUrl, config.delayQueueMaxSeconds),
    secrets: new DynamoSecretStore(client, config.tables.secrets),
    pushQueue: new SqsPushQueue(sqs(), config.pushQueueUrl),
    sessions: new DynamoSessionStore(client, config.tables.sessions, config.tables.log),
  };
  return cached;
}

/** For tests that change the configuration (e.g. the delay queue's reach) between runs. */
export const forgetStores = () => {
  cached = undefined;
};
