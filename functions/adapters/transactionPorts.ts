import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { SFNClient, SendTaskSuccessCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { Config } from '../config.js';
import { httpCheckAnswer, lambdaCheckAnswer } from '../domain/transactions/answer.js';
import { TX } from '../domain/transactions/limits.js';
import type { CheckBackCaller, CheckBackMachine, CheckBackInput, CheckOutcome, TimeoutQueue, TransactionPorts } from '../domain/transactions/ports.js';
import { sqs } from './delayQueue.js';
import { dynamo } from './dynamoClient.js';
import { postSigned } from './httpPush.js';
import { instrument } from './instrument.js';
import { invokeJson } from './lambdaInvoke.js';
import { DynamoTransactionStore } from './transactionStore.js';

/** SQS DelaySeconds stops at 900 (15 minutes). */
const SQS_MAX_DELAY_SECONDS = 900;

let sfnClient: SFNClient | undefined;

/** One Step Functions client per process; locally AWS_ENDPOINT_URL(_SFN) points it at the emulator. */
function sfn(): SFNClient {
  if (sfnClient) return sfnClient;
  sfnClient = new SFNClient({ maxAttempts: 5 });
  instrument(sfnClient.middlewareStack, { meter: false });
  return sfnClient;
}

/** The wire form of a timeout message; read back by parseTimeoutBody. */
export const timeoutBody = (id: string) => JSON.stringify({ tx: id });

export function parseTimeoutBody(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { tx?: unknown };
    return typeof parsed.tx === 'string' ? parsed.tx : undefined;
  } catch {
    return undefined;
  }
}

/** A retried send (lost reply) queues the timeout twice: the second finds the check-back started (by name) or the transaction decided. */
class SqsTimeoutQueue implements TimeoutQueue {
  readonly maxDelaySeconds = SQS_MAX_DELAY_SECONDS;
  constructor(private readonly queueUrl: string) {}
  async send(id: string, delaySeconds: number) {
    await sqs().send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: timeoutBody(id), DelaySeconds: Math.max(0, Math.floor(delaySeconds)) }));
  }
}

/** AWS's answers to a task token that is answered already, or whose state timed out: nothing left to do. */
const ANSWERED = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

class StepFunctionsCheckBack implements CheckBackMachine {
  constructor(private readonly stateMachineArn: string | undefined) {}

  async start(input: CheckBackInput) {
    if (!this.stateMachineArn) throw new Error('CHECK_BACK_STATE_MACHINE_ARN is not set: the check-back state machine was not created.');
    try {
      // Named after the transaction: a second start with the same input answers the running execution,
      // and once it has ended, ExecutionAlreadyExists; either way one check-back per transaction.
      await sfn().send(new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: input.id, input: JSON.stringify(input) }));
    } catch (error) {
      if (error instanceof Error && error.name === 'ExecutionAlreadyExists') return;
      throw error;
    }
  }

  async answer(taskToken: string, outcome: CheckOutcome) {
    try {
      await sfn().send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(outcome) }));
    } catch (error) {
      if (error instanceof Error && ANSWERED.has(error.name)) return;
      throw error;
    }
  }
}

function checkBackCaller(config: Config): CheckBackCaller {
  return {
    async ask(target, signingSecret, requestId, payload) {
      if ('url' in target) {
        const outcome = await postSigned(
          { url: target.url, timeoutSeconds: TX.checkTimeoutSeconds, signingSecret },
          requestId,
          payload,
          { allowPrivateAddresses: config.pushAllowPrivate },
        );
        if ('failure' in outcome) return { answer: 'error', reason: outcome.failure };
        return httpCheckAnswer(outcome.status, outcome.text);
      }
      const outcome = await invokeJson(target.functionArn, payload, TX.checkTimeoutSeconds);
      if ('failure' in outcome) return { answer: 'error', reason: outcome.failure };
      return lambdaCheckAnswer(outcome.functionError, outcome.result);
    },
  };
}

let cached: TransactionPorts | undefined;

/** The transactions' ports on AWS, built once per process from the validated config. */
export function transactionPorts(config: Config): TransactionPorts {
  if (cached) return cached;
  cached = {
    transactions: new DynamoTransactionStore(dynamo(), config.tables.transactions, config.tables.log, config.tables.dedup, config.tables.secrets),
    timeouts: new SqsTimeoutQueue(config.transactionTimeoutQueueUrl),
    machine: new StepFunctionsCheckBack(config.checkBackStateMachineArn),
    caller: checkBackCaller(config),
  };
  return cached;
}

/** For tests that change the configuration between runs. */
export const forgetTransactionPorts = () => {
  cached = undefined;
};
