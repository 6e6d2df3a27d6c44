import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { httpVerdict, type PushVerdict } from '../domain/push/reply.js';
import { signatureHeaders } from '../domain/push/signature.js';
import { isPublicAddress } from './addressGuard.js';

export interface HttpPushTarget {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  readonly signingSecret: string;
}

export interface HttpPushOptions {
  /** The local runtime allows private and loopback endpoints (API.md); the deployed stack never does. */
  readonly allowPrivateAddresses: boolean;
}

/** Reply bytes read at most: enough for `{"failed": [...]}` of a full batch; the rest is not read. */
export const MAX_REPLY_BYTES = 64 * 1024;

export class PushRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PushRefused';
  }
}

/**
 * A lookup for http.request that resolves, refuses non-public addresses, and connects to exactly the
 * address it checked. Redirects are never followed (a 3xx is a failed delivery), so a public URL cannot
 * bounce the request to a private one.
 */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { all: true, verbatim: true })
      .then((addresses) => {
        const refused = addresses.find((a) => !allowPrivate && !isPublicAddress(a.address));
        if (refused) throw new PushRefused(`push URL host ${hostname} resolves to ${refused.address}, which is not a public address`);
        const chosen = addresses[0];
        if (!chosen) throw new PushRefused(`push URL host ${hostname} does not resolve`);
        if ((options as { all?: boolean }).all) callback(null, [{ address: chosen.address, family: chosen.family }]);
        else callback(null, chosen.address, chosen.family);
      })
      .catch((error: Error) => callback(error as NodeJS.ErrnoException, '', 0));
  };
}

/** What a signed POST came back with: the reply (status, retry-after, body text capped), or why there was none. */
export type SignedPostOutcome =
  | { readonly status: number; readonly retryAfter?: string; readonly text: string }
  | { readonly failure: string };

/** POSTs one signed batch; every outcome becomes a verdict (network errors and timeouts fail the batch). */
export async function postBatch(target: HttpPushTarget, messageId: string, body: string, options: HttpPushOptions): Promise<PushVerdict> {
  const outcome = await postSigned(target, messageId, body, options);
  if ('failure' in outcome) return { kind: 'failed', reason: outcome.failure };
  return httpVerdict(outcome.status, outcome.retryAfter, outcome.text);
}

/**
 * POSTs a body signed with Standard Webhooks headers (push batches, transaction check-backs) to a URL that
 * must be https and public (unless private addresses are allowed); never follows redirects.
 */
export async function postSigned(target: HttpPushTarget, messageId: string, body: string, options: HttpPushOptions): Promise<SignedPostOutcome> {
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    return { failure: 'URL does not parse' };
  }
  if (url.protocol !== 'https:' && !(options.allowPrivateAddresses && url.protocol === 'http:')) {
    return { failure: `URL scheme ${url.protocol} is not allowed` };
  }
  // An IP literal never goes through a lookup: check it here.
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (!options.allowPrivateAddresses && isIP(literal) !== 0 && !isPublicAddress(literal)) {
    return { failure: `URL host ${url.hostname} is not a public address` };
  }
  const headers = {
    ...target.headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'sluice-push/1',
    ...signatureHeaders(target.signingSecret, messageId, body),
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<SignedPostOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: SignedPostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const req = send(url, { method: 'POST', headers, lookup: guardedLookup(options.allowPrivateAddresses) }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size >= MAX_REPLY_BYTES) return;
        chunks.push(chunk);
        size += chunk.length;
        if (size >= MAX_REPLY_BYTES) res.destroy();
      });
      const done = () => {
        const text = Buffer.concat(chunks).subarray(0, MAX_REPLY_BYTES).toString('utf8');
        const retryAfter = res.headers['retry-after'];
        finish({ status: res.statusCode ?? 0, text, ...(retryAfter !== undefined ? { retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter } : {}) });
      };
      res.on('end', done);
      res.on('close', done);
      res.on('error', () => finish({ failure: 'the reply broke off' }));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ failure: `no reply within ${target.timeoutSeconds} s` });
    }, target.timeoutSeconds * 1000);
    req.on('error', (error) => finish({ failure: error instanceof PushRefused ? error.message : `network error: ${error.message}` }));
    req.end(body);
  });
}

/**
 * Checks a push URL when a group is PUT: in the deployed stack (private addresses not allowed) it must be
 * https and resolve only to public addresses. The check is repeated at every delivery (DNS may change);
 * this one gives the user a clear 400 at once. Returns the reason it is refused, or undefined.
 */
export async function refusedPushUrl(raw: string, options: HttpPushOptions): Promise<string | undefined> {
  if (options.allowPrivateAddresses) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'delivery.url does not parse';
  }
  if (url.protocol !== 'https:') return 'delivery.url must be https:// in the deployed stack';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) return isPublicAddress(host) ? undefined : `delivery.url host ${host} is not a public address`;
  try {
    const addresses = await lookup(host, { all: true, verbatim: true });
    const bad = addresses.find((a) => !isPublicAddress(a.address));
    return bad ? `delivery.url host ${host} resolves to ${bad.address}, which is not a public address` : undefined;
  } catch {
    return `delivery.url host ${host} does not resolve`;
  }
}
