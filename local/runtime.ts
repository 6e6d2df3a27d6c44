import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startApiServer } from './apiServer.js';
import { pollersFromEnvironment, startQueueConsumers } from './consumers.js';
import { startLocalEmulators } from './emulators.js';
import { useLocalAws, useLocalLambdaEndpoint, useLocalQueues, type AwsEndpoints, type EmulatorTarget } from './environment.js';
import { functionTimeoutMs } from './invocation.js';
import {
  FUNCTIONS_FILE,
  functionsFromEnvironment,
  lambdaPortFromEnvironment,
  startLambdaService,
  type LambdaService,
  type LocalFunctions,
} from './lambdaService.js';
import { everyInterval, type LocalService } from './periodic.js';
import { startTtlSweeper } from './ttlSweeper.js';
import { createQueues, localDeadLetterQueueName, localQueueName } from './queues.js';
import { createSchedules, startScheduleDriver } from './schedules.js';
import { createStateMachines, useLocalStateMachines } from './stateMachines.js';
import { startStreamConsumers } from './streams.js';
import { createTables } from './tables.js';
import { QUEUES, type QueueSpec } from '../lib/queues.js';
import { DELAY_SWEEP_FUNCTION, RETENTION_FUNCTION } from '../lib/routes.js';

export interface LocalRuntimeOptions {
  readonly apiPort: number;
  /**
   * Use this endpoint (another moto, LocalStack, AWS) for every service without an AWS_ENDPOINT_URL_<SERVICE> of its
   * own, instead of AWS_ENDPOINT_URL or starting an emulator (local/emulators.ts).
   */
  readonly endpoint?: string;
  /** Which emulators serve the services no endpoint is given for; SLUICE_EMULATOR (moto, or localstack), else moto. */
  readonly emulator?: EmulatorTarget;
  readonly emulatorPort?: number;
  /** LocalStack's port when it is started; SLUICE_LOCALSTACK_PORT, else a free one. */
  readonly localstackPort?: number;
  readonly tablePrefix: string;
  /** Seconds between delay sweeps; SLUICE_DELAY_SWEEP_SECONDS, else 1 (the stack: every minute, Scheduler's finest rate). */
  readonly delaySweepSeconds?: number;
  /** Concurrent batches per queue; SLUICE_SQS_POLLERS, else 2. */
  readonly pollers?: number;
  /** Port of the local Lambda Invoke endpoint; SLUICE_LAMBDA_PORT, else a free one. */
  readonly lambdaPort?: number;
  /**
   * Users' functions behind the local Lambda endpoint (module paths relative to the working directory); by
   * default the file SLUICE_LOCAL_FUNCTIONS names, else sluice.functions.json if there is one (local/lambdaService.ts).
   */
  readonly functions?: LocalFunctions;
  readonly log?: (line: string) => void;
}

export interface LocalRuntime {
  readonly apiUrl: string;
  /** AWS_ENDPOINT_URL: the endpoint of every service without one of its own. */
  readonly endpoint: string;
  /** The endpoint of each service. */
  readonly endpoints: AwsEndpoints;
  /** Which endpoint serves which services, and whether it was started or given, one line each. */
  readonly emulators: readonly string[];
  /** The local Lambda Invoke endpoint (AWS_ENDPOINT_URL_LAMBDA in this process) and its functions. */
  readonly lambda: LambdaService;
  stop(): Promise<void>;
}

/** How often the local retention pass runs (the stack schedules the same handler). */
const RETENTION_INTERVAL_MS = 60_000;

/** How often the local stand-in for DynamoDB TTL deletes expired items (AWS: within days of expiry). */
const TTL_SWEEP_INTERVAL_MS = 60_000;

/** The local sweep interval: no cost per invocation here, and tests should not wait a minute. */
export const LOCAL_DELAY_SWEEP_SECONDS = 1;

export function delaySweepSecondsFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SLUICE_DELAY_SWEEP_SECONDS;
  if (raw === undefined || raw === '') return LOCAL_DELAY_SWEEP_SECONDS;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0.1 || n > 3600) throw new Error(`SLUICE_DELAY_SWEEP_SECONDS must be a number of seconds 0.1..3600, not '${raw}'.`);
  return n;
}

/**
 * Everything `npm start` runs: the emulator, the tables and queues, the API gateway over the handlers,
 * the queues' consumers (SQS pollers), the Scheduler schedules' driver and the retention pass. Each part
 * is a service with stop(); they stop in the reverse order.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const log = options.log ?? console.log;
  const emulators = await startLocalEmulators({
    target: options.emulator,
    endpoint: options.endpoint,
    motoPort: options.emulatorPort,
    localstackPort: options.localstackPort,
    log,
  });
  const { endpoints } = emulators;
  const prefix = options.tablePrefix;
  useLocalAws(endpoints, prefix);
  // Metrics go to CloudWatch as log lines (EMF); locally there is no CloudWatch, and a sweep every second would
  // print one a second. POWERTOOLS_METRICS_DISABLED=false brings them back.
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  const sweepSeconds = options.delaySweepSeconds ?? delaySweepSecondsFromEnvironment();
  const pollers = options.pollers ?? pollersFromEnvironment();
  const services: LocalService[] = [];
  try {
    await createTables(new DynamoDBClient({}), prefix);
    const queues = await createQueues(new SQSClient({}), prefix);
    useLocalQueues(queues);
    await createSchedules(new SchedulerClient({}), prefix);
    const machines = await createStateMachines(new SFNClient({}), prefix, queues);
    useLocalStateMachines(machines);
    log(`[sluice] Check-back state machine ${machines.checkBackArn} (lib/checkBack.ts, executed by the emulator)`);

    const registered = options.functions ? { functions: options.functions, baseDir: process.cwd() } : functionsFromEnvironment();
    const lambdaPort = options.lambdaPort ?? lambdaPortFromEnvironment();
    const lambda = await startLambdaService({ port: lambdaPort, functions: registered.functions, baseDir: registered.baseDir });
    services.push(lambda);
    useLocalLambdaEndpoint(lambda.url);
    const functions = lambda.functions();
    const fromFile = 'file' in registered && registered.file ? ` from ${registered.file}` : '';
    log(
      `[sluice] Lambda endpoint on ${lambda.url} (AWS_ENDPOINT_URL_LAMBDA): ` +
        (functions.length > 0 ? `${functions.length} local function${functions.length === 1 ? '' : 's'}${fromFile}` : `no local functions (register them in ${FUNCTIONS_FILE} or SLUICE_LOCAL_FUNCTIONS)`),
    );
    for (const f of functions) log(`[sluice]   ${f.key} → ${f.source} (timeout ${f.timeoutSeconds} s)`);

    const api = await startApiServer(options.apiPort);
    services.push({ name: 'api', stop: () => api.close() });
    log(`[sluice] API gateway on ${api.url}`);

    for (const poller of await startQueueConsumers(queues, { concurrency: pollers })) {
      services.push(poller);
    }
    for (const spec of QUEUES as readonly QueueSpec[]) {
      const handler = spec.consumer.handler;
      log(
        `[sluice] SQS poller: ${localQueueName(prefix, spec)} → ${handler} (${pollers} concurrent batches of up to ${spec.consumer.batchSize}, ` +
          `timeout ${functionTimeoutMs(handler) / 1000} s; after ${spec.maxReceiveCount} receives a message goes to ${localDeadLetterQueueName(prefix, spec)})`,
      );
    }

    for (const poller of await startStreamConsumers(prefix)) {
      services.push(poller);
      log(`[sluice] DynamoDB Streams poller: ${poller.name}`);
    }

    const driver = await startScheduleDriver({ prefix, intervalSeconds: { [DELAY_SWEEP_FUNCTION.handler]: sweepSeconds } });
    services.push(driver);
    for (const s of driver.schedules) {
      const local = s.handler === DELAY_SWEEP_FUNCTION.handler ? ' (SLUICE_DELAY_SWEEP_SECONDS)' : '';
      log(
        `[sluice] Schedule ${s.name} (${s.expression} in the stack) → ${s.handler}, here every ${s.intervalMs / 1000} s${local}, ` +
          `timeout ${functionTimeoutMs(s.handler) / 1000} s`,
      );
    }

    services.push(
      everyInterval(RETENTION_FUNCTION.handler, RETENTION_INTERVAL_MS, async () => (await import('../functions/handlers/trimRetention.js')).handler),
    );
    log(`[sluice] Retention pass → ${RETENTION_FUNCTION.handler}, every ${RETENTION_INTERVAL_MS / 1000} s, timeout ${functionTimeoutMs(RETENTION_FUNCTION.handler) / 1000} s`);
    services.push(startTtlSweeper(TTL_SWEEP_INTERVAL_MS));
    log(`[sluice] DynamoDB TTL (the emulator has none): expired items of the TTL tables are deleted every ${TTL_SWEEP_INTERVAL_MS / 1000} s (local/ttlSweeper.ts)`);
    return {
      apiUrl: api.url,
      endpoint: endpoints.default,
      endpoints,
      emulators: emulators.summary,
      lambda,
      stop: async () => {
        for (const service of services.reverse()) await service.stop();
        await emulators.stop();
      },
    };
  } catch (error) {
    for (const service of services.reverse()) await service.stop();
    await emulators.stop();
    throw error;
  }
}
