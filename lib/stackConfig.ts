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
  /** CloudWatch alarms cost $0.10 each a month (about 40 here), the only fixed cost of an idle stack. */
  alarms: bool.default(true),
  /** Email that alarm notifications go to; no SNS topic without it. */
  alarmEmail: z.email().optional(),
  /** What happens to the tables when the stack is deleted. */
  removalPolicy: z.enum(['retain', 'destroy']).default('retain'),
  deletionProtection: bool.default(true),
  pointInTimeRecovery: bool.default(true),
  logRetentionDays: z.coerce.number().int().refine((d) => [1, 3, 5, 7, 14, 30, 60, 90, 180, 365].includes(d)).default(30),
});

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
