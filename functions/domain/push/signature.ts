import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (standardwebhooks.com): the secret is "whsec_" + base64 of 24 random
 * bytes; each request carries webhook-id, webhook-timestamp (seconds) and webhook-signature
 * "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>". Tests verify ours with the `standardwebhooks`
 * package, an independent implementation.
 */
export { newSigningSecret } from '../ids.js';

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

export function signatureHeaders(secret: string, id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000).toString();
  const signature = createHmac('sha256', keyOf(secret)).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}

/** For receivers written against Sluice (and the tests): checks a v1 signature in constant time. */
export function verifySignature(secret: string, headers: Record<string, string>, body: string): boolean {
  const expected = createHmac('sha256', keyOf(secret))
    .update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`)
    .digest();
  return (headers['webhook-signature'] ?? '').split(' ').some((part) => {
    const [version, value] = part.split(',');
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
