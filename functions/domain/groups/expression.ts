/**
 * JSONata expressions of a consumer group: `filter.expression` and `transform` (API.md, "Expression
 * filter and transform"). Compiled once per warm process (cached by their text), evaluated with
 * jsonata's own guardrails: a time limit and an evaluation-depth limit checked at every evaluation
 * step, and a cap on the sequences an expression builds.
 *
 * Why jsonata's guardrails and not a timer: `evaluate` is async, but it only ever awaits values that
 * are already there, so a looping expression never yields to the event loop and a `Promise.race`
 * timeout would never fire. jsonata (≥ 2.1) checks `timeout` and `stack` on entry to every
 * evaluation step, so a loop or a runaway recursion throws D1012 / D1011 within one step of the limit.
 * What the guardrails cannot interrupt is one long call into a built-in function (`$pad("x", 1e8)`
 * takes ~0.5 s, a regular expression that backtracks catastrophically may take longer): the time is
 * checked again when that call returns. The sequence cap keeps most built-ins short (`$string` of the
 * longest allowed sequence takes ~50 ms), and the batch budget (EXPRESSION_LIMITS.batchBudgetMs) stops
 * a pull from starting new evaluations once it is spent.
 */
import jsonata from 'jsonata';
import { LIMITS } from '../limits.js';

export const EXPRESSION_LIMITS = {
  /** API.md: an expression whose text is over 4 KB (UTF-8 bytes) is refused at PUT. */
  maxBytes: 4096,
  /**
   * Time one evaluation of one message may take. Real filters and transforms take microseconds; 50 ms
   * still allows heavy ones, and a looping expression costs at most 50 ms per message before that
   * message goes to the dead letters.
   */
  timeoutMs: 50,
  /**
   * Nesting of jsonata evaluation steps (each call of a user function takes a few): lets a recursive
   * function go ~100 levels deep, and stays far below Node's own stack, so an expression never ends in
   * a RangeError half way through the evaluator.
   */
  maxDepth: 500,
  /**
   * Longest sequence an expression may build (ranges, path results, $map): above the 131,072 elements
   * the largest message body (256 KiB of `0,`) can hold, so no path over a real message reaches it,
   * while `[1..100000000]` fails at once instead of allocating.
   */
  maxSequence: 200_000,
  /**
   * Evaluation time one pull (one sweep of the partitions) spends at most. Messages it had no time for
   * are left where they are and evaluated by the next pull; the pull answers with what it decided.
   * 1 s leaves the pull function (29 s timeout, long polls up to 20 s) ample room.
   */
  batchBudgetMs: 1000,
  /** Compiled expressions kept per warm process (a compiled expression is a few KB). */
  cacheSize: 500,
} as const;

/** An expression that does not compile, or is too long: a client error at PUT. */
export class ExpressionSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionSyntaxError';
  }
}

/** An evaluation that threw, ran past a limit, or produced a body that cannot be delivered. */
export class ExpressionFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionFailure';
  }
}

/** jsonata's errors are plain objects ({code, position, token, message}), not Error instances. */
interface JsonataErrorLike {
  readonly code?: string;
  readonly position?: number;
  readonly message?: string;
}

function describeError(error: unknown): string {
  if (error !== null && typeof error === 'object') {
    const e = error as JsonataErrorLike;
    const code = e.code ? `${e.code} ` : error instanceof Error && error.name !== 'Error' ? `${error.name}: ` : '';
    const at = typeof e.position === 'number' ? ` (at position ${e.position})` : '';
    return `${code}${e.message ?? String(error)}${at}`;
  }
  return String(error);
}

type Compiled = { readonly ok: true; readonly expression: jsonata.Expression } | { readonly ok: false; readonly message: string };

const cache = new Map<string, Compiled>();

function compileCached(text: string): Compiled {
  const hit = cache.get(text);
  if (hit) return hit;
  let compiled: Compiled;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > EXPRESSION_LIMITS.maxBytes) {
    compiled = { ok: false, message: `is ${bytes} bytes; at most ${EXPRESSION_LIMITS.maxBytes} (UTF-8) are allowed` };
  } else {
    try {
      const expression = jsonata(text, {
        timeout: EXPRESSION_LIMITS.timeoutMs,
        stack: EXPRESSION_LIMITS.maxDepth,
        sequence: EXPRESSION_LIMITS.maxSequence,
      });
      compiled = { ok: true, expression };
    } catch (error) {
      const e = error as JsonataErrorLike;
      const at = typeof e.position === 'number' ? ` at position ${e.position}` : '';
      compiled = { ok: false, message: `has a syntax error${e.code ? ` (${e.code})` : ''}${at}: ${e.message ?? String(error)}` };
    }
  }
  // Oldest first out: Map keeps insertion order.
  if (cache.size >= EXPRESSION_LIMITS.cacheSize) cache.delete(cache.keys().next().value!);
  cache.set(text, compiled);
  return compiled;
}

/**
 * Checks an expression at PUT: throws ExpressionSyntaxError naming `field`, jsonata's message and the
 * position, or the size. A compiled expression stays cached for the deliveries that follow.
 */
export function checkExpression(field: string, text: string): void {
  const compiled = compileCached(text);
  if (!compiled.ok) throw new ExpressionSyntaxError(`${field} ${compiled.message}.`);
}

/**
 * Evaluates an expression against one input. Throws ExpressionFailure (naming `field`) when it does not
 * compile, throws, or runs past EXPRESSION_LIMITS; returns jsonata's result (undefined for "no result").
 */
export async function evaluateExpression(field: string, text: string, input: unknown): Promise<unknown> {
  const compiled = compileCached(text);
  if (!compiled.ok) throw new ExpressionFailure(`${field} ${compiled.message}`);
  try {
    return await compiled.expression.evaluate(input);
  } catch (error) {
    throw new ExpressionFailure(`${field} failed: ${describeError(error)}`);
  }
}

const isJsonataFunction = (value: unknown): boolean =>
  typeof value === 'function' ||
  (value !== null && typeof value === 'object' && ('_jsonata_lambda' in value || '_jsonata_function' in value));

/**
 * JSONata's effective boolean value ($boolean, and what its `[predicate]` filters use), except that
 * "no result" (undefined) counts as false: false for undefined, null, false, 0, "", an empty array, an
 * empty object, a function, and an array none of whose members is true by these rules; true otherwise.
 * Unlike JavaScript, `[]`, `{}` and `[0, false]` are false.
 */
export function isTruthy(value: unknown): boolean {
  if (value === undefined || value === null || isJsonataFunction(value)) return false;
  if (Array.isArray(value)) return value.some((v) => isTruthy(v));
  if (typeof value === 'string') return value.length > 0;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (typeof value === 'boolean') return value;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return false;
}

/** Levels of arrays and objects in JSON text (a flat object is 1), without recursion. */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * A transform's result as the JSON body that is delivered. "No result" (undefined) and a function
 * become null; functions inside objects and arrays are dropped, as JSON.stringify drops JavaScript
 * functions. A result over the message size limit (256 KiB of JSON) or nesting deeper than message
 * bodies may is an ExpressionFailure: it could not have been produced, and replies must stay bounded.
 */
export function toDeliveredBody(field: string, value: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, (_key, v: unknown) => (isJsonataFunction(v) ? undefined : v));
  } catch (error) {
    throw new ExpressionFailure(`${field} result is not JSON: ${describeError(error)}`);
  }
  if (text === undefined) return null;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > LIMITS.maxMessageBytes) {
    throw new ExpressionFailure(`${field} result is ${bytes} bytes of JSON; a delivered body may have at most ${LIMITS.maxMessageBytes}`);
  }
  if (jsonDepth(text) > LIMITS.maxNestingDepth) {
    throw new ExpressionFailure(`${field} result nests arrays and objects more than ${LIMITS.maxNestingDepth} levels deep`);
  }
  return JSON.parse(text) as unknown;
}
