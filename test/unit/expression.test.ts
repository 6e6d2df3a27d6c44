import { describe, expect, it, vi } from 'vitest';
import {
  checkExpression,
  evaluateExpression,
  EXPRESSION_LIMITS,
  ExpressionFailure,
  ExpressionSyntaxError,
  isTruthy,
  toDeliveredBody,
} from '../../functions/domain/groups/expression.js';
import { expressionInput, screenMessages, type GroupRules } from '../../functions/domain/groups/filter.js';
import type { LogMessage } from '../../functions/domain/messages.js';

/** Counts jsonata compilations, to show that an expression is compiled once per process. */
const compilations = vi.hoisted(() => ({ texts: [] as string[] }));
vi.mock('jsonata', async (importOriginal) => {
  const real = ((await importOriginal()) as { default: (text: string, options?: object) => unknown }).default;
  return {
    default: (text: string, options?: object) => {
      compilations.texts.push(text);
      return real(text, options);
    },
  };
});

const message = (offset: number, fields: Partial<LogMessage> = {}): LogMessage => ({
  id: `m-${offset}`,
  partition: 0,
  offset,
  producedAt: '2030-01-01T00:00:00.000Z',
  body: { total: offset * 50 },
  tags: [],
  headers: {},
  ...fields,
});

async function failureOf(text: string, input: unknown = {}): Promise<ExpressionFailure> {
  try {
    await evaluateExpression('filter.expression', text, input);
  } catch (error) {
    if (error instanceof ExpressionFailure) return error;
    throw error;
  }
  throw new Error(`expected ${text} to fail`);
}

describe('compiling expressions', () => {
  it('accepts a valid expression and compiles it once per process, whatever uses it', async () => {
    const text = 'body.total > 100 and "vip" in tags';
    expect(() => checkExpression('filter.expression', text)).not.toThrow();
    expect(await evaluateExpression('filter.expression', text, { body: { total: 101 }, tags: ['vip'] })).toBe(true);
    expect(await evaluateExpression('filter.expression', text, { body: { total: 99 }, tags: ['vip'] })).toBe(false);
    checkExpression('filter.expression', text);
    expect(compilations.texts.filter((t) => t === text)).toHaveLength(1);
  });

  it('refuses a syntax error with the field, jsonata code, position and message', () => {
    expect(() => checkExpression('filter.expression', 'body.total > (')).toThrow(ExpressionSyntaxError);
    expect(() => checkExpression('filter.expression', 'body.total > (')).toThrow(
      /^filter\.expression has a syntax error \(S0203\) at position 14: Expected "\)" before end of expression\.$/,
    );
    expect(() => checkExpression('transform', '{"a": body.x')).toThrow(/^transform has a syntax error \(S0\d+\) at position 12: /);
  });

  it('refuses an expression over 4096 UTF-8 bytes, counting bytes rather than characters', () => {
    const fits = `"${'x'.repeat(EXPRESSION_LIMITS.maxBytes - 2)}"`;
    expect(Buffer.byteLength(fits)).toBe(4096);
    expect(() => checkExpression('transform', fits)).not.toThrow();
    // 2,100 characters, 4,202 bytes: under 4 KB of characters, over 4 KB of UTF-8.
    const wide = `"${'é'.repeat(2100)}"`;
    expect(wide.length).toBeLessThan(4096);
    expect(() => checkExpression('transform', wide)).toThrow(/^transform is 4202 bytes; at most 4096 \(UTF-8\) are allowed\.$/);
  });
});

describe('evaluating with limits', () => {
  it('an infinitely recursive function fails within the time limit instead of hanging', async () => {
    const started = Date.now();
    const failure = await failureOf('($f := function($x){$f($x)}; $f(1))');
    const took = Date.now() - started;
    expect(failure.message).toMatch(/^filter\.expression failed: D1012 Evaluation timeout after 50 milliseconds/);
    expect(took).toBeGreaterThanOrEqual(EXPRESSION_LIMITS.timeoutMs);
    // Not hanging is the point; the bound is loose because a loaded CI machine stretches every timer.
    expect(took).toBeLessThan(5000);
  });

  it('a recursion that builds deeper than the depth limit fails with D1011 (or, on a loaded machine, the time limit first)', async () => {
    const failure = await failureOf('($f := function($n){ $n = 0 ? 1 : {"a": $f($n - 1)} }; $f(100000))');
    // 500 nested steps take a few ms here; under heavy load the 50 ms limit can come first. Either way the
    // evaluation is cut off instead of exhausting the process's stack.
    expect(failure.message).toMatch(/D1011 Stack overflow|D1012 Evaluation timeout/);
  });

  it('a huge range fails at once instead of allocating', async () => {
    const started = Date.now();
    const failure = await failureOf('$count([1..100000000])');
    expect(failure.message).toMatch(/D2014/);
    expect(Date.now() - started).toBeLessThan(200);
    // Below jsonata's own 1e7 cap, the sequence limit (200,000) still applies; jsonata's message quotes the size asked for.
    expect((await failureOf('$count([1..5000000])')).message).toMatch(/D2015 The maximum sequence length of 5000000 was exceeded/);
    expect((await failureOf('$count([1..200001])')).message).toMatch(/D2015/);
    expect(await evaluateExpression('f', '$count([1..200000])', {})).toBe(200000);
  });

  it('a nested loop that never recurses deeply is stopped by the time limit', async () => {
    const started = Date.now();
    const failure = await failureOf('$map([1..100000], function($x){ $map([1..100000], function($y){ $y }) })');
    expect(failure.message).toMatch(/D1012/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a runtime error names the field, the jsonata code and the position', async () => {
    const failure = await failureOf('$number(body.n) > 0', { body: { n: 'abc' } });
    expect(failure.message).toBe('filter.expression failed: D3030 Unable to cast value to a number: "abc" (at position 8)');
  });
});

describe('truthiness (JSONata $boolean, no result = false)', () => {
  it.each([
    [undefined, false],
    [null, false],
    [false, false],
    [0, false],
    ['', false],
    [[], false],
    [{}, false],
    [[0, false, '', null], false],
    [true, true],
    [1, true],
    [-0.5, true],
    ['false', true],
    ['0', true],
    [[0, 1], true],
    [[[false], [true]], true],
    [{ a: null }, true],
  ])('%j → %s', (value, expected) => {
    expect(isTruthy(value)).toBe(expected);
  });

  it('a function result is false', async () => {
    expect(isTruthy(await evaluateExpression('f', 'function($x){ $x }', {}))).toBe(false);
  });
});

describe('transform results', () => {
  it('no result is a null body; functions are dropped; the result is plain JSON', async () => {
    expect(toDeliveredBody('transform', undefined)).toBeNull();
    expect(toDeliveredBody('transform', await evaluateExpression('t', 'function($x){ $x }', {}))).toBeNull();
    const value = await evaluateExpression('t', '{"n": [1..3], "f": function($x){ $x }}', {});
    expect(toDeliveredBody('transform', value)).toEqual({ n: [1, 2, 3] });
  });

  it('a result over 256 KiB of JSON or nested deeper than 100 levels fails', async () => {
    const big = await evaluateExpression('t', '$pad("", 300000, "x")', {});
    expect(() => toDeliveredBody('transform', big)).toThrow(/^transform result is 300002 bytes of JSON; a delivered body may have at most 262144$/);
    let deep: unknown = 'x';
    for (let i = 0; i < 101; i++) deep = { a: deep };
    expect(() => toDeliveredBody('transform', deep)).toThrow(/more than 100 levels deep/);
    // Brackets inside strings do not count.
    expect(toDeliveredBody('transform', { s: '['.repeat(500) })).toEqual({ s: '['.repeat(500) });
  });
});

describe('screenMessages', () => {
  it('sees body, key, tags, headers, partition, offset and producedAt; a base64 message shows bodyBase64 instead of body', () => {
    expect(expressionInput(message(3, { key: 'k', tags: ['a'], headers: { h: 'v' } }))).toEqual({
      body: { total: 150 },
      key: 'k',
      tags: ['a'],
      headers: { h: 'v' },
      partition: 0,
      offset: 3,
      producedAt: '2030-01-01T00:00:00.000Z',
    });
    const binary = expressionInput(message(1, { body: undefined, bodyBase64: 'AAEC' }));
    expect(binary).not.toHaveProperty('body');
    expect(binary).not.toHaveProperty('key');
    expect(binary.bodyBase64).toBe('AAEC');
  });

  it('applies tags, then the expression, then the transform, one verdict per message in order', async () => {
    const rules: GroupRules = {
      filter: { tags: { any: ['eu'] }, expression: 'body.total > 100' },
      transform: '{"total": body.total, "at": offset}',
    };
    const messages = [
      message(1, { tags: ['eu'] }), // total 50: expression false
      message(3, { tags: ['eu'] }), // total 150: delivered
      message(4, { tags: ['us'] }), // total 200 but wrong tag
      message(5, { tags: ['eu'], body: undefined, bodyBase64: 'AAEC' }), // no body: no result → false
    ];
    const verdicts = await screenMessages(rules, messages);
    expect(verdicts).toEqual([
      { action: 'skip' },
      { action: 'deliver', message: { ...messages[1], body: { total: 150, at: 3 } } },
      { action: 'skip' },
      { action: 'skip' },
    ]);
  });

  it('a transform of a base64 message delivers its result as body, without bodyBase64', async () => {
    const [verdict] = await screenMessages({ transform: '{"size": $length(bodyBase64)}' }, [message(1, { body: undefined, bodyBase64: 'AAEC' })]);
    expect(verdict).toEqual({ action: 'deliver', message: { ...message(1), body: { size: 4 } } });
    expect((verdict as { message: LogMessage }).message).not.toHaveProperty('bodyBase64');
  });

  it('a transform without a result delivers a null body; without rules the message is delivered as it is', async () => {
    const m = message(2);
    expect(await screenMessages({ transform: 'body.missing' }, [m])).toEqual([{ action: 'deliver', message: { ...m, body: null } }]);
    const [plain] = await screenMessages({}, [m]);
    expect(plain).toEqual({ action: 'deliver', message: m });
    expect((plain as { message: LogMessage }).message).toBe(m);
  });

  it('an expression that throws or loops makes exactly that message dead, with the reason', async () => {
    const rules: GroupRules = { filter: { expression: 'body.loop ? ($f := function($x){$f($x)}; $f(1)) : $number(body.n) > 0' } };
    const messages = [
      message(0, { body: { n: '1' } }),
      message(1, { body: { n: 'abc' } }),
      message(2, { body: { loop: true } }),
      message(3, { body: { n: '-1' } }),
    ];
    const verdicts = await screenMessages(rules, messages);
    expect(verdicts.map((v) => v.action)).toEqual(['deliver', 'dead', 'dead', 'skip']);
    expect(verdicts[1]).toEqual({ action: 'dead', reason: 'filter.expression failed: D3030 Unable to cast value to a number: "abc" (at position 58)' });
    expect(verdicts[2]).toMatchObject({ action: 'dead', reason: expect.stringMatching(/^filter\.expression failed: D1012 /) });
  });

  it('a transform that fails makes the message dead, naming the transform', async () => {
    const [verdict] = await screenMessages({ transform: '$pad("", 300000)' }, [message(0)]);
    expect(verdict).toEqual({ action: 'dead', reason: expect.stringMatching(/^transform result is 300002 bytes of JSON/) });
  });

  it('past evaluateUntil no evaluation starts: verdicts stop at the first message needing one', async () => {
    const rules: GroupRules = { filter: { tags: { any: ['eu'] }, expression: 'true' } };
    const messages = [message(0, { tags: ['us'] }), message(1, { tags: ['eu'] }), message(2, { tags: ['us'] })];
    expect(await screenMessages(rules, messages, { evaluateUntil: Date.now() - 1 })).toEqual([{ action: 'skip' }]);
    expect(await screenMessages(rules, messages, { evaluateUntil: Date.now() + 60_000 })).toHaveLength(3);
    // Tag filters alone need no evaluation and ignore the budget.
    expect(await screenMessages({ filter: { tags: { any: ['eu'] } } }, messages, { evaluateUntil: 0 })).toHaveLength(3);
  });

  it('a batch of looping messages stops at the evaluation budget, not after every message', async () => {
    const rules: GroupRules = { filter: { expression: '($f := function($x){$f($x)}; $f(1))' } };
    const messages = Array.from({ length: 40 }, (_, i) => message(i));
    const started = Date.now();
    const verdicts = await screenMessages(rules, messages, { evaluateUntil: started + 200 });
    // Each message takes at least the 50 ms time limit; 200 ms of budget starts at most 5 of them (4 or 5
    // on an idle machine, fewer on a loaded one), not all 40 (2 s).
    expect(verdicts.length).toBeGreaterThanOrEqual(2);
    expect(verdicts.length).toBeLessThanOrEqual(6);
    expect(verdicts.every((v) => v.action === 'dead')).toBe(true);
    expect(Date.now() - started).toBeLessThan(600);
  });
});
