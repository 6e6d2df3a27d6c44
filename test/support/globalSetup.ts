import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { TestProject } from 'vitest/node';
import { startLocalEmulators } from '../../local/emulators.js';
import { useLocalAws, type AwsEndpoints, type AwsService, type Emulator } from '../../local/environment.js';
import { createQueues, type QueueUrls } from '../../local/queues.js';
import { createSchedules } from '../../local/schedules.js';
import { createStateMachines } from '../../local/stateMachines.js';
import { createTables } from '../../local/tables.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** AWS_ENDPOINT_URL: the endpoint of every service without one of its own (moto, unless given). */
    awsEndpoint: string;
    /** The endpoint of each service (SLUICE_EMULATOR=localstack: SQS, Step Functions and Scheduler on LocalStack). */
    awsEndpoints: AwsEndpoints;
    /** What serves each service: the emulator started for it, or 'given' (an endpoint from the environment). */
    awsServedBy: Record<AwsService, Emulator | 'given'>;
    tablePrefix: string;
    /** The queues of lib/queues.ts, created with the tables (workerSetup sets their URL variables). */
    queueUrls: QueueUrls;
    /** The state machines of lib/checkBack.ts, created with the queues (workerSetup sets their ARN variables). */
    stateMachines: { checkBackArn: string };
  }
}

/**
 * The suite's AWS: what SLUICE_EMULATOR chooses (moto for everything, or LocalStack for SQS, Step Functions and
 * Scheduler beside moto), started here and stopped at the end, except for the services whose endpoint the
 * environment already names (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>): those are used as they are.
 * Tables, queues and schedules get a fresh prefix per run, so runs never share state.
 */
export default async function setup(project: TestProject) {
  const emulators = await startLocalEmulators({ log: (line) => console.log(line) });
  if (emulators.target !== 'moto' || emulators.summary.length > 1) for (const line of emulators.summary) console.log(`[sluice] ${line}`);
  try {
    const prefix = `t${Date.now().toString(36)}`;
    useLocalAws(emulators.endpoints, prefix);
    await createTables(new DynamoDBClient({}), prefix);
    const queueUrls = await createQueues(new SQSClient({}), prefix);
    await createSchedules(new SchedulerClient({}), prefix);
    // On the endpoint that serves Step Functions (moto, or LocalStack with SLUICE_EMULATOR=localstack).
    const stateMachines = await createStateMachines(new SFNClient({}), prefix, queueUrls);
    project.provide('awsEndpoint', emulators.endpoints.default);
    project.provide('awsEndpoints', emulators.endpoints);
    project.provide('awsServedBy', emulators.servedBy);
    project.provide('tablePrefix', prefix);
    project.provide('queueUrls', queueUrls);
    project.provide('stateMachines', stateMachines);
  } catch (error) {
    await emulators.stop();
    throw error;
  }
  return async () => {
    await emulators.stop();
  };
}
