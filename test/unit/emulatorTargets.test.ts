/**
 * Choosing the endpoint of each AWS service by environment alone (local/environment.ts) and how LocalStack is
 * started (local/localstack.ts), without starting anything.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  awsEndpoint,
  EMULATOR_TARGETS,
  emulatorTargetFromEnvironment,
  givenEndpoints,
  sameEndpoint,
  useLocalAws,
  type AwsEndpoints,
} from '../../local/environment.js';
import { findLocalStackPython, localStackEnvironment, LOCALSTACK_SERVED } from '../../local/localstack.js';

const saved = { ...process.env };
afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

describe('emulator targets', () => {
  it('SLUICE_EMULATOR chooses moto (default) or localstack, and nothing else', () => {
    expect(emulatorTargetFromEnvironment({})).toBe('moto');
    expect(emulatorTargetFromEnvironment({ SLUICE_EMULATOR: '' })).toBe('moto');
    expect(emulatorTargetFromEnvironment({ SLUICE_EMULATOR: 'LocalStack' })).toBe('localstack');
    expect(() => emulatorTargetFromEnvironment({ SLUICE_EMULATOR: 'dynamodb-local' })).toThrow(/'moto' or 'localstack'/);
  });

  it('LocalStack never serves DynamoDB or its streams', () => {
    expect(LOCALSTACK_SERVED).toEqual(['sqs', 'sfn', 'scheduler']);
    expect(EMULATOR_TARGETS.localstack.dynamodb).toBe('moto');
    expect(EMULATOR_TARGETS.localstack.dynamodbStreams).toBe('moto');
    const env = localStackEnvironment(4599, '/tmp/x');
    expect(env.SERVICES).toBe('sqs,stepfunctions,scheduler,sts');
    expect(env.STRICT_SERVICE_LOADING).toBe('1');
  });

  it('a per-service variable wins over AWS_ENDPOINT_URL, as in the SDK; empty ones count as unset', () => {
    const env = { AWS_ENDPOINT_URL: 'http://moto', AWS_ENDPOINT_URL_SQS: 'http://ls', AWS_ENDPOINT_URL_SFN: ' ' };
    expect(givenEndpoints(env)).toEqual({
      dynamodb: 'http://moto',
      dynamodbStreams: 'http://moto',
      sqs: 'http://ls',
      sfn: 'http://moto',
      scheduler: 'http://moto',
    });
    expect(givenEndpoints({ AWS_ENDPOINT_URL_SQS: 'http://ls' })).toEqual({ sqs: 'http://ls' });
    expect(givenEndpoints({ AWS_ENDPOINT_URL: 'http://other' }, 'http://given')).toMatchObject({ dynamodb: 'http://given' });
    expect(awsEndpoint('sqs', env)).toBe('http://ls');
    expect(awsEndpoint('sfn', env)).toBe('http://moto');
    expect(awsEndpoint('sfn', {})).toBeUndefined();
  });

  it('useLocalAws sets AWS_ENDPOINT_URL and a variable only for a service served elsewhere', () => {
    process.env.AWS_ENDPOINT_URL_DYNAMODB = 'http://stale';
    const endpoints: AwsEndpoints = { ...sameEndpoint('http://moto'), sqs: 'http://ls', sfn: 'http://ls', scheduler: 'http://ls' };
    useLocalAws(endpoints, 'p');
    expect(process.env.AWS_ENDPOINT_URL).toBe('http://moto');
    expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toBeUndefined();
    expect(process.env.AWS_ENDPOINT_URL_DYNAMODB_STREAMS).toBeUndefined();
    expect([process.env.AWS_ENDPOINT_URL_SQS, process.env.AWS_ENDPOINT_URL_SFN, process.env.AWS_ENDPOINT_URL_SCHEDULER]).toEqual([
      'http://ls',
      'http://ls',
      'http://ls',
    ]);
    // A string moves the default alone.
    useLocalAws('http://moto2', 'p');
    expect(process.env.AWS_ENDPOINT_URL).toBe('http://moto2');
    expect(process.env.AWS_ENDPOINT_URL_SQS).toBe('http://ls');
  });

  it('LocalStack runs with everything under its own folder, on loopback, and none of our AWS_* variables', () => {
    process.env.AWS_ENDPOINT_URL = 'http://moto';
    process.env.AWS_ENDPOINT_URL_SQS = 'http://ls';
    const env = localStackEnvironment(4599, '/p/.sluice/localstack/4599');
    expect(Object.keys(env).filter((k) => k.startsWith('AWS_'))).toEqual([]);
    expect(env).toMatchObject({
      OVERRIDE_IN_DOCKER: '0',
      FILESYSTEM_ROOT: '/p/.sluice/localstack/4599/fs',
      TMPDIR: '/p/.sluice/localstack/4599/tmp',
      GATEWAY_LISTEN: '127.0.0.1:4599',
      LOCALSTACK_HOST: '127.0.0.1:4599',
      SQS_ENDPOINT_STRATEGY: 'path',
      DNS_ADDRESS: '0',
    });
  });

  it('names what is missing when no Python ≥ 3.13 is found', () => {
    expect(() => findLocalStackPython({ SLUICE_LOCALSTACK_PYTHON: '/nonexistent/python3' })).toThrow(
      /needs Python ≥ 3\.13.*Tried: \/nonexistent\/python3 \(not found\).*SLUICE_LOCALSTACK_PYTHON/,
    );
  });
});
