import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRoute, DEADLINE_MARGIN_MS } from '../../functions/http/route.js';
import { DEFAULT_TIMEOUT_SECONDS, RETENTION_FUNCTION, ROUTES, timeoutSecondsOf } from '../../lib/routes.js';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../local/apiServer.js';
import type { ApiHandler } from '../../local/handlers.js';
import { LAMBDA_MAX_RESPONSE_BYTES } from '../../local/invocation.js';
import { everyInterval } from '../../local/periodic.js';
import { sleep } from '../support/api.js';

/**
 * What the local gateway enforces the way Lambda and API Gateway would (docs/local-runtime.md): each
 * function's timeout, Lambda's 6 MB response limit, the HTTP API's integration timeout, and the same
 * timeout for scheduled functions. Handlers are swapped in through startApiServer's `handlers` option,
 * behind real routes; the production handlers have no test hooks.
 */

interface Gateway {
  readonly server: ApiServer;
  readonly logs: string[];
  call(method: string, path: string): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function gateway(options: ApiServerOptions): Promise<Gateway> {
  const logs: string[] = [];
  const server = await startApiServer(0, { ...options, log: (line) => logs.push(line) });
  return {
    server,
    logs,
    call: async (method, path) => {
      const res = await fetch(`${server.url}${path}`, { method });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  };
}

const json = (body: unknown) => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const GET_TOPIC = '/v1/topics/anything';
const PULL = '/v1/topics/anything/groups/g/pull';

/** A reply whose serialized JSON, as Lambda measures it, is exactly `bytes` long. */
function replyOfSize(bytes: number) {
  const empty = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: '' };
  return { ...empty, body: 'x'.repeat(bytes - JSON.stringify(empty).length) };
}

describe('the local gateway gives each handler its function timeout', () => {
  let gw: Gateway;
  const seen: Record<string, number> = {};
  const remaining: (name: string) => ApiHandler = (name) => async (_event, context) => {
    seen[name] = context.getRemainingTimeInMillis();
    return json({});
  };
  beforeAll(async () => {
    gw = await gateway({ handlers: { getTopic: remaining('getTopic'), pull: remaining('pull') } });
  });
  afterAll(() => gw.server.close());

  it('reads the timeouts from lib/routes.ts: 10 s by default, 29 s for pull', async () => {
    expect(timeoutSecondsOf(ROUTES.find((r) => r.handler === 'getTopic')!)).toBe(DEFAULT_TIMEOUT_SECONDS);
    expect(DEFAULT_TIMEOUT_SECONDS).toBe(10);
    expect((await gw.call('GET', GET_TOPIC)).status).toBe(200);
    expect((await gw.call('POST', PULL)).status).toBe(200);
    expect(seen.getTopic).toBeGreaterThan(9_000);
    expect(seen.getTopic).toBeLessThanOrEqual(10_000);
    expect(seen.pull).toBeGreaterThan(28_000);
    expect(seen.pull).toBeLessThanOrEqual(29_000);
  });
});

describe('a route handler learns its deadline', () => {
  let gw: Gateway;
  beforeAll(async () => {
    // The real route builder, behind the getTopic route with a 4 s timeout.
    const deadlineRoute = apiRoute({ run: async ({ deadline }) => ({ status: 200, body: { deadline } }) });
    gw = await gateway({ handlers: { getTopic: deadlineRoute as ApiHandler }, timeoutSeconds: { getTopic: 4 } });
  });
  afterAll(() => gw.server.close());

  it('deadline = now + the remaining time − the safety margin', async () => {
    const before = Date.now();
    const reply = await gw.call('GET', GET_TOPIC);
    const after = Date.now();
    expect(reply.status).toBe(200);
    expect(DEADLINE_MARGIN_MS).toBe(1000);
    expect(reply.body.deadline).toBeGreaterThanOrEqual(before + 4000 - DEADLINE_MARGIN_MS);
    expect(reply.body.deadline).toBeLessThanOrEqual(after + 4000 - DEADLINE_MARGIN_MS);
  });
});

describe('a handler running past its timeout', () => {
  let gw: Gateway;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let slowFinished = false;
  beforeAll(async () => {
    const slow: ApiHandler = async () => {
      await released;
      slowFinished = true;
      return json({ late: true });
    };
    const quick: ApiHandler = async () => {
      await sleep(100);
      return json({ quick: true });
    };
    gw = await gateway({ handlers: { getTopic: slow, listTopics: quick }, timeoutSeconds: { getTopic: 0.5, listTopics: 0.5 } });
  });
  afterAll(async () => {
    release();
    await gw.server.close();
  });

  it('gets 500 FunctionTimeout at its timeout, and the log says so', async () => {
    const started = Date.now();
    const reply = await gw.call('GET', GET_TOPIC);
    const took = Date.now() - started;
    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({ error: { code: 'FunctionTimeout', message: expect.stringContaining('0.5 s') } });
    expect(took).toBeGreaterThanOrEqual(490);
    expect(took).toBeLessThan(3000);
    expect(slowFinished).toBe(false);
    expect(gw.logs.some((l) => l.includes('FUNCTION TIMEOUT') && l.includes('getTopic') && l.includes('GET /v1/topics/anything'))).toBe(true);
  });

  it('its late result is dropped and logged when it finally settles', async () => {
    release();
    await sleep(100);
    expect(slowFinished).toBe(true);
    expect(gw.logs.some((l) => l.includes('getTopic') && l.includes('finished') && l.includes('dropped'))).toBe(true);
  });

  it('a handler that answers within its timeout is not cut off', async () => {
    const reply = await gw.call('GET', '/v1/topics');
    expect(reply).toEqual({ status: 200, body: { quick: true } });
  });
});

describe('the HTTP API integration timeout', () => {
  let gw: Gateway;
  beforeAll(async () => {
    const slow: ApiHandler = async () => {
      await sleep(1500);
      return json({});
    };
    gw = await gateway({ handlers: { getTopic: slow }, timeoutSeconds: { getTopic: 5 }, integrationTimeoutSeconds: 0.3 });
  });
  afterAll(() => gw.server.close());

  it('answers 503 IntegrationTimeout when it passes before the function timeout', async () => {
    const reply = await gw.call('GET', GET_TOPIC);
    expect(reply.status).toBe(503);
    expect(reply.body.error.code).toBe('IntegrationTimeout');
    expect(gw.logs.some((l) => l.includes('INTEGRATION TIMEOUT'))).toBe(true);
  });
});

describe("Lambda's 6 MB response limit", () => {
  let gw: Gateway;
  let next: unknown;
  beforeAll(async () => {
    gw = await gateway({ handlers: { getTopic: async () => next as Awaited<ReturnType<ApiHandler>> } });
  });
  afterAll(() => gw.server.close());

  it('a reply of exactly 6,291,556 serialized bytes reaches the client', async () => {
    next = replyOfSize(LAMBDA_MAX_RESPONSE_BYTES);
    expect(LAMBDA_MAX_RESPONSE_BYTES).toBe(6_291_556);
    const res = await fetch(`${gw.server.url}${GET_TOPIC}`);
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBe((next as { body: string }).body.length);
  });

  it('one byte more is refused with 500 ResponseTooLarge and logged loudly', async () => {
    next = replyOfSize(LAMBDA_MAX_RESPONSE_BYTES + 1);
    const reply = await gw.call('GET', GET_TOPIC);
    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({ error: { code: 'ResponseTooLarge', message: expect.stringContaining(String(LAMBDA_MAX_RESPONSE_BYTES + 1)) } });
    expect(gw.logs.some((l) => l.includes('RESPONSE TOO LARGE') && l.includes('getTopic'))).toBe(true);
  });

  it('counts the serialized JSON, escapes included: 3.2 MB of quotes is 6.4 MB on the wire to Lambda', async () => {
    next = json('"'.repeat(3_200_000));
    const reply = await gw.call('GET', GET_TOPIC);
    expect(reply.status).toBe(500);
    expect(reply.body.error.code).toBe('ResponseTooLarge');
  });
});

describe('scheduled functions', () => {
  it('get their declared timeout (trimRetention: 300 s) in the context', async () => {
    let remaining = 0;
    const service = everyInterval(RETENTION_FUNCTION.handler, 20, async () => async (_event, context) => {
      remaining = context.getRemainingTimeInMillis();
    });
    for (let i = 0; i < 100 && service.runs.succeeded === 0; i++) await sleep(20);
    await service.stop();
    expect(service.runs.succeeded).toBeGreaterThan(0);
    expect(remaining).toBeGreaterThan(299_000);
    expect(remaining).toBeLessThanOrEqual(300_000);
  });

  it('a run past its timeout is logged and counted as failed, and ticks wait for it to end', async () => {
    const logs: string[] = [];
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const service = everyInterval('slowPass', 20, async () => () => released, { timeoutSeconds: 0.2, log: (l) => logs.push(l) });
    for (let i = 0; i < 100 && service.runs.timedOut === 0; i++) await sleep(20);
    expect(service.runs).toMatchObject({ started: 1, succeeded: 0, failed: 1, timedOut: 1 });
    expect(logs.some((l) => l.includes('SCHEDULED FUNCTION TIMEOUT') && l.includes('slowPass'))).toBe(true);
    await sleep(100);
    expect(service.runs.started).toBe(1); // still running past its timeout: no second run beside it
    expect(service.runs.skipped).toBeGreaterThan(0);
    release();
    for (let i = 0; i < 100 && service.runs.started < 2; i++) await sleep(20);
    await service.stop();
    expect(service.runs.started).toBeGreaterThanOrEqual(2);
  });
});
