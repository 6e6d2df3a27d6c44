/**
 * Every HTTP route of the API and every other function, declared once. The local runtime serves the
 * routes; the CDK stack creates one function per entry, one API Gateway route per route, and grants
 * each function exactly the DynamoDB actions listed in its `access` (the actions its code calls;
 * TransactWriteItems is authorized per item as PutItem / DeleteItem, BatchGet/BatchWrite as themselves).
 */
import type { QueueId } from './queues.js';
import type { TableId } from './tables.js';

export type DynamoAction =
  | 'GetItem'
  | 'PutItem'
  | 'UpdateItem'
  | 'DeleteItem'
  | 'Query'
  | 'Scan'
  | 'BatchGetItem'
  | 'BatchWriteItem';

export type TableAccess = Partial<Record<TableId, readonly DynamoAction[]>>;

export type QueueAction = 'SendMessage';

/** StartExecution; SendTaskResponse = SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat on its task tokens. */
export type StateMachineAction = 'StartExecution' | 'SendTaskResponse';

/** SQS actions a function calls on each queue (the consumer's receive/delete rights come with its event source). */
export type QueueAccess = Partial<Record<QueueId, readonly QueueAction[]>>;

/** The timeout of every function whose spec gives none, in seconds: one value for the stack and the local runtime. */
export const DEFAULT_TIMEOUT_SECONDS = 10;

/** The timeout a function really gets, in seconds: what the stack deploys and what the local runtime enforces. */
export const timeoutSecondsOf = (spec: FunctionSpec): number => spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;

export interface FunctionSpec {
  readonly handler: string;
  /** DynamoDB actions per table (Query covers the table's indexes too). */
  readonly access: TableAccess;
  readonly queues?: QueueAccess;
  /** What the function may do with the check-back state machine (lib/checkBack.ts). */
  readonly stateMachine?: readonly StateMachineAction[];
  /**
   * Seconds; DEFAULT_TIMEOUT_SECONDS when absent. Read it through timeoutSecondsOf (the stack and the local
   * runtime both do). API Gateway HTTP APIs wait 30 s at most for an integration.
   */
  readonly timeoutSeconds?: number;
  /** MB; 512 unless the function mostly waits. */
  readonly memoryMB?: number;
  /** CDK context option (lib/stackConfig.ts) holding this function's reserved concurrency; unset there: none. */
  readonly reservedConcurrencyOption?: 'pullConcurrency' | 'produceConcurrency';
  /** CDK context options that throttle this function's route on the API stage instead of apiRateLimit / apiBurstLimit. */
  readonly routeThrottleOptions?: { readonly rate: 'pullRateLimit'; readonly burst: 'pullBurstLimit' };
}

export interface RouteSpec extends FunctionSpec {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly path: string;
}

const readCatalog = ['GetItem'] as const;
const readLog = ['Query'] as const;

export const ROUTES = [
  { method: 'PUT', path: '/v1/topics/{topic}', handler: 'putTopic', access: { Catalog: ['GetItem', 'PutItem', 'UpdateItem'] } },
  { method: 'GET', path: '/v1/topics', handler: 'listTopics', access: { Catalog: ['Scan'] } },
  { method: 'GET', path: '/v1/topics/{topic}', handler: 'getTopic', access: { Catalog: readCatalog, Log: readLog } },
  {
    method: 'DELETE',
    path: '/v1/topics/{topic}',
    handler: 'deleteTopic',
    access: { Catalog: ['GetItem', 'UpdateItem', 'Query', 'PutItem', 'DeleteItem'], GroupState: ['Query', 'BatchWriteItem'] },
  },
  {
    method: 'POST',
    path: '/v1/topics/{topic}/messages',
    handler: 'produce',
    access: {
      Catalog: readCatalog,
      Log: ['Query', 'PutItem'],
      Dedup: ['BatchGetItem', 'PutItem'],
      Delays: ['PutItem', 'GetItem'],
      Sessions: ['GetItem', 'Query', 'PutItem', 'UpdateItem'],
    },
    queues: { Delay: ['SendMessage'] },
    reservedConcurrencyOption: 'produceConcurrency',
  },
  {
    method: 'GET',
    path: '/v1/topics/{topic}/messages/{id}',
    handler: 'getMessage',
    access: { Catalog: readCatalog, Log: readLog, Dedup: ['BatchGetItem'] },
  },
  {
    method: 'GET',
    path: '/v1/topics/{topic}/partitions/{partition}/messages',
    handler: 'browsePartition',
    access: { Catalog: readCatalog, Log: readLog },
  },
  {
    method: 'PUT',
    path: '/v1/topics/{topic}/groups/{group}',
    handler: 'putGroup',
    access: { Catalog: ['GetItem', 'PutItem', 'DeleteItem'], Log: readLog, Secrets: ['GetItem', 'PutItem'] },
  },
  {
    method: 'GET',
    path: '/v1/topics/{topic}/groups/{group}',
    handler: 'getGroup',
    access: { Catalog: readCatalog, Log: readLog, GroupState: ['Query'] },
  },
  {
    method: 'POST',
    path: '/v1/topics/{topic}/groups/{group}/pull',
    handler: 'pull',
    access: { Catalog: readCatalog, Log: readLog, GroupState: ['GetItem', 'PutItem'] },
    // Idle long polls hold a Lambda instance each: cap them (docs/deploy.md, "Concurrency and throttling").
    reservedConcurrencyOption: 'pullConcurrency',
    routeThrottleOptions: { rate: 'pullRateLimit', burst: 'pullBurstLimit' },
    // Long polls wait up to 20 s, and waiting is billed per GB-second: half the memory, half the price.
    timeoutSeconds: 29,
    memoryMB: 256,
  },
  {
    method: 'POST',
    path: '/v1/topics/{topic}/groups/{group}/ack',
    handler: 'ack',
    access: { Catalog: readCatalog, GroupState: ['GetItem', 'PutItem'] },
  },
  {
    method: 'POST',
    path: '/v1/topics/{topic}/groups/{group}/nack',
    handler: 'nack',
    access: { Catalog: readCatalog, GroupState: ['GetItem', 'PutItem'] },
  },
  {
    method: 'GET',
    path: '/v1/topics/{topic}/groups/{group}/dead-letters',
    handler: 'listDeadLetters',
    access: { Catalog: readCatalog, GroupState: ['Query'] },
  },
  {
    method: 'POST',
    path: '/v1/topics/{topic}/groups/{group}/dead-letters/redrive',
    handler: 'redriveDeadLetters',
    access: { Catalog: readCatalog, GroupState: ['Query', 'GetItem', 'PutItem', 'DeleteItem'] },
  },
  {
    method: 'POST',
    path: '/v1/topics/{topic}/groups/{group}/reset',
    handler: 'resetGroup',
    access: { Catalog: ['GetItem', 'PutItem'], Log: readLog, GroupState: ['GetItem', 'PutItem', 'Query'] },
  },
  {
    method: 'GET',
    path: '/v1/topics/{topic}/delayed',
    handler: 'listDelayed',
    access: { Catalog: readCatalog, Delays: ['Query'] },
  },
  {
    method: 'GET',
    path: '/v1/topics/{topic}/delayed/{id}',
    handler: 'getDelayed',
    access: { Catalog: readCatalog, Delays: ['GetItem'] },
  },
  {
    method: 'DELETE',
    path: '/v1/topics/{topic}/delayed/{id}',
    handler: 'cancelDelayed',
    // A cancel is a conditional update (a mark TTL removes), not a delete: see functions/adapters/delayStore.ts.
    access: { Catalog: readCatalog, Delays: ['UpdateItem'] },
  },
  {
    method: 'POST',
    path: '/v1/transactions',
    handler: 'prepareTransaction',
    access: { Catalog: readCatalog, Transactions: ['PutItem'], Secrets: ['GetItem', 'PutItem'] },
    queues: { TransactionTimeout: ['SendMessage'] },
  },
  {
    method: 'GET',
    path: '/v1/transactions/{id}',
    handler: 'getTransaction',
    access: { Transactions: ['GetItem'] },
  },
  {
    method: 'POST',
    path: '/v1/transactions/{id}/commit',
    handler: 'commitTransaction',
    // One TransactWriteItems: the transaction's UpdateItem, a PutItem per segment and per producer id.
    access: { Catalog: readCatalog, Transactions: ['GetItem', 'UpdateItem'], Log: ['Query', 'PutItem'], Dedup: ['BatchGetItem', 'PutItem'] },
  },
  {
    method: 'POST',
    path: '/v1/transactions/{id}/rollback',
    handler: 'rollbackTransaction',
    access: { Transactions: ['GetItem', 'UpdateItem'] },
  },
] as const satisfies readonly RouteSpec[];

export type HandlerName = (typeof ROUTES)[number]['handler'];

/** Functions that are not API routes. */
export const RETENTION_FUNCTION = {
  handler: 'trimRetention',
  // Catalog PutItem: the pass's resume point (one item); GetItem reads it. Log UpdateItem: a partition's
  // newest segment loses its TTL attribute before TTL could take it (docs/retention.md).
  access: { Catalog: ['Scan', 'GetItem', 'PutItem', 'DeleteItem'], Log: ['Query', 'BatchWriteItem', 'UpdateItem'] },
  timeoutSeconds: 300,
} as const satisfies FunctionSpec;

/** Every 5 minutes the retention pass keeps each partition's newest segment from TTL and deletes what TTL will not take. */
export const RETENTION_SCHEDULE_MINUTES = 5;

export const API_KEY_AUTHORIZER = {
  handler: 'apiKeyAuthorizer',
  access: { ApiKeys: ['GetItem'] },
  timeoutSeconds: 5,
} as const satisfies FunctionSpec;

/**
 * Lands delayed messages: the consumer of the Delay queue (lib/queues.ts). One transaction per
 * segment appends the messages and removes (or, for repeats, advances) their pending records.
 */
export const DELAY_LANDING_FUNCTION = {
  handler: 'landDelayed',
  access: {
    Catalog: readCatalog,
    Log: ['Query', 'PutItem'],
    Dedup: ['BatchGetItem', 'PutItem'],
    Delays: ['GetItem', 'BatchGetItem', 'UpdateItem', 'DeleteItem'],
  },
  queues: { Delay: ['SendMessage'] },
  timeoutSeconds: 30,
} as const satisfies FunctionSpec;

/**
 * The delay sweep: hands pending messages due within SLUICE_DELAY_QUEUE_MAX_SECONDS to the Delay queue
 * and hands overdue ones (queued but not landed) to it again. Runs on an EventBridge Scheduler
 * schedule every DELAY_SWEEP_SECONDS (the stack) or on the local runtime's schedule driver.
 */
export const DELAY_SWEEP_FUNCTION = {
  handler: 'sweepDelayed',
  access: { Delays: ['Query', 'UpdateItem', 'GetItem', 'PutItem'] },
  queues: { Delay: ['SendMessage'] },
  timeoutSeconds: 60,
} as const satisfies FunctionSpec;

/** EventBridge Scheduler's finest rate is one minute; the local runtime may run the sweep more often (SLUICE_DELAY_SWEEP_SECONDS). */
export const DELAY_SWEEP_SECONDS = 60;

/**
 * Push dispatcher: the consumer of the Log table's stream. New segments of a topic become push work
 * (one Push queue message per push group and partition). Event source: lib/streams.ts.
 */
export const PUSH_DISPATCH_FUNCTION = {
  handler: 'dispatchPush',
  access: { Catalog: ['GetItem', 'Query'] },
  queues: { Push: ['SendMessage'] },
  timeoutSeconds: 30,
} as const satisfies FunctionSpec;

/**
 * Push worker: the consumer of the Push queue. Leases a partition's batch as pull does, delivers it to
 * the group's HTTPS endpoint or Lambda function, acks or nacks, and queues its own wake-up.
 */
export const PUSH_WORKER_FUNCTION = {
  handler: 'pushWorker',
  access: {
    Catalog: ['GetItem'],
    Log: ['Query'],
    GroupState: ['GetItem', 'PutItem', 'DeleteItem'],
    Secrets: ['GetItem'],
  },
  queues: { Push: ['SendMessage'] },
  // The queue's visibility timeout (60 s) must be at least this (Lambda refuses the event source otherwise).
  timeoutSeconds: 45,
} as const satisfies FunctionSpec;

/**
 * The transaction timeout queue's consumer: starts the check-back state machine for a transaction still
 * prepared at its timeout (or rolls back one without a check-back).
 */
export const TRANSACTION_TIMEOUT_FUNCTION = {
  handler: 'transactionTimeout',
  access: { Transactions: ['GetItem', 'UpdateItem'] },
  queues: { TransactionTimeout: ['SendMessage'] },
  stateMachine: ['StartExecution'],
  timeoutSeconds: 30,
} as const satisfies FunctionSpec;

/**
 * The check-back queue's consumer: asks the producer's endpoint (signed HTTPS POST, or a Lambda invoke
 * that the producer's function allows this role), applies the decision and answers the state machine.
 */
export const CHECK_BACK_WORKER_FUNCTION = {
  handler: 'checkBackWorker',
  access: {
    Catalog: readCatalog,
    Transactions: ['GetItem', 'UpdateItem'],
    Log: ['Query', 'PutItem'],
    Dedup: ['BatchGetItem', 'PutItem'],
    Secrets: ['GetItem', 'PutItem'],
  },
  stateMachine: ['SendTaskResponse'],
  // The CheckBack queue's visibility timeout (90 s) must be at least this.
  timeoutSeconds: 60,
} as const satisfies FunctionSpec;

/**
 * Every function that is not an API route, so that a queue's or a stream's consumer (lib/queues.ts,
 * lib/streams.ts) is found by its handler name. The stack creates the API key authorizer only with
 * auth=apiKey; the others always.
 */
export const NON_ROUTE_FUNCTIONS = [
  RETENTION_FUNCTION,
  API_KEY_AUTHORIZER,
  DELAY_LANDING_FUNCTION,
  DELAY_SWEEP_FUNCTION,
  PUSH_DISPATCH_FUNCTION,
  PUSH_WORKER_FUNCTION,
  TRANSACTION_TIMEOUT_FUNCTION,
  CHECK_BACK_WORKER_FUNCTION,
] as const satisfies readonly FunctionSpec[];

/** The non-route function whose handler is `handler`; throws when none is declared. */
export function nonRouteFunction(handler: string): FunctionSpec {
  const spec = (NON_ROUTE_FUNCTIONS as readonly FunctionSpec[]).find((f) => f.handler === handler);
  if (!spec) throw new Error(`no function spec with handler ${handler} in NON_ROUTE_FUNCTIONS (lib/routes.ts)`);
  return spec;
}
