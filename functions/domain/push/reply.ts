/**
 * What a push endpoint's answer means (API.md "Delivery", DDMQ's reply contract). Pure: the HTTP and
 * Lambda adapters hand over what they received, and the push worker acts on the verdict.
 */
export type PushVerdict =
  /** Every message of the batch was delivered; `slowDown` asks for gentler delivery (errno 1000000). */
  | { readonly kind: 'delivered'; readonly slowDown?: boolean }
  /** These messages failed (`{"failed": [ids]}` or SQS-style `batchItemFailures`); the rest were delivered. */
  | { readonly kind: 'partial'; readonly failedIds: readonly string[] }
  /** The whole batch failed: retried with backoff until maxDeliveries. */
  | { readonly kind: 'failed'; readonly reason: string }
  /** Retry the whole batch in about `retryAfterSeconds` and slow the group down (429 / 503 / errno 1000002). */
  | { readonly kind: 'retryLater'; readonly retryAfterSeconds: number; readonly slowDown: boolean; readonly reason: string }
  /** The endpoint can never process these (errno 1000001): straight to the dead letters, no retry. */
  | { readonly kind: 'unprocessable'; readonly reason: string };

export const ERRNO = {
  ok: 0,
  slowDown: 1_000_000,
  unprocessable: 1_000_001,
  retrySoon: 1_000_002,
} as const;

/** 429 / 503 without a usable retry-after: wait this long before trying again. */
const DEFAULT_RETRY_AFTER_SECONDS = 5;
/** A retry-after further out than this is capped (an endpoint must not park a group for days). */
const MAX_RETRY_AFTER_SECONDS = 3600;

/** retry-after is either delta-seconds or an HTTP date (RFC 9110, 10.2.3). */
export function retryAfterSeconds(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const trimmed = header.trim();
  const seconds = /^\d+$/.test(trimmed) ? Number(trimmed) : (Date.parse(trimmed) - now) / 1000;
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, Math.ceil(seconds)));
}

/** The verdict on an HTTP push reply: status, the retry-after header, and the body text (capped by the adapter). */
export function httpVerdict(status: number, retryAfter: string | undefined, body: string, now = Date.now()): PushVerdict {
  if (status === 429 || status === 503) {
    return {
      kind: 'retryLater',
      retryAfterSeconds: retryAfterSeconds(retryAfter, now) ?? DEFAULT_RETRY_AFTER_SECONDS,
      slowDown: true,
      reason: `endpoint answered ${status}`,
    };
  }
  if (status < 200 || status > 299) return { kind: 'failed', reason: `endpoint answered ${status}` };
  if (body.trim() === '') return { kind: 'delivered' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    // A 2xx is success unless its JSON body says otherwise; a body that is not JSON says nothing.
    return { kind: 'delivered' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { kind: 'delivered' };
  const reply = parsed as { errno?: unknown; failed?: unknown };
  if (Array.isArray(reply.failed) && reply.failed.length > 0) {
    return { kind: 'partial', failedIds: reply.failed.filter((id): id is string => typeof id === 'string') };
  }
  if (reply.errno === undefined || reply.errno === ERRNO.ok) return { kind: 'delivered' };
  if (reply.errno === ERRNO.slowDown) return { kind: 'delivered', slowDown: true };
  if (reply.errno === ERRNO.unprocessable) return { kind: 'unprocessable', reason: 'endpoint answered errno 1000001 (unprocessable)' };
  if (reply.errno === ERRNO.retrySoon) return { kind: 'retryLater', retryAfterSeconds: 1, slowDown: false, reason: 'endpoint answered errno 1000002' };
  return { kind: 'failed', reason: `endpoint answered errno ${JSON.stringify(reply.errno)}` };
}

/** The verdict on a Lambda subscriber's answer: SQS's partial batch contract; a function error fails the batch. */
export function lambdaVerdict(functionError: string | undefined, payload: unknown): PushVerdict {
  if (functionError) return { kind: 'failed', reason: `function error: ${functionError}` };
  const failures = (payload as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  if (!Array.isArray(failures) || failures.length === 0) return { kind: 'delivered' };
  const ids = failures.map((f) => (f as { itemIdentifier?: unknown })?.itemIdentifier);
  // SQS treats a malformed partial response as a failure of the whole batch; so do we.
  if (!ids.every((id): id is string => typeof id === 'string' && id.length > 0)) {
    return { kind: 'failed', reason: 'malformed batchItemFailures' };
  }
  return { kind: 'partial', failedIds: ids };
}
