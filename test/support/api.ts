import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { startApiServer, type ApiServer } from '../../local/apiServer.js';

export interface ApiReply<T = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

/** Starts the local API gateway (in this worker, so tests can inject faults into the handlers) for one test file. */
export function useApi() {
  let server: ApiServer | undefined;
  beforeAll(async () => {
    server = await startApiServer(0);
  });
  afterAll(async () => {
    await server?.close();
  });
  return async function call(method: string, path: string, body?: unknown, rawBody?: string): Promise<ApiReply> {
    const res = await fetch(`${server!.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(rawBody !== undefined ? { body: rawBody } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
}

export type Api = ReturnType<typeof useApi>;

export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Creates a topic and (optionally) a group starting at the earliest message. */
export async function topicWithGroup(api: Api, options: { partitions?: number; group?: Record<string, unknown> } = {}) {
  const topic = uniqueName('topic');
  const created = await api('PUT', `/v1/topics/${topic}`, { partitions: options.partitions ?? 1 });
  if (created.status !== 201) throw new Error(`topic not created: ${JSON.stringify(created.body)}`);
  const group = uniqueName('group');
  if (options.group !== undefined) {
    const g = await api('PUT', `/v1/topics/${topic}/groups/${group}`, { startFrom: 'earliest', ...options.group });
    if (g.status !== 201) throw new Error(`group not created: ${JSON.stringify(g.body)}`);
  }
  return { topic, group, base: `/v1/topics/${topic}`, groupPath: `/v1/topics/${topic}/groups/${group}` };
}

export async function produce(api: Api, topic: string, messages: unknown[]) {
  const reply = await api('POST', `/v1/topics/${topic}/messages`, { messages });
  if (reply.status !== 200) throw new Error(`produce failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body.results as Array<{ id: string; partition: number; offset: number; duplicate?: boolean }>;
}

export async function pullAll(api: Api, groupPath: string, body: Record<string, unknown> = {}) {
  const reply = await api('POST', `${groupPath}/pull`, { max: 100, ...body });
  if (reply.status !== 200) throw new Error(`pull failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body.messages as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function ack(api: Api, groupPath: string, receipts: string[]) {
  const reply = await api('POST', `${groupPath}/ack`, { receipts });
  if (reply.status !== 200) throw new Error(`ack failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as { acked: number; stale: string[] };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
