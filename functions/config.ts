import { z } from 'zod';

/** Configuration of the Lambda code, read once from the environment the CDK stack (or local runtime) sets. */
const ConfigSchema = z.object({
  CATALOG_TABLE: z.string().min(1),
  LOG_TABLE: z.string().min(1),
  GROUP_STATE_TABLE: z.string().min(1),
  DEDUP_TABLE: z.string().min(1),
});

export interface Config {
  readonly tables: { readonly catalog: string; readonly log: string; readonly groupState: string; readonly dedup: string };
}

let cached: Config | undefined;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  if (cached && env === process.env) return cached;
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const missing = parsed.error.issues.map((i) => i.path.join('.')).join(', ');
    throw new Error(`Sluice configuration is incomplete: set ${missing}.`);
  }
  const config: Config = {
    tables: {
      catalog: parsed.data.CATALOG_TABLE,
      log: parsed.data.LOG_TABLE,
      groupState: parsed.data.GROUP_STATE_TABLE,
      dedup: parsed.data.DEDUP_TABLE,
    },
  };
  if (env === process.env) cached = config;
  return config;
}
