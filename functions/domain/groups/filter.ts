import { evaluateExpression, ExpressionFailure, isTruthy, toDeliveredBody } from './expression.js';
import type { LogMessage } from '../messages.js';

/** Tag filters with QMQ semantics: a message without tags never matches a tag filter. */
export interface TagFilter {
  readonly any?: readonly string[];
  readonly all?: readonly string[];
}

export interface GroupFilter {
  readonly tags?: TagFilter;
  /** JSONata; a message is delivered only when it is truthy (see isTruthy in expression.ts). */
  readonly expression?: string;
}

export function matchesFilter(filter: GroupFilter | undefined, tags: readonly string[] | undefined): boolean {
  const tagFilter = filter?.tags;
  if (!tagFilter) return true;
  if (!tags || tags.length === 0) return false;
  if (tagFilter.any && !tagFilter.any.some((t) => tags.includes(t))) return false;
  if (tagFilter.all && !tagFilter.all.every((t) => tags.includes(t))) return false;
  return true;
}

/** What a group's rules say about one message. */
export type Verdict =
  /** Deliver `message` (its body replaced by the transform's result, when the group has a transform). */
  | { readonly action: 'deliver'; readonly message: LogMessage }
  /** Filtered out: acknowledged without delivery. */
  | { readonly action: 'skip' }
  /** The filter expression or the transform failed: the message goes to the dead letters with `reason`. */
  | { readonly action: 'dead'; readonly reason: string };

/** The settings screenMessages reads (a Group has them). */
export interface GroupRules {
  readonly filter?: GroupFilter;
  readonly transform?: string;
}

export interface ScreenOptions {
  /**
   * Epoch ms after which no new expression evaluation starts (a batch's evaluation budget). The
   * verdicts then stop at the first message that would need one; that message and the rest are not
   * decided and must be left for a later batch. Without it every message is decided.
   */
  readonly evaluateUntil?: number;
}

/**
 * What expressions see of a message (API.md): `{body, key, tags, headers, partition, offset,
 * producedAt}`. A message produced with `bodyBase64` has no `body`; it shows `bodyBase64` (the base64
 * text) instead. Fields a message does not have (`key`) are absent, i.e. "no result" in JSONata.
 */
export function expressionInput(message: LogMessage): Record<string, unknown> {
  return {
    ...(message.bodyBase64 !== undefined ? { bodyBase64: message.bodyBase64 } : { body: message.body }),
    ...(message.key !== undefined ? { key: message.key } : {}),
    tags: message.tags,
    headers: message.headers,
    partition: message.partition,
    offset: message.offset,
    producedAt: message.producedAt,
  };
}

/** A dead letter's reason is stored with it and listed: jsonata messages may quote values, so it is cut. */
const MAX_REASON_CHARS = 1000;

const needsEvaluation = (rules: GroupRules) => rules.filter?.expression !== undefined || rules.transform !== undefined;

/**
 * The one place a group's filter and transform are applied, for pull and push alike. For each message,
 * in order: the tag filter, then `filter.expression` (not truthy → skip), then `transform` (its result
 * replaces the body; a `bodyBase64` message is then delivered with that JSON `body` and without
 * `bodyBase64`). An evaluation that throws or runs past its limits makes the verdict `dead` with the
 * reason. Returns one verdict per message, in order, for a prefix of `messages` (all of them unless
 * `evaluateUntil` passed): messages past the end of the verdicts were not decided.
 */
export async function screenMessages(rules: GroupRules, messages: readonly LogMessage[], options: ScreenOptions = {}): Promise<Verdict[]> {
  const verdicts: Verdict[] = [];
  const evaluates = needsEvaluation(rules);
  for (const message of messages) {
    if (!matchesFilter(rules.filter, message.tags)) {
      verdicts.push({ action: 'skip' });
      continue;
    }
    if (!evaluates) {
      verdicts.push({ action: 'deliver', message });
      continue;
    }
    if (options.evaluateUntil !== undefined && Date.now() >= options.evaluateUntil) break;
    verdicts.push(await screenOne(rules, message));
  }
  return verdicts;
}

async function screenOne(rules: GroupRules, message: LogMessage): Promise<Verdict> {
  try {
    const input = expressionInput(message);
    const expression = rules.filter?.expression;
    if (expression !== undefined && !isTruthy(await evaluateExpression('filter.expression', expression, input))) {
      return { action: 'skip' };
    }
    if (rules.transform === undefined) return { action: 'deliver', message };
    const body = toDeliveredBody('transform', await evaluateExpression('transform', rules.transform, input));
    const { bodyBase64: _binary, ...rest } = message;
    return { action: 'deliver', message: { ...rest, body } };
  } catch (error) {
    if (error instanceof ExpressionFailure) return { action: 'dead', reason: error.message.slice(0, MAX_REASON_CHARS) };
    throw error;
  }
}
