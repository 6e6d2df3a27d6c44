/**
 * The bundles `cdk synth` builds are what Lambda runs. This loads the synthesized bundles of a few
 * handlers (ESM, AWS SDK left out as in the Lambda runtime) and invokes them with API Gateway v2 events
 * against the emulator, so a bundling mistake (a missing require shim, a dependency left out) fails here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { localContext } from '../../local/lambdaContext.js';
import { matchRoute, toApiGatewayEvent } from '../../local/apiGateway.js';
import type { IncomingMessage } from 'node:http';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = join(ROOT, 'cdk.out');
const TEMPLATE = join(OUT, 'Sluice.template.json');

/* eslint-disable @typescript-eslint/no-explicit-any */
type Handler = (event: unknown, context: unknown) => Promise<any>;

async function bundledHandler(name: string): Promise<Handler> {
  const template = JSON.parse(readFileSync(TEMPLATE, 'utf8'));
  const fn = Object.values<any>(template.Resources).find(
    (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment.Variables.SLUICE_HANDLER === name,
  );
  const bundle = join(OUT, fn.Metadata['aws:asset:path'], 'index.mjs');
  return (await import(pathToFileURL(bundle).href)).handler;
}

function event(method: string, path: string, body?: unknown) {
  const matched = matchRoute(method, path);
  if (!matched || matched === 'method-not-allowed') throw new Error(`no route ${method} ${path}`);
  const req = { headers: { 'content-type': 'application/json' }, method, httpVersion: '1.1', socket: {} } as unknown as IncomingMessage;
  return toApiGatewayEvent(req, new URL(`http://localhost${path}`), matched, body === undefined ? '' : JSON.stringify(body));
}

describe('bundled Lambda code', () => {
  beforeAll(() => {
    // `npm test` synthesizes first; running this file alone synthesizes here.
    if (!existsSync(TEMPLATE)) execFileSync('npx', ['cdk', 'synth', '--quiet', '--no-notices'], { cwd: ROOT, stdio: 'ignore' });
  }, 300_000);

  it('creates a topic, produces and pulls through the synthesized bundles', async () => {
    const putTopic = await bundledHandler('putTopic');
    const putGroup = await bundledHandler('putGroup');
    const produce = await bundledHandler('produce');
    const pull = await bundledHandler('pull');
    const topic = `bundle-${Date.now().toString(36)}`;
    const created = await putTopic(event('PUT', `/v1/topics/${topic}`, { partitions: 1 }), localContext('putTopic'));
    expect(created.statusCode).toBe(201);
    expect((await putGroup(event('PUT', `/v1/topics/${topic}/groups/g`, { startFrom: 'earliest' }), localContext('putGroup'))).statusCode).toBe(201);
    const produced = await produce(event('POST', `/v1/topics/${topic}/messages`, { messages: [{ body: 'from the bundle' }] }), localContext('produce'));
    expect(JSON.parse(produced.body).results[0]).toMatchObject({ partition: 0, offset: 0 });
    const pulled = await pull(event('POST', `/v1/topics/${topic}/groups/g/pull`, { max: 1 }), localContext('pull'));
    expect(JSON.parse(pulled.body).messages[0].body).toBe('from the bundle');
    const bad = await produce(event('POST', `/v1/topics/${topic}/messages`, { messages: [] }), localContext('produce'));
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('ValidationError');
  });
});
