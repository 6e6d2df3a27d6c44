/**
 * The suite runs where SLUICE_EMULATOR says (docs/testing.md, "Emulator targets"): every AWS call of the code goes
 * through the SDK's own endpoint variables, so this checks those variables and what answers behind them.
 */
import { SQSClient, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { describe, expect, inject, it } from 'vitest';
import { AWS_SERVICES, awsEndpoint, EMULATOR_TARGETS, emulatorTargetFromEnvironment } from '../../local/environment.js';

/** moto answers /moto-api/; LocalStack /_localstack/health with the services it runs. */
async function whatServes(endpoint: string): Promise<{ moto: boolean; localstack?: Record<string, string> }> {
  const moto = await fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false);
  const health = await fetch(`${endpoint}/_localstack/health`).then(
    async (r) => (r.ok ? ((await r.json()) as { services?: Record<string, string> }).services : undefined),
    () => undefined,
  );
  return { moto, localstack: health };
}

const LOCALSTACK_IDS = { dynamodb: 'dynamodb', dynamodbStreams: 'dynamodbstreams', sqs: 'sqs', sfn: 'stepfunctions', scheduler: 'scheduler' };

describe('emulator target', () => {
  it('each service is reached through its own endpoint variable, at the endpoint the global setup chose', () => {
    const endpoints = inject('awsEndpoints');
    expect(process.env.AWS_ENDPOINT_URL).toBe(endpoints.default);
    for (const service of AWS_SERVICES) expect(awsEndpoint(service), service).toBe(endpoints[service]);
  });

  it('what the target assigns a service serves it, and LocalStack runs no DynamoDB', async () => {
    const target = emulatorTargetFromEnvironment();
    const endpoints = inject('awsEndpoints');
    const servedBy = inject('awsServedBy');
    for (const service of AWS_SERVICES) {
      if (servedBy[service] === 'given') continue;
      expect(servedBy[service], service).toBe(EMULATOR_TARGETS[target][service]);
      const found = await whatServes(endpoints[service]);
      if (servedBy[service] === 'moto') expect(found.moto, `${service} on moto`).toBe(true);
      else {
        expect(found.localstack?.[LOCALSTACK_IDS[service]], `${service} on LocalStack`).toBe('running');
        expect(found.localstack?.dynamodb).toBe('disabled');
        expect(found.localstack?.dynamodbstreams).toBe('disabled');
      }
    }
  });

  it("the queue URLs are on the SQS endpoint (else the SDK would send each call to the queue URL's host)", async () => {
    const sqs = new SQSClient({});
    for (const queue of Object.values(inject('queueUrls'))) {
      if (inject('awsServedBy').sqs !== 'given') expect(new URL(queue.url).origin).toBe(new URL(inject('awsEndpoints').sqs).origin);
      const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ['QueueArn'] }));
      expect(attributes.Attributes?.QueueArn).toBe(queue.arn);
    }
    sqs.destroy();
  });
});
