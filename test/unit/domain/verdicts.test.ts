/**
 * Word-for-word tests of pure functions whose answers reach clients or the push worker: push reply verdicts
 * (reasons included), expression error texts, the delivered-body limits at their edges, JSONata truthiness.
 */
import { describe, expect, it } from 'vitest';
import { httpVerdict, lambdaVerdict, retryAfterSeconds } from '../../../functions/domain/push/reply.js';
import {
  checkExpression,
  evaluateExpression,
  ExpressionFailure,
  ExpressionSyntaxError,
  isTruthy,
  toDeliveredBody,
} from '../../../functions/domain/groups/expression.js';
import { LIMITS } from '../../../functions/domain/limits.js';

const NOW = Date.UTC(2030, 0, 1, 12, 0, 0);

/** The error a function throws (fails the test when it returns). */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('push reply verdicts, word for word', () => {
  it('retry-after: delta seconds (trimmed), an HTTP date, or nothing usable', () => {
    expect(retryAfterSeconds(' 7 ', NOW)).toBe(7);
    expect(retryAfterSeconds('Jan 1 2030 12:00:20 GMT', NOW)).toBe(20);
    expect(retryAfterSeconds('2030-01-01T12:00:10Z', NOW)).toBe(10);
    expect(retryAfterSeconds('soon', NOW)).toBeUndefined();
    expect(retryAfterSeconds('   ', NOW)).toBeUndefined();
    expect(retryAfterSeconds(undefined, NOW)).toBeUndefined();
    expect(retryAfterSeconds('99999', NOW)).toBe(3600);
    expect(retryAfterSeconds('2029-12-31T00:00:00Z', NOW)).toBe(0);
  });

  it('HTTP: statuses and bodies', () => {
    expect(httpVerdict(503, 'soon', '', NOW)).toEqual({ kind: 'retryLater', retryAfterSeconds: 5, slowDown: true, reason: 'endpoint answered 503' });
    expect(httpVerdict(429, '3', '', NOW)).toEqual({ kind: 'retryLater', retryAfterSeconds: 3, slowDown: true, reason: 'endpoint answered 429' });
    expect(httpVerdict(404, undefined, '', NOW)).toEqual({ kind: 'failed', reason: 'endpoint answered 404' });
    expect(httpVerdict(199, undefined, '', NOW)).toEqual({ kind: 'failed', reason: 'endpoint answered 199' });
    expect(httpVerdict(300, undefined, '', NOW)).toEqual({ kind: 'failed', reason: 'endpoint answered 300' });
    expect(httpVerdict(299, undefined, '', NOW)).toEqual({ kind: 'delivered' });
    for (const body of ['null', '[1]', '"text"', '5', 'not json', ' ', '{}', '{"errno":0}', '{"failed":[]}']) {
      expect(httpVerdict(200, undefined, body, NOW)).toEqual({ kind: 'delivered' });
    }
    expect(httpVerdict(200, undefined, '{"failed":["a",1,"b"]}', NOW)).toEqual({ kind: 'partial', failedIds: ['a', 'b'] });
    expect(httpVerdict(200, undefined, '{"failed":[],"errno":1000001}', NOW)).toEqual({
      kind: 'unprocessable',
      reason: 'endpoint answered errno 1000001 (unprocessable)',
    });
    expect(httpVerdict(200, undefined, '{"errno":1000000}', NOW)).toEqual({ kind: 'delivered', slowDown: true });
    expect(httpVerdict(200, undefined, '{"errno":1000002}', NOW)).toEqual({
      kind: 'retryLater',
      retryAfterSeconds: 1,
      slowDown: false,
      reason: 'endpoint answered errno 1000002',
    });
    expect(httpVerdict(200, undefined, '{"errno":"x"}', NOW)).toEqual({ kind: 'failed', reason: 'endpoint answered errno "x"' });
  });

  it('Lambda: function errors, batchItemFailures, malformed answers', () => {
    expect(lambdaVerdict('Unhandled', null)).toEqual({ kind: 'failed', reason: 'function error: Unhandled' });
    expect(lambdaVerdict(undefined, null)).toEqual({ kind: 'delivered' });
    expect(lambdaVerdict(undefined, { batchItemFailures: [] })).toEqual({ kind: 'delivered' });
    expect(lambdaVerdict(undefined, { batchItemFailures: [{ itemIdentifier: 'a' }] })).toEqual({ kind: 'partial', failedIds: ['a'] });
    for (const failures of [[null], [{ itemIdentifier: 'a' }, { itemIdentifier: 5 }], [{ itemIdentifier: '' }]]) {
      expect(lambdaVerdict(undefined, { batchItemFailures: failures })).toEqual({ kind: 'failed', reason: 'malformed batchItemFailures' });
    }
  });
});

describe('expression texts and limits', () => {
  it('names its errors', async () => {
    const syntax = thrown(() => checkExpression('filter', '1 +'));
    expect(syntax).toBeInstanceOf(ExpressionSyntaxError);
    expect(syntax.name).toBe('ExpressionSyntaxError');
    expect(syntax.message).toBe('filter has a syntax error (S0207) at position 3: Unexpected end of expression.');
    const failure = await rejected(evaluateExpression('transform', '1 +', {}));
    expect(failure).toBeInstanceOf(ExpressionFailure);
    expect(failure.name).toBe('ExpressionFailure');
    expect(failure.message).toBe('transform has a syntax error (S0207) at position 3: Unexpected end of expression');
  });

  it('describes what an evaluation threw: jsonata code, error name, or only the message', async () => {
    expect((await rejected(evaluateExpression('transform', '$error("boom")', {}))).message).toBe('transform failed: D3137 boom (at position 7)');
    const input = {
      range: () => {
        throw new RangeError('r');
      },
      plain: () => {
        throw new Error('p');
      },
    };
    expect((await rejected(evaluateExpression('transform', 'range()', input))).message).toBe('transform failed: RangeError: r (at position 6)');
    expect((await rejected(evaluateExpression('transform', 'plain()', input))).message).toBe('transform failed: p (at position 6)');
  });

  it('a result that is not JSON fails, naming the JavaScript error without a position', () => {
    const error = thrown(() => toDeliveredBody('transform', { n: 1n }));
    expect(error).toBeInstanceOf(ExpressionFailure);
    expect(error.message).toBe('transform result is not JSON: TypeError: Do not know how to serialize a BigInt');
  });

  it('a delivered body may be exactly the message size, not a byte more', () => {
    const exact = 'x'.repeat(LIMITS.maxMessageBytes - 2);
    expect(toDeliveredBody('transform', exact)).toBe(exact);
    expect(thrown(() => toDeliveredBody('transform', `${exact}x`)).message).toBe(
      `transform result is ${LIMITS.maxMessageBytes + 1} bytes of JSON; a delivered body may have at most ${LIMITS.maxMessageBytes}`,
    );
  });

  it('counts nesting of arrays and objects only, outside strings, siblings not adding up', () => {
    const depth = LIMITS.maxNestingDepth;
    const arrays = (n: number, inner: unknown = 1): unknown => (n === 0 ? inner : [arrays(n - 1, inner)]);
    const objects = (n: number): unknown => (n === 0 ? 1 : { a: objects(n - 1) });
    const tooDeep = `transform result nests arrays and objects more than ${depth} levels deep`;
    expect(toDeliveredBody('transform', arrays(depth))).toEqual(arrays(depth));
    expect(toDeliveredBody('transform', objects(depth))).toEqual(objects(depth));
    expect(thrown(() => toDeliveredBody('transform', arrays(depth + 1))).message).toBe(tooDeep);
    expect(thrown(() => toDeliveredBody('transform', objects(depth + 1))).message).toBe(tooDeep);
    // Brackets in strings, also after an escaped quote, do not count.
    const inString = arrays(depth, '"[[[{{{');
    expect(toDeliveredBody('transform', inString)).toEqual(inString);
    // Siblings: a wide flat object, arrays and objects side by side.
    const wide = {
      ...Object.fromEntries(Array.from({ length: depth + 5 }, (_, i) => [`k${i}`, i])),
      arrays: Array.from({ length: depth + 5 }, () => [1]),
      objects: Array.from({ length: depth + 5 }, () => ({ a: 1 })),
    };
    expect(toDeliveredBody('transform', wide)).toEqual(wide);
  });

  it('JSONata truthiness', () => {
    expect(isTruthy(true)).toBe(true);
    expect(isTruthy(false)).toBe(false);
    expect(isTruthy({ a: 1 })).toBe(true);
    expect(isTruthy({ _jsonata_function: 1 })).toBe(false);
    expect(isTruthy({ _jsonata_lambda: 1 })).toBe(false);
    expect(isTruthy(1n)).toBe(false);
    expect(isTruthy([0, 'x'])).toBe(true);
    expect(isTruthy([0, ''])).toBe(false);
  });
});
