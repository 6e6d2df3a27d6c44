import { randomBytes } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, inject } from 'vitest';
import { forgetConfig } from '../../functions/config.js';
import { startApiServer, type ApiServer } from '../../local/apiServer.js';
import { startQueueConsumers, type QueueConsumerOptions } from '../../local/consumers.js';
import type { ScheduledHandler } from '../../local/handlers.js';
import type { LocalService } from '../../local/periodic.js';
import { createQueues, queueEnvironment, type QueueUrls } from '../../local/queues.js';
import { startScheduleDriver, type ScheduleDriver } from '../../local/schedules.js';
import type { SqsPoller } from '../../local/sqsPoller.js';
import type { StreamPoller } from '../../local/streamPoller.js';
import { startStreamConsumers, type StreamConsumerOptions, type StreamConsumerSpec } from '../../local/streams.js';

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

export interface LocalServicesOptions {
  /** Seconds between delay sweeps (SLUICE_DELAY_SWEEP_SECONDS in npm start); 1 by default. */
  readonly sweepSeconds?: number;
  /** Queue consumers to run instead of their modules, timeouts, pollers per queue (local/consumers.ts). */
  readonly consumers?: QueueConsumerOptions;
  /** Scheduled handlers to run instead of their modules, by handler name. */
  readonly scheduledHandlers?: Partial<Record<string, ScheduledHandler>>;
  /** Timeouts of scheduled functions, by handler name, instead of the declared ones. */
  readonly scheduledTimeoutSeconds?: Partial<Record<string, number>>;
  /**
   * Queues of this file's own (a fresh prefix), with this worker's queue variables (DELAY_QUEUE_URL) pointed
   * at them until afterAll. Without it the file shares the suite's queues with every other file that polls
   * them: fine for the real consumers (a message is landed by whichever poller gets it), wrong for a file that
   * injects a failing consumer or counts deliveries. The tables stay shared: another file's sweep may still
   * hand this file's pending delayed messages to its own queue.
   */
  readonly ownQueues?: boolean;
  /**
   * The DynamoDB stream consumers (local/streams.ts STREAM_CONSUMERS, or `consumers`), with handlers, timeouts
   * and the idle poll of this file's own. They read the suite's shared Log table, from LATEST.
   */
  readonly streams?: StreamConsumerOptions & { readonly consumers?: readonly StreamConsumerSpec[] };
}

/**
 * Runs, for one test file and in this worker, what npm start runs besides the API: the SQS pollers of the
 * queues' consumers, the DynamoDB stream consumers and the schedule driver (the delay sweep), as
 * local/runtime.ts wires them.
 */
export function useLocalServices(options: LocalServicesOptions = {}) {
  const services: LocalService[] = [];
  const state: { queues?: QueueUrls; pollers: SqsPoller[]; streamPollers: StreamPoller[]; driver?: ScheduleDriver } = {
    pollers: [],
    streamPollers: [],
  };
  let savedEnv: Record<string, string | undefined> | undefined;
  beforeAll(async () => {
    let queues = inject('queueUrls');
    if (options.ownQueues) {
      const sqs = new SQSClient({});
      queues = await createQueues(sqs, uniqueName(inject('tablePrefix')));
      sqs.destroy();
      const env = queueEnvironment(queues);
      savedEnv = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
      Object.assign(process.env, env);
      forgetConfig();
    }
    state.queues = queues;
    state.pollers = await startQueueConsumers(queues, { log: () => undefined, ...options.consumers });
    services.push(...state.pollers);
    const { consumers: streamConsumers, ...streamOptions } = options.streams ?? {};
    state.streamPollers = await startStreamConsumers(inject('tablePrefix'), streamConsumers, { log: () => undefined, ...streamOptions });
    services.push(...state.streamPollers);
    state.driver = await startScheduleDriver({
      prefix: inject('tablePrefix'),
      intervalSeconds: { sweepDelayed: options.sweepSeconds ?? 1 },
      handlers: options.scheduledHandlers ?? {},
      timeoutSeconds: options.scheduledTimeoutSeconds ?? {},
      log: () => undefined,
    });
    services.push(state.driver);
  });
  afterAll(async () => {
    for (const service of services.splice(0).reverse()) await service.stop();
    if (savedEnv) {
      for (const [k, v] of Object.entries(savedEnv)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      forgetConfig();
    }
  });
  return state;
}
