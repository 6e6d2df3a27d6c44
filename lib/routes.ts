/**
 * Every HTTP route of the API, declared once: the local runtime serves these and the CDK stack
 * (next issue) creates one function and one API Gateway route per entry from the same list.
 * `handler` is the module under functions/handlers/ that exports `handler`.
 */
export interface RouteSpec {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly path: string;
  readonly handler: string;
}

export const ROUTES = [
  { method: 'PUT', path: '/v1/topics/{topic}', handler: 'putTopic' },
  { method: 'GET', path: '/v1/topics', handler: 'listTopics' },
  { method: 'GET', path: '/v1/topics/{topic}', handler: 'getTopic' },
  { method: 'DELETE', path: '/v1/topics/{topic}', handler: 'deleteTopic' },
  { method: 'POST', path: '/v1/topics/{topic}/messages', handler: 'produce' },
  { method: 'GET', path: '/v1/topics/{topic}/messages/{id}', handler: 'getMessage' },
  { method: 'GET', path: '/v1/topics/{topic}/partitions/{partition}/messages', handler: 'browsePartition' },
  { method: 'PUT', path: '/v1/topics/{topic}/groups/{group}', handler: 'putGroup' },
  { method: 'GET', path: '/v1/topics/{topic}/groups/{group}', handler: 'getGroup' },
  { method: 'POST', path: '/v1/topics/{topic}/groups/{group}/pull', handler: 'pull' },
  { method: 'POST', path: '/v1/topics/{topic}/groups/{group}/ack', handler: 'ack' },
  { method: 'POST', path: '/v1/topics/{topic}/groups/{group}/nack', handler: 'nack' },
  { method: 'GET', path: '/v1/topics/{topic}/groups/{group}/dead-letters', handler: 'listDeadLetters' },
  { method: 'POST', path: '/v1/topics/{topic}/groups/{group}/dead-letters/redrive', handler: 'redriveDeadLetters' },
  { method: 'POST', path: '/v1/topics/{topic}/groups/{group}/reset', handler: 'resetGroup' },
] as const satisfies readonly RouteSpec[];

export type HandlerName = (typeof ROUTES)[number]['handler'];
