import {
  CreateStateMachineCommand,
  ListStateMachinesCommand,
  StateMachineAlreadyExists,
  UpdateStateMachineCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import { checkBackDefinitionJson } from '../lib/checkBack.js';
import type { QueueUrls } from './queues.js';

/** The local name of the check-back state machine: "<prefix>-check-back". */
export const localCheckBackName = (prefix: string) => `${prefix}-check-back`;

/** The emulators accept any role; AWS would need one that may send to the CheckBack queue (the stack makes it). */
const LOCAL_ROLE_ARN = 'arn:aws:iam::123456789012:role/sluice-local-check-back';

async function findStateMachine(client: SFNClient, name: string): Promise<string | undefined> {
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListStateMachinesCommand({ nextToken }));
    const found = page.stateMachines?.find((m) => m.name === name);
    if (found?.stateMachineArn) return found.stateMachineArn;
    nextToken = page.nextToken;
  } while (nextToken);
  return undefined;
}

/**
 * Creates the check-back state machine of lib/checkBack.ts on the emulator (the definition the stack
 * deploys, rendered for the local CheckBack queue), or brings an existing one to that definition
 * (idempotent). Returns its ARN, which the handlers read from CHECK_BACK_STATE_MACHINE_ARN.
 */
export async function createStateMachines(client: SFNClient, prefix: string, queues: QueueUrls): Promise<{ checkBackArn: string }> {
  const name = localCheckBackName(prefix);
  const definition = checkBackDefinitionJson({ arn: queues.CheckBack.arn, url: queues.CheckBack.url });
  try {
    const created = await client.send(new CreateStateMachineCommand({ name, definition, roleArn: LOCAL_ROLE_ARN, type: 'STANDARD' }));
    return { checkBackArn: created.stateMachineArn! };
  } catch (error) {
    if (!(error instanceof StateMachineAlreadyExists) && !(error instanceof Error && error.name === 'StateMachineAlreadyExists')) throw error;
    const arn = await findStateMachine(client, name);
    if (!arn) throw error;
    await client.send(new UpdateStateMachineCommand({ stateMachineArn: arn, definition, roleArn: LOCAL_ROLE_ARN }));
    return { checkBackArn: arn };
  }
}

/** Hands the handlers the state machine's ARN (the variable the CDK stack sets). */
export function useLocalStateMachines(arns: { checkBackArn: string }) {
  process.env.CHECK_BACK_STATE_MACHINE_ARN = arns.checkBackArn;
}
