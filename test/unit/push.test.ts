import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { isPublicAddress } from '../../functions/adapters/addressGuard.js';
import { httpVerdict, lambdaVerdict, retryAfterSeconds } from '../../functions/domain/push/reply.js';
import { newSigningSecret, signatureHeaders, verifySignature } from '../../functions/domain/push/signature.js';

describe('push replies (DDMQ contract)', () => {
  it('2xx without a body, with a non-JSON body, or errno 0 is delivered', () => {
    expect(httpVerdict(200, undefined, '')).toEqual({ kind: 'delivered' });
    expect(httpVerdict(204, undefined, 'ok')).toEqual({ kind: 'delivered' });
    expect(httpVerdict(200, undefined, '{"errno": 0}')).toEqual({ kind: 'delivered' });
  });

  it('errno 1000000 slows down, 1000001 is unprocessable, 1000002 retries in a second, others fail', () => {
    expect(httpVerdict(200, undefined, '{"errno": 1000000}')).toEqual({ kind: 'delivered', slowDown: true });
    expect(httpVerdict(200, undefined, '{"errno": 1000001}').kind).toBe('unprocessable');
    expect(httpVerdict(200, undefined, '{"errno": 1000002}')).toMatchObject({ kind: 'retryLater', retryAfterSeconds: 1 });
    expect(httpVerdict(200, undefined, '{"errno": 7}').kind).toBe('failed');
  });

  it('`failed` ids fail only those messages', () => {
    expect(httpVerdict(200, undefined, '{"failed": ["a", "b"]}')).toEqual({ kind: 'partial', failedIds: ['a', 'b'] });
  });

  it('429 and 503 retry after retry-after (seconds or an HTTP date) and slow down; other statuses fail', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(httpVerdict(429, '7', '', now)).toMatchObject({ kind: 'retryLater', retryAfterSeconds: 7, slowDown: true });
    expect(httpVerdict(503, 'Thu, 01 Jan 2026 00:00:30 GMT', '', now)).toMatchObject({ retryAfterSeconds: 30 });
    expect(httpVerdict(503, undefined, '', now)).toMatchObject({ retryAfterSeconds: 5 });
    expect(retryAfterSeconds('999999')).toBe(3600);
    for (const status of [301, 400, 404, 500, 502]) expect(httpVerdict(status, undefined, '').kind).toBe('failed');
  });

  it('a Lambda subscriber: batchItemFailures fail those ids; a function error or a malformed answer fails the batch', () => {
    expect(lambdaVerdict(undefined, null)).toEqual({ kind: 'delivered' });
    expect(lambdaVerdict(undefined, { batchItemFailures: [{ itemIdentifier: 'm1' }] })).toEqual({ kind: 'partial', failedIds: ['m1'] });
    expect(lambdaVerdict('Unhandled', { batchItemFailures: [] }).kind).toBe('failed');
    expect(lambdaVerdict(undefined, { batchItemFailures: [{ id: 'm1' }] }).kind).toBe('failed');
  });
});

describe('push signatures (Standard Webhooks)', () => {
  it('verify with the standardwebhooks package, and fail when the body changes', () => {
    const secret = newSigningSecret();
    const body = JSON.stringify({ topic: 't', messages: [{ id: 'm1', body: 'ü' }] });
    const headers = signatureHeaders(secret, 'msg_1', body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow();
    expect(verifySignature(secret, headers, body)).toBe(true);
    expect(verifySignature(newSigningSecret(), headers, body)).toBe(false);
  });
});

describe('push address guard', () => {
  it('refuses private, loopback, link-local, metadata, CGNAT, multicast and mapped addresses', () => {
    for (const address of [
      '127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip',
    ]) {
      expect(isPublicAddress(address), address).toBe(false);
    }
  });

  it('allows public unicast addresses', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      expect(isPublicAddress(address), address).toBe(true);
    }
  });
});
