import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { startApiServer } from './apiServer.js';
import { ensureEmulatorInstalled, freePort, startEmulator, type RunningEmulator } from './emulator.js';
import { useLocalAws } from './environment.js';
import { everyInterval, type LocalService } from './periodic.js';
import { createTables } from './tables.js';
import { RETENTION_FUNCTION } from '../lib/routes.js';

export interface LocalRuntimeOptions {
  readonly apiPort: number;
  /** Use this emulator (or LocalStack, or AWS) instead of starting moto. */
  readonly endpoint?: string;
  readonly emulatorPort?: number;
  readonly tablePrefix: string;
  readonly log?: (line: string) => void;
}

export interface LocalRuntime {
  readonly apiUrl: string;
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** How often the local retention pass runs (the stack schedules the same handler). */
const RETENTION_INTERVAL_MS = 60_000;

/**
 * Everything `npm start` runs: the emulator, the tables, the API gateway over the handlers, and the
 * scheduled handlers. Each part is a service with stop(), so pollers and schedule drivers slot in.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const log = options.log ?? console.log;
  let emulator: RunningEmulator | undefined;
  let endpoint = options.endpoint;
  if (!endpoint) {
    ensureEmulatorInstalled(log);
    const port = options.emulatorPort ?? (await freePort());
    log(`[sluice] Starting the AWS emulator (moto) on 127.0.0.1:${port} …`);
    emulator = await startEmulator(port);
    endpoint = emulator.endpoint;
  }
  useLocalAws(endpoint, options.tablePrefix);
  const services: LocalService[] = [];
  try {
    await createTables(new DynamoDBClient({}), options.tablePrefix);
    const api = await startApiServer(options.apiPort);
    services.push({ name: 'api', stop: () => api.close() });
    services.push(
      everyInterval(RETENTION_FUNCTION.handler, RETENTION_INTERVAL_MS, async () => (await import('../functions/handlers/trimRetention.js')).handler),
    );
    return {
      apiUrl: api.url,
      endpoint,
      stop: async () => {
        for (const service of services.reverse()) await service.stop();
        await emulator?.stop();
      },
    };
  } catch (error) {
    for (const service of services.reverse()) await service.stop();
    await emulator?.stop();
    throw error;
  }
}
