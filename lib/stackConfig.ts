import { z } from 'zod';

/**
 * The stack's settings, read from CDK context (`cdk deploy -c auth=apiKey -c alarmEmail=ops@example.com`)
 * and validated once. Strings from the command line are accepted for booleans.
 */
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

export const StackConfigSchema = z.object({
  stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/).default('Sluice'),
  /** iam: every route needs SigV4 (default). apiKey: every route needs an x-api-key checked by a Lambda authorizer. */
  auth: z.enum(['iam', 'apiKey']).default('iam'),
  /** CloudWatch alarms cost $0.10 each a month (57 by default), the main fixed cost of an idle stack. */
  alarms: bool.default(true),
  /** Email that alarm notifications go to; no SNS topic without it. */
  alarmEmail: z.email().optional(),
  /** What happens to the tables when the stack is deleted. */
  removalPolicy: z.enum(['retain', 'destroy']).default('retain'),
  deletionProtection: bool.default(true),
  pointInTimeRecovery: bool.default(true),
  logRetentionDays: z.coerce.number().int().refine((d) => [1, 3, 5, 7, 14, 30, 60, 90, 180, 365].includes(d)).default(30),
  /**
   * Reserved Lambda concurrency of the pull function (a cap on its concurrent long polls) and of produce
   * (a floor no other function can take, and also its cap). Unset by default: a reservation fails the
   * deploy in accounts whose concurrency limit is below 100 + the reservations (new accounts may have
   * 10). See docs/deploy.md, "Concurrency and throttling".
   */
  pullConcurrency: z.coerce.number().int().min(1).optional(),
  produceConcurrency: z.coerce.number().int().min(1).optional(),
  /** Throttling of every route of the API's $default stage: steady requests per second and bucket size. */
  apiRateLimit: z.coerce.number().positive().default(1000),
  apiBurstLimit: z.coerce.number().int().min(1).default(500),
  /**
   * Tighter throttling of the pull route: with waits of up to 20 s, pulls hold at most about
   * burst + 20 × rate Lambda instances (440 with these defaults), whatever the account's limit.
   */
  pullRateLimit: z.coerce.number().positive().default(20),
  pullBurstLimit: z.coerce.number().int().min(1).default(40),
});

/** The options that bound concurrency and request rates (lib/routes.ts names them per function). */
export type LimitsConfig = Pick<
  StackConfig,
  'pullConcurrency' | 'produceConcurrency' | 'apiRateLimit' | 'apiBurstLimit' | 'pullRateLimit' | 'pullBurstLimit'
>;

export type StackConfig = z.infer<typeof StackConfigSchema>;

export function readStackConfig(tryGetContext: (key: string) => unknown): StackConfig {
  const raw = Object.fromEntries(
    Object.keys(StackConfigSchema.shape).map((key) => [key, tryGetContext(key)]).filter(([, v]) => v !== undefined),
  );
  const parsed = StackConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`Bad CDK context: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
