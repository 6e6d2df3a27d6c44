import { ensureEmulatorInstalled, freePort, startEmulator, type RunningEmulator } from './emulator.js';
import {
  AWS_SERVICES,
  EMULATOR_TARGETS,
  emulatorTargetFromEnvironment,
  ENDPOINT_VARIABLES,
  givenEndpoints,
  SERVICE_NAMES,
  type AwsEndpoints,
  type AwsService,
  type Emulator,
  type EmulatorTarget,
} from './environment.js';
import { ensureLocalStackInstalled, LOCALSTACK_VERSION, startLocalStack } from './localstack.js';

export interface LocalEmulatorsOptions {
  /** Which emulator serves which service; SLUICE_EMULATOR by default (local/environment.ts). */
  readonly target?: EmulatorTarget;
  /** An endpoint for every service without its own variable, instead of AWS_ENDPOINT_URL (e.g. a running moto). */
  readonly endpoint?: string;
  /** moto's port when it is started; a free one by default. */
  readonly motoPort?: number;
  /** LocalStack's port when it is started; SLUICE_LOCALSTACK_PORT, else a free one. */
  readonly localstackPort?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: (line: string) => void;
}

export interface LocalEmulators {
  readonly target: EmulatorTarget;
  /** The endpoint of each service (hand it to useLocalAws). */
  readonly endpoints: AwsEndpoints;
  /** What serves each service: an emulator started here, or an endpoint the environment gave. */
  readonly servedBy: Readonly<Record<AwsService, Emulator | 'given'>>;
  /** Which services each endpoint serves and what it is, one line each. */
  readonly summary: readonly string[];
  /** Stops what this started (nothing that was given). */
  stop(): Promise<void>;
}

const EMULATOR_NAMES: Record<Emulator, string> = { moto: 'moto', localstack: `LocalStack ${LOCALSTACK_VERSION}` };

function portFrom(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name} must be a port number, not '${raw}'.`);
  return port;
}

/**
 * Serves every AWS service Sluice calls on this machine: a service whose endpoint the environment names (its
 * AWS_ENDPOINT_URL_<SERVICE>, else `endpoint`, else AWS_ENDPOINT_URL) is used as it is; the others are served by
 * what the target assigns them, moto or LocalStack, each installed on first use and started only if some service
 * needs it. `npm start` and the test suite both start their AWS this way.
 */
export async function startLocalEmulators(options: LocalEmulatorsOptions = {}): Promise<LocalEmulators> {
  const env = options.env ?? process.env;
  const log = options.log ?? console.log;
  const target = options.target ?? emulatorTargetFromEnvironment(env);
  const given = givenEndpoints(env, options.endpoint);
  const needs = (emulator: Emulator) => AWS_SERVICES.some((s) => !given[s] && EMULATOR_TARGETS[target][s] === emulator);

  if (needs('moto')) ensureEmulatorInstalled(log);
  if (needs('localstack')) ensureLocalStackInstalled(log);
  const running: Partial<Record<Emulator, RunningEmulator>> = {};
  const stop = async () => {
    await Promise.all(Object.values(running).map((e) => e.stop()));
  };
  try {
    const starts: Promise<void>[] = [];
    if (needs('moto')) {
      const port = options.motoPort ?? (await freePort());
      log(`[sluice] Starting the AWS emulator (moto) on 127.0.0.1:${port} …`);
      starts.push(startEmulator(port).then((e) => void (running.moto = e)));
    }
    if (needs('localstack')) {
      const port = options.localstackPort ?? portFrom(env, 'SLUICE_LOCALSTACK_PORT') ?? (await freePort());
      log(`[sluice] Starting LocalStack ${LOCALSTACK_VERSION} (host mode, files in .sluice/localstack/${port}) on 127.0.0.1:${port} …`);
      starts.push(startLocalStack(port).then((e) => void (running.localstack = e)));
    }
    const results = await Promise.allSettled(starts);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (error) {
    await stop();
    throw error;
  }

  const services = {} as Record<AwsService, string>;
  const origin = {} as Record<AwsService, string>;
  const servedBy = {} as Record<AwsService, Emulator | 'given'>;
  for (const s of AWS_SERVICES) {
    const emulator = EMULATOR_TARGETS[target][s];
    const own = env[ENDPOINT_VARIABLES[s]]?.trim();
    services[s] = given[s] ?? running[emulator]!.endpoint;
    servedBy[s] = given[s] ? 'given' : emulator;
    origin[s] = given[s]
      ? `given by ${own ? ENDPOINT_VARIABLES[s] : options.endpoint?.trim() ? 'the caller' : 'AWS_ENDPOINT_URL'}`
      : `${EMULATOR_NAMES[emulator]}, started`;
  }
  const fallback = options.endpoint?.trim() || env.AWS_ENDPOINT_URL?.trim() || running.moto?.endpoint || services.dynamodb;
  const endpoints: AwsEndpoints = { default: fallback, ...services };

  const groups = new Map<string, AwsService[]>();
  for (const s of AWS_SERVICES) {
    const key = `${services[s]} (${origin[s]})`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const summary = [...groups].map(([where, list]) => `${list.map((s) => SERVICE_NAMES[s]).join(', ')}: ${where}`);
  return { target, endpoints, servedBy, summary, stop };
}
