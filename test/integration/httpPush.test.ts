/**
 * The HTTP push sender against a sink on loopback: signed requests (checked with the independent
 * `standardwebhooks` package), timeouts, redirects never followed, capped replies, and the address
 * guard refusing loopback endpoints when private addresses are not allowed (as in the deployed stack).
 * Every request of this file goes to 127.0.0.1 / ::1 only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_REPLY_BYTES, postBatch } from '../../functions/adapters/httpPush.js';
import { newSigningSecret } from '../../functions/domain/push/signature.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

describe('HTTP push sender', () => {
  let server: Server;
  let base: string;
  let handler: Handler = (_req, _body, res) => res.end();
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const secret = newSigningSecret();
  const local = { allowPrivateAddresses: true };
  const target = (path: string, timeoutSeconds = 2) => ({ url: `${base}${path}`, timeoutSeconds, signingSecret: secret, headers: { 'x-team': 'billing' } });

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ headers: req.headers, body });
        handler(req, body, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends a signed JSON batch that an independent Standard Webhooks implementation verifies', async () => {
    handler = (_req, _body, res) => res.end('{"errno": 0}');
    const body = JSON.stringify({ topic: 't', group: 'g', messages: [{ id: 'm1', body: { total: 42 } }] });
    expect(await postBatch(target('/hook'), 'batch-1', body, local)).toEqual({ kind: 'delivered' });
    const got = received.at(-1)!;
    expect(got.body).toBe(body);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-team']).toBe('billing');
    const headers = Object.fromEntries(Object.entries(got.headers).map(([k, v]) => [k, String(v)]));
    expect(new Webhook(secret).verify(got.body, headers)).toEqual(JSON.parse(body));
    expect(headers['webhook-id']).toBe('batch-1');
  });

  it('a slow endpoint times out and fails the batch', async () => {
    handler = (_req, _body, res) => setTimeout(() => res.end(), 3000);
    const verdict = await postBatch(target('/slow', 1), 'b', '{}', local);
    expect(verdict).toMatchObject({ kind: 'failed' });
    expect((verdict as { reason: string }).reason).toContain('1 s');
  });

  it('a redirect is a failure and is not followed', async () => {
    let followed = false;
    handler = (req, _body, res) => {
      if (req.url === '/elsewhere') followed = true;
      res.writeHead(302, { location: `${base}/elsewhere` }).end();
    };
    expect((await postBatch(target('/moved'), 'b', '{}', local)).kind).toBe('failed');
    expect(followed).toBe(false);
  });

  it('reads at most 64 KB of a reply', async () => {
    handler = (_req, _body, res) => {
      res.write('{"failed": ["a"');
      res.end(`${', "x"'.repeat(MAX_REPLY_BYTES)}]}`);
    };
    // The cut reply is not valid JSON: a 2xx whose body says nothing is delivered, never a crash.
    expect(await postBatch(target('/big'), 'b', '{}', local)).toEqual({ kind: 'delivered' });
  });

  it('429 with retry-after asks to retry later and slow down', async () => {
    handler = (_req, _body, res) => res.writeHead(429, { 'retry-after': '3' }).end();
    expect(await postBatch(target('/busy'), 'b', '{}', local)).toMatchObject({ kind: 'retryLater', retryAfterSeconds: 3, slowDown: true });
  });

  it('refuses loopback endpoints (literal, IPv6, or a name resolving to loopback) when private addresses are not allowed', async () => {
    const port = (server.address() as AddressInfo).port;
    const before = received.length;
    const deployed = { allowPrivateAddresses: false };
    for (const url of [`https://127.0.0.1:${port}/x`, `https://[::1]:${port}/x`, `https://localhost:${port}/x`, `https://127.9.9.9:${port}/x`]) {
      const verdict = await postBatch({ url, timeoutSeconds: 2, signingSecret: secret }, 'b', '{}', deployed);
      expect(verdict.kind, url).toBe('failed');
      expect((verdict as { reason: string }).reason, url).toMatch(/not a public address/);
    }
    // Plain http is refused in the deployed stack too.
    expect((await postBatch({ url: `${base}/x`, timeoutSeconds: 2, signingSecret: secret }, 'b', '{}', deployed)).kind).toBe('failed');
    expect(received.length).toBe(before);
  });
});
