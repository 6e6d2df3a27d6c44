import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { TestProject } from 'vitest/node';
import { ensureEmulatorInstalled, freePort, startEmulator, type RunningEmulator } from '../../local/emulator.js';
import { useLocalAws } from '../../local/environment.js';
import { createQueues, type QueueUrls } from '../../local/queues.js';
import { createSchedules } from '../../local/schedules.js';
import { createTables } from '../../local/tables.js';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
    tablePrefix: string;
    /** The queues of lib/queues.ts, created with the tables (workerSetup sets their URL variables). */
    queueUrls: QueueUrls;
  }
}

/**
 * The suite's AWS: the emulator it starts itself, unless AWS_ENDPOINT_URL already points somewhere
 * (another emulator, LocalStack). Tables, queues and schedules get a fresh prefix per run, so runs never share state.
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
  const queueUrls = await createQueues(new SQSClient({}), prefix);
  await createSchedules(new SchedulerClient({}), prefix);
  project.provide('awsEndpoint', endpoint);
  project.provide('tablePrefix', prefix);
  project.provide('queueUrls', queueUrls);
  return async () => {
    await emulator?.stop();
  };
}
