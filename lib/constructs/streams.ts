import { Duration, Validations } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';
import type { TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption, type IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { QueueId } from '../queues.js';
import { nonRouteFunction } from '../routes.js';
import { STREAMS, type StreamConsumerSpec } from '../streams.js';
import { TABLES, type TableId, type TableSpec } from '../tables.js';
import { BrokerFunction } from './brokerFunction.js';

/** Days the on-failure queue of a stream keeps the record of a skipped batch (SQS allows 1..14). */
export const STREAM_FAILURE_RETENTION_DAYS = 14;

export interface StreamConsumersProps {
  readonly tables: Record<TableId, TableV2>;
  readonly queues: Record<QueueId, IQueue>;
  /** The shared environment (table names and queue URLs). */
  readonly environment: Record<string, string>;
  readonly logRetention: RetentionDays;
}

/**
 * The DynamoDB stream consumers of lib/streams.ts: per entry, its function (a non-route function of
 * lib/routes.ts) behind a DynamoDB event source with the declared starting position, batch size,
 * batching window, retries and partial batch responses, bisecting a failing batch, and an on-failure
 * destination: an SQS queue of its own (SSE-SQS, TLS only) that receives the description of a batch
 * that still failed after its retries (shard, sequence numbers; not the records, which the stream keeps
 * for 24 hours). The event source grants the function DescribeStream, GetRecords, GetShardIterator and
 * ListStreams on that table's stream only, and SendMessage (with GetQueueAttributes, GetQueueUrl) on
 * that queue only.
 */
export class StreamConsumers extends Construct {
  /** The consumer functions, by handler name. */
  readonly functions: Record<string, NodejsFunction> = {};
  /** The on-failure queue of each stream, by "<table>Stream" (e.g. LogStream). */
  readonly failureQueues: Record<string, Queue> = {};
  /** The event sources, by handler name. */
  readonly eventSources: Record<string, DynamoEventSource> = {};

  constructor(scope: Construct, id: string, props: StreamConsumersProps) {
    super(scope, id);
    for (const spec of STREAMS as readonly StreamConsumerSpec[]) {
      const tableSpec = (TABLES as readonly TableSpec[]).find((t) => t.id === spec.table);
      if (!tableSpec?.stream) throw new Error(`stream consumer ${spec.handler}: table ${spec.table} is not declared with a stream (lib/tables.ts)`);
      const name = `${spec.table}Stream`;
      const failures = new Queue(this, `${name}Failures`, {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(STREAM_FAILURE_RETENTION_DAYS),
      });
      Validations.of(failures).acknowledge({
        id: 'AwsSolutions::AwsSolutions-SQS3',
        reason:
          `The on-failure destination of the ${spec.table} table's stream event source: it is that consumer's dead-letter queue ` +
          '(Lambda writes the description of a batch it gave up on there), read by operators after its alarm, so it has no dead-letter queue of its own.',
      });
      const fn = new BrokerFunction(this, spec.handler, {
        spec: nonRouteFunction(spec.handler),
        tables: props.tables,
        queues: props.queues,
        environment: props.environment,
        logRetention: props.logRetention,
      }).fn;
      const source = new DynamoEventSource(props.tables[spec.table], {
        startingPosition: StartingPosition[spec.startingPosition],
        batchSize: spec.batchSize,
        maxBatchingWindow: Duration.seconds(spec.maxBatchingWindowSeconds),
        retryAttempts: spec.maximumRetryAttempts,
        reportBatchItemFailures: spec.reportBatchItemFailures,
        // A failing batch is split in two and retried, down to the failing record, so one bad record
        // does not hold back (or, after the retries, skip) the records around it.
        bisectBatchOnError: true,
        onFailure: new SqsDlq(failures),
      });
      fn.addEventSource(source);
      this.functions[spec.handler] = fn;
      this.failureQueues[name] = failures;
      this.eventSources[spec.handler] = source;
    }
  }

  /** The age of the newest record a consumer has processed when it processed it, worst in 5 minutes: how far it lags its stream. */
  metricIteratorAge(handler: string): Metric {
    const fn = this.functions[handler];
    if (!fn) throw new Error(`no stream consumer ${handler}`);
    return fn.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(5) });
  }
}
