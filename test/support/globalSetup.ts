import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { TestProject } from 'vitest/node';
import { ensureEmulatorInstalled, freePort, startEmulator, type RunningEmulator } from '../../local/emulator.js';
import { useLocalAws } from '../../local/environment.js';
import { createTables } from '../../local/tables.js';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
    tablePrefix: string;
  }
}

/**
 * The suite's AWS: the emulator it starts itself, unless AWS_ENDPOINT_URL already points somewhere
 * (another emulator, LocalStack). Tables get a fresh prefix per run, so runs never share state.
 */
export default async function setup(project: TestProject) {
  let emulator: RunningEmulator | undefined;
  let endpoint = process.env.AWS_ENDPOINT_URL;
  if (!endpoint) {
    ensureEmulatorInstalled((line) => console.log(line));
    emulator = await startEmulator(await freePort());
    endpoint = emulator.endpoint;
  }
  const prefix = `t${Date.now().toString(36)}`;
  useLocalAws(endpoint, prefix);
  await createTables(new DynamoDBClient({}), prefix);
  project.provide('awsEndpoint', endpoint);
  project.provide('tablePrefix', prefix);
  return async () => {
    await emulator?.stop();
  };
}
