import { Duration } from 'aws-cdk-lib';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { QUEUES, type QueueId, type QueueSpec } from '../queues.js';
import { nonRouteFunction, timeoutSecondsOf } from '../routes.js';
import type { TableId } from '../tables.js';
import { BrokerFunction } from './brokerFunction.js';

export interface QueueConsumerProps {
  readonly tables: Record<TableId, TableV2>;
  /** The shared environment (table names and queue URLs). */
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
  /** The check-back state machine (its worker answers task tokens; the timeout consumer starts executions). */
  readonly stateMachine: IStateMachine;
}

/**
 * The queues of lib/queues.ts: each encrypted (SSE-SQS), TLS only, with its own dead-letter queue
 * that takes a message after `maxReceiveCount` receives, and (addConsumers) its consumer function
 * behind an SQS event source that reports partial batch failures.
 */
export class BrokerQueues extends Construct {
  readonly queues: Record<QueueId, Queue>;
  readonly deadLetterQueues: Record<QueueId, Queue>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const queues: Partial<Record<QueueId, Queue>> = {};
    const deadLetterQueues: Partial<Record<QueueId, Queue>> = {};
    for (const spec of QUEUES as readonly QueueSpec[]) {
      const deadLetters = new Queue(this, `${spec.id}DeadLetters`, {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(spec.deadLetterRetentionDays),
      });
      queues[spec.id as QueueId] = new Queue(this, spec.id, {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        visibilityTimeout: Duration.seconds(spec.visibilityTimeoutSeconds),
        deadLetterQueue: { queue: deadLetters, maxReceiveCount: spec.maxReceiveCount },
      });
      deadLetterQueues[spec.id as QueueId] = deadLetters;
    }
    this.queues = queues as Record<QueueId, Queue>;
    this.deadLetterQueues = deadLetterQueues as Record<QueueId, Queue>;
  }

  /** The queue-URL variables every function gets (the names the code reads in functions/config.ts). */
  environment(): Record<string, string> {
    const queues = QUEUES as readonly QueueSpec[];
    return Object.fromEntries(queues.map((spec) => [spec.envVar, this.queues[spec.id as QueueId].queueUrl]));
  }

  /** Creates the consumer function of every queue and its event source; returns them by handler name. */
  addConsumers(props: QueueConsumerProps): Record<string, NodejsFunction> {
    const consumers: Record<string, NodejsFunction> = {};
    for (const spec of QUEUES as readonly QueueSpec[]) {
      // A queue's consumer.handler names one of the non-route functions of lib/routes.ts.
      const fnSpec = nonRouteFunction(spec.consumer.handler);
      // Lambda refuses an event source whose queue hides a message for less than the function may run.
      if (spec.visibilityTimeoutSeconds < timeoutSecondsOf(fnSpec)) {
        throw new Error(
          `queue ${spec.id}: visibility timeout ${spec.visibilityTimeoutSeconds} s is below ${fnSpec.handler}'s timeout ${timeoutSecondsOf(fnSpec)} s`,
        );
      }
      const queue = this.queues[spec.id as QueueId];
      const fn = new BrokerFunction(this, fnSpec.handler, {
        spec: fnSpec,
        tables: props.tables,
        queues: this.queues,
        environment: props.environment,
        logRetention: props.logRetention,
        stateMachine: props.stateMachine,
      }).fn;
      // Grants the consumer ReceiveMessage, DeleteMessage, ChangeMessageVisibility, GetQueueAttributes
      // and GetQueueUrl on this queue only.
      fn.addEventSource(
        new SqsEventSource(queue, {
          batchSize: spec.consumer.batchSize,
          maxBatchingWindow: Duration.seconds(spec.consumer.maxBatchingWindowSeconds),
          reportBatchItemFailures: true,
        }),
      );
      consumers[fnSpec.handler] = fn;
    }
    return consumers;
  }
}
