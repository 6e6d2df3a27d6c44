import { AsyncLocalStorage } from 'node:async_hooks';
import { NON_ROUTE_FUNCTIONS, ROUTES, timeoutSecondsOf, type FunctionSpec } from '../lib/routes.js';

/** Which function an in-process invocation belongs to, as a Lambda sandbox would know implicitly. */
export const currentInvocation = new AsyncLocalStorage<{ readonly functionName: string }>();

/**
 * Lambda's limit on what a synchronous invocation returns: the whole serialized JSON of the handler's result.
 * The quotas page says "6 MB"; the error Lambda raises names the exact number: "Response payload size
 * exceeded maximum allowed payload size (6291556 bytes)" (docs/local-runtime.md).
 */
export const LAMBDA_MAX_RESPONSE_BYTES = 6_291_556;

/** An API Gateway HTTP API waits 30 s at most for an integration (HTTP API quotas; it cannot be raised). */
export const HTTP_API_INTEGRATION_TIMEOUT_MS = 30_000;

/** Every function lib/routes.ts declares. */
export const FUNCTIONS: readonly FunctionSpec[] = [...ROUTES, ...NON_ROUTE_FUNCTIONS];

/** A function's timeout in ms, by handler name, as lib/routes.ts declares it. */
export function functionTimeoutMs(handler: string): number {
  const spec = FUNCTIONS.find((f) => f.handler === handler);
  if (!spec) throw new Error(`No function '${handler}' is declared in lib/routes.ts.`);
  return timeoutSecondsOf(spec) * 1000;
}

export type InvocationOutcome<T> =
  | { readonly kind: 'returned'; readonly value: T }
  | { readonly kind: 'threw'; readonly error: unknown }
  | { readonly kind: 'timedOut' };

export interface TimedInvocation<T> {
  /** The handler's result or error, or `timedOut` when `waitMs` passed first. */
  readonly outcome: Promise<InvocationOutcome<T>>;
  /**
   * When the handler's own work has settled. After a timeout that is later than the outcome: Lambda would
   * stop the function, but work in this process cannot be stopped, only waited for.
   */
  readonly finished: Promise<void>;
}

/**
 * Runs one invocation and waits `waitMs` at most for it. `onLate` hears of an invocation that settles after
 * it timed out (its result is dropped), so the log shows work that went on after the client got its error.
 */
export function invokeWithin<T>(
  waitMs: number,
  run: () => Promise<T>,
  onLate?: (lateByMs: number, outcome: InvocationOutcome<T>) => void,
): TimedInvocation<T> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const own = (async (): Promise<InvocationOutcome<T>> => {
    try {
      return { kind: 'returned', value: await run() };
    } catch (error) {
      return { kind: 'threw', error };
    }
  })();
  const expiry = new Promise<InvocationOutcome<T>>((resolve) => {
    timer = setTimeout(() => {
      timedOut = true;
      resolve({ kind: 'timedOut' });
    }, waitMs);
  });
  const finished = own.then((outcome) => {
    clearTimeout(timer);
    if (timedOut) onLate?.(Date.now() - started - waitMs, outcome);
  });
  return { outcome: Promise.race([own, expiry]), finished };
}
