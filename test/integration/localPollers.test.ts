import { createHash } from 'node:crypto';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetScheduleCommand, ListSchedulesCommand, SchedulerClient, UpdateScheduleCommand } from '@aws-sdk/client-scheduler';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { QUEUES } from '../../lib/queues.js';
import { DELAY_SWEEP_FUNCTION, DELAY_SWEEP_SECONDS, timeoutSecondsOf } from '../../lib/routes.js';
import { TABLES } from '../../lib/tables.js';
import { createQueues, ensureQueue, queueEnvironment } from '../../local/queues.js';
import { createSchedules, localFunctionArn, localScheduleGroup, rateExpression, rateIntervalMs, startScheduleDriver } from '../../local/schedules.js';
import { judgeBatchResponse, startSqsPoller, type SqsHandler, type SqsPollerOptions } from '../../local/sqsPoller.js';
import { sleep, uniqueName, useLocalServices } from '../support/api.js';

/**
 * The local runtime's stand-ins for Lambda's SQS event source mapping and EventBridge Scheduler
 * (docs/local-runtime.md): the pollers get real SQS event shapes, honour visibility timeouts, delays and
 * partial batch responses, leave failed, timed-out and invalid batches, and SQS's redrive policy ends a
 * poison message in the dead-letter queue. Each test makes its own queue and injects its own handler.
 */

const sqs = new SQSClient({});
const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});
afterAll(() => sqs.destroy());

async function makeQueue(options: { visibility: number; maxReceiveCount?: number }) {
  const name = uniqueName('lp');
  let dlq: { url: string; arn: string } | undefined;
  if (options.maxReceiveCount !== undefined) dlq = await ensureQueue(sqs, `${name}-dlq`, {});
  const queue = await ensureQueue(sqs, name, {
    VisibilityTimeout: String(options.visibility),
    ...(dlq ? { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: options.maxReceiveCount }) } : {}),
  });
  return { ...queue, dlq };
}

interface Delivery {
  readonly at: number;
  readonly record: SQSRecord;
  readonly batch: number;
}

/** A poller over `queueUrl` whose handler records every record it is given, then does what `act` says. */
async function poll(
  queueUrl: string,
  act: (event: SQSEvent, context: Context, call: number) => Promise<unknown> = async () => undefined,
  options: Partial<SqsPollerOptions> = {},
) {
  const deliveries: Delivery[] = [];
  const events: SQSEvent[] = [];
  const contexts: Context[] = [];
  const logs: string[] = [];
  let calls = 0;
  const handler: SqsHandler = async (event, context) => {
    const call = calls++;
    const at = Date.now();
    events.push(event);
    contexts.push(context);
    for (const record of event.Records) deliveries.push({ at, record, batch: call });
    return act(event, context, call);
  };
  const poller = await startSqsPoller({
    queueUrl,
    functionName: 'test-consumer',
    handler,
    timeoutSeconds: 1,
    log: (line) => logs.push(line),
    ...options,
  });
  running.push(poller);
  return { poller, deliveries, events, contexts, logs };
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function queueCounts(url: string) {
  const a = (
    await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    )
  ).Attributes!;
  return {
    visible: Number(a.ApproximateNumberOfMessages),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed),
  };
}

const bodiesOf = (deliveries: readonly Delivery[]) => deliveries.map((d) => d.record.body);
const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

describe('the local queues and schedules come from the declarations', () => {
  it('every test worker has the queue URLs of lib/queues.ts, and createQueues is idempotent with the redrive policy', async () => {
    const provided = inject('queueUrls');
    for (const [name, value] of Object.entries(queueEnvironment(provided))) expect(process.env[name]).toBe(value);
    expect(process.env.DELAY_QUEUE_URL).toBe(provided.Delay.url);

    const prefix = uniqueName('cq');
    const first = await createQueues(sqs, prefix);
    const again = await createQueues(sqs, prefix);
    expect(again).toEqual(first);
    for (const spec of QUEUES) {
      const urls = first[spec.id];
      expect(urls.url).toContain(`${prefix}-${spec.id}`);
      const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: urls.url, AttributeNames: ['All'] }))).Attributes!;
      expect(Number(a.VisibilityTimeout)).toBe(spec.visibilityTimeoutSeconds);
      expect(JSON.parse(a.RedrivePolicy!)).toEqual({ deadLetterTargetArn: urls.deadLetterArn, maxReceiveCount: spec.maxReceiveCount });
      const d = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: urls.deadLetterUrl, AttributeNames: ['MessageRetentionPeriod'] }))).Attributes!;
      expect(Number(d.MessageRetentionPeriod)).toBe(spec.deadLetterRetentionDays * 86_400);
    }
  });

  it('createTables creates the global secondary indexes of lib/tables.ts', async () => {
    const client = new DynamoDBClient({});
    for (const spec of TABLES) {
      const table = (await client.send(new DescribeTableCommand({ TableName: process.env[spec.envVar] }))).Table!;
      const declared = 'indexes' in spec ? spec.indexes : [];
      expect((table.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName).sort()).toEqual(declared.map((i) => i.name).sort());
      for (const index of declared) {
        const made = table.GlobalSecondaryIndexes!.find((i) => i.IndexName === index.name)!;
        expect(made.KeySchema).toEqual([
          { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
          ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' }] : []),
        ]);
        expect(made.Projection?.ProjectionType).toBe('ALL');
      }
      const defined = table.AttributeDefinitions!.map((a) => a.AttributeName);
      expect(new Set(defined).size).toBe(defined.length);
    }
    client.destroy();
  });

  it('the sweep schedule is stored in the Scheduler API as the stack declares it, and the driver runs what it reads back', async () => {
    expect(rateExpression(DELAY_SWEEP_SECONDS)).toBe('rate(1 minute)');
    expect(rateExpression(7200)).toBe('rate(2 hours)');
    expect(() => rateExpression(90)).toThrow(/whole minutes/);
    expect(rateIntervalMs('rate(5 minutes)')).toBe(300_000);
    expect(rateIntervalMs('at(2030-01-01T00:00:00)')).toBeUndefined();

    const scheduler = new SchedulerClient({});
    const prefix = uniqueName('sd');
    await createSchedules(scheduler, prefix);
    await createSchedules(scheduler, prefix); // idempotent
    const group = localScheduleGroup(prefix);
    const listed = (await scheduler.send(new ListSchedulesCommand({ GroupName: group }))).Schedules ?? [];
    expect(listed.map((s) => s.Name)).toEqual(['delay-sweep']);
    const stored = await scheduler.send(new GetScheduleCommand({ GroupName: group, Name: 'delay-sweep' }));
    expect(stored.ScheduleExpression).toBe('rate(1 minute)');
    expect(stored.Target?.Arn).toBe(localFunctionArn(prefix, DELAY_SWEEP_FUNCTION.handler));

    const runs: Array<{ event: unknown; remaining: number }> = [];
    const driver = await startScheduleDriver({
      prefix,
      client: scheduler,
      intervalSeconds: { sweepDelayed: 0.2 },
      handlers: { sweepDelayed: async (event, context) => void runs.push({ event, remaining: context.getRemainingTimeInMillis() }) },
      log: () => undefined,
    });
    running.push(driver);
    expect(driver.schedules.map((s) => [s.name, s.handler, s.intervalMs])).toEqual([['delay-sweep', 'sweepDelayed', 200]]);
    await waitFor('three sweeps', () => runs.length >= 3, 5_000);
    expect(runs[0]!.event).toEqual({});
    // The context counts down from the sweep's declared timeout (60 s).
    expect(runs[0]!.remaining).toBeGreaterThan((timeoutSecondsOf(DELAY_SWEEP_FUNCTION) - 1) * 1000);
    expect(runs[0]!.remaining).toBeLessThanOrEqual(timeoutSecondsOf(DELAY_SWEEP_FUNCTION) * 1000);
    await driver.stop();

    // The driver reads the schedule back: disabled there, it does not run.
    await scheduler.send(
      new UpdateScheduleCommand({
        Name: 'delay-sweep',
        GroupName: group,
        ScheduleExpression: stored.ScheduleExpression,
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: stored.Target,
        State: 'DISABLED',
      }),
    );
    const idle = await startScheduleDriver({ prefix, client: scheduler, intervalSeconds: { sweepDelayed: 0.2 }, handlers: { sweepDelayed: async () => undefined } });
    running.push(idle);
    expect(idle.schedules).toEqual([]);
    scheduler.destroy();
  });
});

describe('the SQS poller invokes handlers as Lambda’s event source mapping does', () => {
  it('hands the handler a real SQS event, a Lambda context with the timeout, and deletes what succeeded', async () => {
    const q = await makeQueue({ visibility: 5 });
    const sentAt = Date.now();
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: q.url,
        MessageBody: '{"hello":"world"}',
        MessageAttributes: {
          topic: { DataType: 'String', StringValue: 'orders' },
          count: { DataType: 'Number', StringValue: '42' },
          raw: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3]) },
        },
      }),
    );
    const { poller, events, contexts } = await poll(q.url, undefined, { timeoutSeconds: 4 });
    await waitFor('the delivery', () => poller.counts.deleted === 1);

    expect(events).toHaveLength(1);
    const record = events[0]!.Records[0]!;
    expect(record.messageId).toBe(sent.MessageId);
    expect(record.receiptHandle).toEqual(expect.any(String));
    expect(record.body).toBe('{"hello":"world"}');
    expect(record.md5OfBody).toBe(md5('{"hello":"world"}'));
    expect(record.md5OfMessageAttributes).toBe(sent.MD5OfMessageAttributes);
    expect(record.eventSource).toBe('aws:sqs');
    expect(record.eventSourceARN).toBe(q.arn);
    expect(record.awsRegion).toBe(process.env.AWS_REGION);
    expect(record.attributes.ApproximateReceiveCount).toBe('1');
    expect(Number(record.attributes.SentTimestamp)).toBeGreaterThanOrEqual(sentAt - 1000);
    expect(Number(record.attributes.SentTimestamp)).toBeLessThanOrEqual(Date.now());
    expect(Number(record.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(Number(record.attributes.SentTimestamp));
    expect(record.attributes.SenderId).toMatch(/\S/);
    expect(record.messageAttributes).toEqual({
      topic: { stringValue: 'orders', stringListValues: [], binaryListValues: [], dataType: 'String' },
      count: { stringValue: '42', stringListValues: [], binaryListValues: [], dataType: 'Number' },
      raw: { binaryValue: Buffer.from([1, 2, 3]).toString('base64'), stringListValues: [], binaryListValues: [], dataType: 'Binary' },
    });
    expect(contexts[0]!.functionName).toBe('sluice-test-consumer');
    expect(contexts[0]!.getRemainingTimeInMillis()).toBeLessThanOrEqual(4000);
    expect(poller.counts).toMatchObject({ batches: 1, succeeded: 1, failed: 0, received: 1, deleted: 1, returned: 0 });
    expect(await queueCounts(q.url)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('batches up to the batch size', async () => {
    const q = await makeQueue({ visibility: 5 });
    await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: q.url, Entries: ['1', '2', '3', '4', '5'].map((b) => ({ Id: `m${b}`, MessageBody: b })) }),
    );
    const { poller, events, deliveries } = await poll(q.url, undefined, { batchSize: 3, concurrency: 1, timeoutSeconds: 4 });
    await waitFor('five deletions', () => poller.counts.deleted === 5);
    expect(bodiesOf(deliveries).sort()).toEqual(['1', '2', '3', '4', '5']);
    expect(events.every((e) => e.Records.length <= 3)).toBe(true);
    expect(events.some((e) => e.Records.length > 1)).toBe(true);
  });

  it('a partial batch response deletes the others and the failed message comes back after the visibility timeout', async () => {
    const q = await makeQueue({ visibility: 2 });
    await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: q.url, Entries: ['a', 'bad', 'c'].map((b) => ({ Id: b, MessageBody: b })) }),
    );
    const { poller, deliveries } = await poll(
      q.url,
      async (event, _context, call) => ({
        batchItemFailures: call === 0 ? event.Records.filter((r) => r.body === 'bad').map((r) => ({ itemIdentifier: r.messageId })) : [],
      }),
      { concurrency: 1 },
    );
    await waitFor('the first batch', () => poller.counts.batches === 1 && poller.counts.deleted === 2);
    expect(bodiesOf(deliveries).sort()).toEqual(['a', 'bad', 'c']);
    expect(poller.counts).toMatchObject({ partial: 1, returned: 1 });
    // Only the failed message is left, in flight until its visibility timeout.
    expect(await queueCounts(q.url)).toEqual({ visible: 0, inFlight: 1, delayed: 0 });

    await waitFor('the redelivery', () => deliveries.length === 4);
    const [first, again] = [deliveries.find((d) => d.record.body === 'bad')!, deliveries[3]!];
    expect(again.record.body).toBe('bad');
    expect(again.record.attributes.ApproximateReceiveCount).toBe('2');
    expect(again.at - first.at).toBeGreaterThanOrEqual(1900);
    await waitFor('its deletion', () => poller.counts.deleted === 3);
    await sleep(2500); // past another visibility timeout: nothing else comes back
    expect(deliveries).toHaveLength(4);
    expect(await queueCounts(q.url)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('a handler that throws leaves the whole batch for the visibility timeout', async () => {
    const q = await makeQueue({ visibility: 2 });
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: ['x', 'y'].map((b) => ({ Id: b, MessageBody: b })) }));
    const { poller, deliveries, logs } = await poll(
      q.url,
      async (_event, _context, call) => {
        if (call === 0) throw new Error('boom');
      },
      { concurrency: 1 },
    );
    await waitFor('the failed batch', () => poller.counts.failed === 1);
    expect(bodiesOf(deliveries).sort()).toEqual(['x', 'y']);
    expect(poller.counts.deleted).toBe(0);
    expect(logs.join('\n')).toMatch(/failed: .*boom/);
    expect(await queueCounts(q.url)).toEqual({ visible: 0, inFlight: 2, delayed: 0 });

    await waitFor('both back and deleted', () => poller.counts.deleted === 2);
    const again = deliveries.slice(2);
    expect(bodiesOf(again).sort()).toEqual(['x', 'y']);
    expect(again.every((d) => d.record.attributes.ApproximateReceiveCount === '2')).toBe(true);
    expect(again[0]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(1900);
  });

  it('an invalid batch response (an itemIdentifier not in the batch) fails the whole batch', async () => {
    const q = await makeQueue({ visibility: 2 });
    await sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: ['p', 'q'].map((b) => ({ Id: b, MessageBody: b })) }));
    const { poller, deliveries, logs } = await poll(
      q.url,
      async (_event, _context, call) => (call === 0 ? { batchItemFailures: [{ itemIdentifier: 'no-such-message' }] } : {}),
      { concurrency: 1 },
    );
    await waitFor('the invalid batch', () => poller.counts.invalidResponses === 1);
    expect(poller.counts).toMatchObject({ failed: 1, deleted: 0, returned: 2 });
    expect(logs.join('\n')).toContain('INVALID BATCH RESPONSE');
    await waitFor('both back and deleted', () => poller.counts.deleted === 2);
    expect(bodiesOf(deliveries.slice(2)).sort()).toEqual(['p', 'q']);
  });

  it('reads batch responses by Lambda’s success and failure conditions', () => {
    const ids = ['m1', 'm2'];
    const failedOf = (v: ReturnType<typeof judgeBatchResponse>) => (v.ok ? [...v.failed] : v.reason);
    for (const success of [undefined, null, {}, { batchItemFailures: [] }, { batchItemFailures: null }, { statusCode: 200 }]) {
      expect(failedOf(judgeBatchResponse(ids, success))).toEqual([]);
    }
    expect(failedOf(judgeBatchResponse(ids, { batchItemFailures: [{ itemIdentifier: 'm2' }] }))).toEqual(['m2']);
    for (const invalid of [
      { batchItemFailures: [{ itemIdentifier: '' }] },
      { batchItemFailures: [{ itemIdentifier: null }] },
      { batchItemFailures: [{ messageId: 'm1' }] },
      { batchItemFailures: [{ itemIdentifier: 'm3' }] },
      { batchItemFailures: 'm1' },
      'ok',
      ['m1'],
    ]) {
      expect(judgeBatchResponse(ids, invalid).ok, JSON.stringify(invalid)).toBe(false);
    }
  });

  it('a message received maxReceiveCount times ends in the dead-letter queue', async () => {
    const q = await makeQueue({ visibility: 1, maxReceiveCount: 2 });
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'poison' }));
    const { deliveries } = await poll(q.url, async () => {
      throw new Error('always');
    });
    let dead: string | undefined;
    await waitFor('the dead letter', async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.dlq!.url, WaitTimeSeconds: 1 }));
      dead = out.Messages?.[0]?.MessageId;
      return out.Messages?.[0]?.Body === 'poison';
    });
    expect(dead).toBe(sent.MessageId);
    expect(deliveries.map((d) => d.record.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
    await sleep(1500);
    expect(deliveries).toHaveLength(2);
    expect(await queueCounts(q.url)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('honours DelaySeconds: nothing before the delay, and a long poll gets it as soon as it ends', async () => {
    const q = await makeQueue({ visibility: 5 });
    const { deliveries } = await poll(q.url, undefined, { timeoutSeconds: 4 });
    await sleep(300); // the long polls are waiting when the messages are sent
    const sent: Record<string, number> = {};
    for (const delay of [1, 2, 3]) {
      sent[`d${delay}`] = Date.now();
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: `d${delay}`, DelaySeconds: delay }));
    }
    await sleep(700);
    expect(deliveries).toHaveLength(0);
    expect((await queueCounts(q.url)).delayed).toBe(3);
    await waitFor('three deliveries', () => deliveries.length === 3, 10_000);
    for (const d of deliveries) {
      const due = sent[d.record.body]! + Number(d.record.body.slice(1)) * 1000;
      expect(d.at).toBeGreaterThanOrEqual(due);
      // local/moto_server.py wakes a waiting long poll when the delay ends (stock moto: up to 1 s later).
      expect(d.at - due).toBeLessThan(500);
    }
  });

  it('a handler past its timeout fails its batch; its late result is dropped and the message comes back', async () => {
    const q = await makeQueue({ visibility: 2 });
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'slow' }));
    const { poller, deliveries, logs } = await poll(
      q.url,
      async (_event, _context, call) => {
        if (call === 0) await sleep(1500);
        return { batchItemFailures: [] };
      },
      { timeoutSeconds: 1, concurrency: 1 },
    );
    await waitFor('the timeout', () => poller.counts.timedOut === 1);
    expect(poller.counts).toMatchObject({ failed: 1, deleted: 0 });
    expect(logs.join('\n')).toContain('SQS FUNCTION TIMEOUT');
    await waitFor('the late result logged', () => logs.some((l) => l.includes('after its timeout; its result was dropped')));
    expect(poller.counts.deleted).toBe(0);
    await waitFor('the redelivery, deleted', () => poller.counts.deleted === 1);
    expect(deliveries.map((d) => d.record.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
  });

  it('several batches run at once: a slow batch does not hold up the others', async () => {
    const q = await makeQueue({ visibility: 10 });
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const { poller, deliveries } = await poll(
      q.url,
      async (event) => {
        if (event.Records[0]!.body === 'slow') await blocked;
      },
      { concurrency: 2, batchSize: 1, timeoutSeconds: 10 },
    );
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'slow' }));
    await waitFor('the slow batch', () => deliveries.length === 1);
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'fast' }));
    await waitFor('the fast one, done while the slow one runs', () => poller.counts.deleted === 1);
    expect(bodiesOf(deliveries)).toEqual(['slow', 'fast']);
    release();
    await waitFor('the slow one done', () => poller.counts.deleted === 2);
  });

  it('stop() ends idle long polls at once and waits for the batch in flight', async () => {
    const idle = await makeQueue({ visibility: 5 });
    const { poller: idlePoller } = await poll(idle.url);
    await sleep(300); // its long polls (20 s) are waiting
    const t0 = Date.now();
    await idlePoller.stop();
    expect(Date.now() - t0).toBeLessThan(1000);

    const q = await makeQueue({ visibility: 5 });
    let finished = false;
    const { poller, deliveries } = await poll(
      q.url,
      async () => {
        await sleep(800);
        finished = true;
      },
      { timeoutSeconds: 4 },
    );
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'in flight' }));
    await waitFor('the batch to start', () => deliveries.length === 1);
    await poller.stop();
    expect(finished).toBe(true);
    expect(poller.counts.deleted).toBe(1);
  });

  it('refuses a queue whose visibility timeout is shorter than the function timeout, as Lambda does', async () => {
    const q = await makeQueue({ visibility: 1 });
    await expect(poll(q.url, undefined, { timeoutSeconds: 5 })).rejects.toThrow(/visibility timeout 1 s is less than the function timeout 5 s/);
  });
});

describe('useLocalServices runs the queue consumers and the sweep in a test worker', () => {
  const consumed: SQSRecord[] = [];
  let sweeps = 0;
  const services = useLocalServices({
    ownQueues: true,
    sweepSeconds: 0.2,
    consumers: { handlers: { landDelayed: async (event) => void consumed.push(...event.Records) } },
    scheduledHandlers: { sweepDelayed: async () => void sweeps++ },
  });

  it('on queues of its own, named in this worker’s DELAY_QUEUE_URL', async () => {
    expect(process.env.DELAY_QUEUE_URL).toBe(services.queues!.Delay.url);
    expect(process.env.DELAY_QUEUE_URL).not.toBe(inject('queueUrls').Delay.url);
    await sqs.send(new SendMessageCommand({ QueueUrl: process.env.DELAY_QUEUE_URL, MessageBody: 'to land' }));
    await waitFor('the consumer', () => consumed.length === 1);
    expect(consumed[0]!.eventSourceARN).toBe(services.queues!.Delay.arn);
    await waitFor('a few sweeps', () => sweeps >= 3, 5_000);
    // One poller per queue of lib/queues.ts; only the Delay queue got a message.
    expect(services.pollers.map((p) => p.counts.deleted)).toEqual(QUEUES.map((q) => (q.id === 'Delay' ? 1 : 0)));
  });
});
