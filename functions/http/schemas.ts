import { z } from 'zod';
import { LIMITS } from '../domain/limits.js';
import { TX } from '../domain/transactions/limits.js';
import { TRANSACTION_ID } from '../domain/transactions/prepare.js';

/** Input schemas of the API (API.md). Every bound names the limit in domain/limits.ts. */
export const Name = z.string().regex(LIMITS.namePattern, 'must match [A-Za-z0-9_.-]{1,128}');

/**
 * The path to an array or object nested deeper than `maxDepth` levels in a parsed JSON value (a top-level
 * array or object is level 1), or undefined when there is none. A loop with its own stack, never
 * recursion: 1 MiB of "[" nests 500,000 levels, and JSON.stringify already overflows near 4,000.
 */
export function pathNestedDeeperThan(value: unknown, maxDepth: number): Array<string | number> | undefined {
  interface Frame {
    readonly value: object;
    readonly level: number;
    readonly parent?: Frame;
    readonly key?: string | number;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const stack: Frame[] = [{ value, level: 1 }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.level > maxDepth) {
      const path: Array<string | number> = [];
      for (let f: Frame | undefined = frame; f?.key !== undefined; f = f.parent) path.push(f.key);
      return path.reverse();
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(frame.value)
      ? frame.value.map((child: unknown, i) => [i, child])
      : Object.entries(frame.value);
    for (const [key, child] of entries) {
      if (child !== null && typeof child === 'object') stack.push({ value: child, level: frame.level + 1, parent: frame, key });
    }
  }
  return undefined;
}

/** Free-form JSON from the client (a message body), nested at most LIMITS.maxNestingDepth levels. */
const FreeJson = z
  .unknown()
  .refine(
    (value) => pathNestedDeeperThan(value, LIMITS.maxNestingDepth) === undefined,
    `must not nest arrays and objects more than ${LIMITS.maxNestingDepth} levels deep`,
  );

/** Query-string integers arrive as text. */
const queryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'must be a non-negative integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const TopicParams = z.object({ topic: Name });
export const GroupParams = z.object({ topic: Name, group: Name });
export const MessageParams = z.object({ topic: Name, id: z.string().min(1).max(LIMITS.maxIdLength) });
export const PartitionParams = z.object({ topic: Name, partition: queryInt(0, LIMITS.maxPartitions - 1) });

export const PutTopicBody = z
  .object({
    partitions: z.number().int().min(1).max(LIMITS.maxPartitions).default(LIMITS.defaultPartitions),
    retentionHours: z
      .number()
      .int()
      .min(LIMITS.minRetentionHours)
      .max(LIMITS.maxRetentionHours)
      .default(LIMITS.defaultRetentionHours),
  })
  .strict();

const Tag = z.string().min(1).max(LIMITS.maxTagLength);
const ProducerId = z
  .string()
  .min(1)
  .max(LIMITS.maxIdLength)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

const MessageFields = {
  body: FreeJson.optional(),
  bodyBase64: z.base64().optional(),
  key: z.string().min(1).max(LIMITS.maxKeyLength).optional(),
  tags: z.array(Tag).max(LIMITS.maxTags).optional(),
  headers: z
    .record(z.string().min(1).max(LIMITS.maxHeaderNameLength), z.string().max(LIMITS.maxHeaderValueLength))
    .refine((h) => Object.keys(h).length <= LIMITS.maxHeaders, `at most ${LIMITS.maxHeaders} headers`)
    .optional(),
  id: ProducerId.optional(),
  partition: z.number().int().min(0).max(LIMITS.maxPartitions - 1).optional(),
  delaySeconds: z.number().int().min(0).max(63_072_000).optional(),
  deliverAt: z.union([z.string().min(1).max(64), z.number().int().min(0)]).optional(),
  repeat: z
    .object({ everySeconds: z.number().int().min(1).max(63_072_000), times: z.number().int().min(1).max(10_000) })
    .strict()
    .optional(),
};

type MessageShape = z.infer<z.ZodObject<typeof MessageFields>>;

function checkMessage(m: MessageShape, ctx: z.RefinementCtx) {
  if (m.body === undefined && m.bodyBase64 === undefined) ctx.addIssue({ code: 'custom', message: 'body (or bodyBase64) is required' });
  if (m.body !== undefined && m.bodyBase64 !== undefined) ctx.addIssue({ code: 'custom', message: 'give body or bodyBase64, not both' });
  if (m.delaySeconds !== undefined && m.deliverAt !== undefined) ctx.addIssue({ code: 'custom', message: 'give delaySeconds or deliverAt, not both' });
}

const Message = z.object(MessageFields).strict().superRefine(checkMessage);

/** A producer session (docs/sessions.md): retry-safe produce without an item per message. */
const Producer = z
  .object({
    session: z.string().regex(LIMITS.sessionPattern, 'must be 1-128 characters of A-Z a-z 0-9 _ . : -'),
    // The last message's sequence must stay an exact integer too.
    sequence: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER - LIMITS.maxMessagesPerProduce),
  })
  .strict();

export const ProduceBody = z
  .object({ messages: z.array(Message).min(1).max(LIMITS.maxMessagesPerProduce), producer: Producer.optional() })
  .strict()
  .superRefine((body, ctx) => {
    if (!body.producer) return;
    body.messages.forEach((m, i) => {
      const given = (['id', 'delaySeconds', 'deliverAt', 'repeat'] as const).filter((field) => m[field] !== undefined);
      if (given.length > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['messages', i, given[0]!],
          message: `a message of a producer session cannot have ${given.join(', ')} (the session's sequence identifies it; delayed messages are not sequenced)`,
        });
      }
    });
  });

const LambdaArn = z.string().regex(/^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?$/, 'must be a Lambda function ARN');

const Time = z.union([z.string().min(1).max(64), z.number().int().min(0)]);

const TagList = z.array(Tag).min(1).max(LIMITS.maxTags);
const PushHeaders = z
  .record(z.string().regex(/^[A-Za-z0-9-]{1,128}$/, 'must be an HTTP header name'), z.string().max(LIMITS.maxHeaderValueLength))
  .refine((h) => Object.keys(h).length <= LIMITS.maxHeaders, `at most ${LIMITS.maxHeaders} headers`)
  .refine(
    (h) => !Object.keys(h).some((k) => /^(webhook-|content-|host$|user-agent$)/i.test(k)),
    'must not set webhook-*, content-*, host or user-agent (Sluice sets them)',
  );

/** API.md "Delivery". A push URL is checked again at delivery time (DNS may change); here only its shape. */
const Delivery = z.discriminatedUnion('type', [
  z.object({ type: z.literal('pull') }).strict(),
  z
    .object({
      type: z.literal('http'),
      url: z
        .string()
        .max(2048)
        .url()
        .refine((u) => /^https?:\/\//i.test(u), 'must be an https:// URL (http:// only on the local runtime)'),
      batchSize: z.number().int().min(1).max(100).default(1),
      maxConcurrency: z.number().int().min(1).max(100).default(8),
      timeoutSeconds: z.number().int().min(1).max(30).default(10),
      headers: PushHeaders.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('lambda'),
      functionArn: LambdaArn,
      batchSize: z.number().int().min(1).max(100).default(10),
      maxConcurrency: z.number().int().min(1).max(100).default(8),
      timeoutSeconds: z.number().int().min(1).max(30).default(30),
    })
    .strict(),
]);

export const PutGroupBody = z
  .object({
    mode: z.enum(['shared', 'ordered', 'broadcast']).default('shared'),
    startFrom: Time.default('latest'),
    maxDeliveries: z.number().int().min(1).max(LIMITS.maxMaxDeliveries).default(LIMITS.defaultMaxDeliveries),
    visibilitySeconds: z.number().int().min(1).max(LIMITS.maxVisibilitySeconds).default(LIMITS.defaultVisibilitySeconds),
    filter: z
      .object({
        tags: z
          .object({ any: TagList.optional(), all: TagList.optional() })
          .strict()
          .refine((t) => t.any !== undefined || t.all !== undefined, 'give tags.any or tags.all')
          .optional(),
        // JSONata; compiled (and its 4 KB limit checked) by the domain's putGroup.
        expression: z.string().optional(),
      })
      .strict()
      .refine((f) => f.tags !== undefined || f.expression !== undefined, 'give filter.tags or filter.expression')
      .optional(),
    transform: z.string().optional(),
    delivery: Delivery.optional(),
    rotateSecret: z.boolean().optional(),
  })
  .strict();

export const ConsumerId = z
  .string()
  .min(1)
  .max(LIMITS.maxConsumerIdLength)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'must match [A-Za-z0-9_.:-]+');

export const PullBody = z
  .object({
    max: z.number().int().min(1).max(LIMITS.maxPull).default(10),
    waitSeconds: z.number().int().min(0).max(LIMITS.maxWaitSeconds).default(0),
    visibilitySeconds: z.number().int().min(1).max(LIMITS.maxVisibilitySeconds).optional(),
    consumerId: ConsumerId.optional(),
    /** The previous batch's receipts, acknowledged before the pull (docs/api-changes.md). */
    ackReceipts: z.array(z.string().min(1).max(64)).max(LIMITS.maxReceiptsPerCall).optional(),
  })
  .strict();

const Receipts = z.array(z.string().min(1).max(64)).min(1).max(LIMITS.maxReceiptsPerCall);
export const AckBody = z.object({ receipts: Receipts }).strict();
export const NackBody = z
  .object({ receipts: Receipts, retryAfterSeconds: z.number().int().min(0).max(LIMITS.maxRetryAfterSeconds).optional() })
  .strict();

export const ResetBody = z
  .object({
    to: z.union([
      z.enum(['earliest', 'latest']),
      z.object({ time: Time }).strict(),
      z.object({ partition: z.number().int().min(0).max(LIMITS.maxPartitions - 1), offset: z.number().int().min(0) }).strict(),
    ]),
  })
  .strict();

export const BrowseQuery = z
  .object({
    from: queryInt(0, Number.MAX_SAFE_INTEGER).optional(),
    limit: queryInt(1, LIMITS.maxBrowse).default(100),
  })
  .strict();

export const DeadLetterQuery = z.object({ limit: queryInt(1, 100).default(50), after: z.string().min(1).max(64).optional() }).strict();

export const DelayedParams = z.object({ topic: Name, id: ProducerId });
export const DelayedQuery = z.object({ limit: queryInt(1, 100).default(50), after: z.string().min(1).max(256).optional() }).strict();

/** API.md "Transactions": each message names its topic; the rest of it is a produce message. */
export const TransactionBody = z
  .object({
    messages: z
      .array(z.object({ topic: Name, ...MessageFields }).strict().superRefine(checkMessage))
      .min(1)
      .max(TX.maxMessages),
    timeoutSeconds: z.number().int().min(TX.minTimeoutSeconds).max(TX.maxTimeoutSeconds).default(TX.defaultTimeoutSeconds),
    checkBack: z
      .union([
        z.object({ url: z.string().max(2048).url().refine((u) => /^https?:\/\//i.test(u), 'must be an https:// URL (http:// only on the local runtime)') }).strict(),
        z.object({ functionArn: LambdaArn }).strict(),
      ])
      .optional(),
    maxChecks: z.number().int().min(TX.minMaxChecks).max(TX.maxMaxChecks).default(TX.defaultMaxChecks),
    checkIntervalSeconds: z.number().int().min(TX.minCheckIntervalSeconds).max(TX.maxCheckIntervalSeconds).default(TX.defaultCheckIntervalSeconds),
  })
  .strict();

export const TransactionParams = z.object({ id: z.string().regex(TRANSACTION_ID, 'must be a transaction id') });
