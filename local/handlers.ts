import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { SqsHandler } from './sqsPoller.js';
import type { StreamHandler } from './streamPoller.js';
import type { HandlerName } from '../lib/routes.js';
import type { HttpResult } from '../functions/http/errors.js';

export type ApiHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<HttpResult>;

/**
 * The handler module of every route, as static imports (bundlers and vitest resolve these; a computed
 * import path would not). Typed by HandlerName, so a route without a handler fails to compile.
 */
export const API_HANDLERS: Record<HandlerName, () => Promise<{ handler: ApiHandler }>> = {
  putTopic: () => import('../functions/handlers/putTopic.js'),
  listTopics: () => import('../functions/handlers/listTopics.js'),
  getTopic: () => import('../functions/handlers/getTopic.js'),
  deleteTopic: () => import('../functions/handlers/deleteTopic.js'),
  produce: () => import('../functions/handlers/produce.js'),
  getMessage: () => import('../functions/handlers/getMessage.js'),
  browsePartition: () => import('../functions/handlers/browsePartition.js'),
  putGroup: () => import('../functions/handlers/putGroup.js'),
  getGroup: () => import('../functions/handlers/getGroup.js'),
  pull: () => import('../functions/handlers/pull.js'),
  ack: () => import('../functions/handlers/ack.js'),
  nack: () => import('../functions/handlers/nack.js'),
  listDeadLetters: () => import('../functions/handlers/listDeadLetters.js'),
  redriveDeadLetters: () => import('../functions/handlers/redriveDeadLetters.js'),
  resetGroup: () => import('../functions/handlers/resetGroup.js'),
  listDelayed: () => import('../functions/handlers/listDelayed.js'),
  getDelayed: () => import('../functions/handlers/getDelayed.js'),
  cancelDelayed: () => import('../functions/handlers/cancelDelayed.js'),
  prepareTransaction: () => import('../functions/handlers/prepareTransaction.js'),
  getTransaction: () => import('../functions/handlers/getTransaction.js'),
  commitTransaction: () => import('../functions/handlers/commitTransaction.js'),
  rollbackTransaction: () => import('../functions/handlers/rollbackTransaction.js'),
};

/** The consumer of each queue of lib/queues.ts, by handler name (its `consumer.handler`). */
export const QUEUE_HANDLERS: Record<string, () => Promise<{ handler: SqsHandler }>> = {
  landDelayed: () => import('../functions/handlers/landDelayed.js'),
  pushWorker: () => import('../functions/handlers/pushWorker.js'),
  transactionTimeout: () => import('../functions/handlers/transactionTimeout.js'),
  checkBackWorker: () => import('../functions/handlers/checkBackWorker.js'),
};

export type ScheduledHandler = (event: unknown, context: Context) => Promise<unknown>;

/** Functions run by a schedule (an EventBridge rule or Scheduler schedule in the stack), by handler name. */
export const SCHEDULED_HANDLERS: Record<string, () => Promise<{ handler: ScheduledHandler }>> = {
  trimRetention: () => import('../functions/handlers/trimRetention.js'),
  sweepDelayed: () => import('../functions/handlers/sweepDelayed.js'),
};

/** The consumers of a table's DynamoDB stream (lib/streams.ts), by handler name. */
export const STREAM_HANDLERS: Record<string, () => Promise<{ handler: StreamHandler }>> = {
  dispatchPush: () => import('../functions/handlers/dispatchPush.js') as Promise<{ handler: StreamHandler }>,
};
