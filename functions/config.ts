import { z } from 'zod';

/** Configuration of the Lambda code, read once from the environment the CDK stack (or local runtime) sets. */
const ConfigSchema = z.object({
  CATALOG_TABLE: z.string().min(1),
  LOG_TABLE: z.string().min(1),
  GROUP_STATE_TABLE: z.string().min(1),
  DEDUP_TABLE: z.string().min(1),
  DELAY_TABLE: z.string().min(1),
  SECRETS_TABLE: z.string().min(1),
  TRANSACTIONS_TABLE: z.string().min(1),
  SESSIONS_TABLE: z.string().min(1),
  /** The local runtime pushes to private and loopback addresses (API.md); the deployed stack never does. */
  SLUICE_PUSH_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
  DELAY_QUEUE_URL: z.string().url(),
  PUSH_QUEUE_URL: z.string().url(),
  TRANSACTION_TIMEOUT_QUEUE_URL: z.string().url(),
  CHECK_BACK_QUEUE_URL: z.string().url(),
  /** The check-back state machine (lib/checkBack.ts); set by the stack, and by the local runtime when it creates it. */
  CHECK_BACK_STATE_MACHINE_ARN: z.string().min(1).optional(),
  /** Delays up to this many seconds go straight to the delay queue; SQS DelaySeconds stops at 900. */
  SLUICE_DELAY_QUEUE_MAX_SECONDS: z.coerce.number().int().min(1).max(900).default(900),
});

export interface Config {
  readonly tables: {
    readonly catalog: string;
    readonly log: string;
    readonly groupState: string;
    readonly dedup: string;
    readonly delays: string;
    readonly secrets: string;
    readonly transactions: string;
    readonly sessions: string;
  };
  readonly pushAllowPrivate: boolean;
  readonly delayQueueUrl: string;
  readonly pushQueueUrl: string;
  readonly delayQueueMaxSeconds: number;
  readonly transactionTimeoutQueueUrl: string;
  readonly checkBackQueueUrl: string;
  readonly checkBackStateMachineArn?: string;
}

let cached: Config | undefined;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  if (cached && env === process.env) return cached;
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const missing = parsed.error.issues.map((i) => `${i.path.join('.')} (${i.message})`).join(', ');
    throw new Error(`Sluice configuration is incomplete or invalid: ${missing}.`);
  }
  const config: Config = {
    tables: {
      catalog: parsed.data.CATALOG_TABLE,
      log: parsed.data.LOG_TABLE,
      groupState: parsed.data.GROUP_STATE_TABLE,
      dedup: parsed.data.DEDUP_TABLE,
      delays: parsed.data.DELAY_TABLE,
      secrets: parsed.data.SECRETS_TABLE,
      transactions: parsed.data.TRANSACTIONS_TABLE,
      sessions: parsed.data.SESSIONS_TABLE,
    },
    pushAllowPrivate: parsed.data.SLUICE_PUSH_ALLOW_PRIVATE === 'true',
    delayQueueUrl: parsed.data.DELAY_QUEUE_URL,
    pushQueueUrl: parsed.data.PUSH_QUEUE_URL,
    delayQueueMaxSeconds: parsed.data.SLUICE_DELAY_QUEUE_MAX_SECONDS,
    transactionTimeoutQueueUrl: parsed.data.TRANSACTION_TIMEOUT_QUEUE_URL,
    checkBackQueueUrl: parsed.data.CHECK_BACK_QUEUE_URL,
    ...(parsed.data.CHECK_BACK_STATE_MACHINE_ARN ? { checkBackStateMachineArn: parsed.data.CHECK_BACK_STATE_MACHINE_ARN } : {}),
  };
  if (env === process.env) cached = config;
  return config;
}

/** For tests that change the environment between runs (e.g. the delay threshold). */
export const forgetConfig = () => {
  cached = undefined;
};
