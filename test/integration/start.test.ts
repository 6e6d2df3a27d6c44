/**
 * `npm start` end to end: the entry point starts the emulator and the API, prints the URL, serves
 * requests, and Ctrl-C (SIGINT) stops everything it started.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../local/emulator.js';

const ROOT = resolve(import.meta.dirname, '../..');

const listening = (port: number) =>
  new Promise<boolean>((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), done(true)));
    socket.once('error', () => done(false));
  });

describe('npm start', () => {
  it('serves the API with its own emulator and stops both on Ctrl-C', async () => {
    const [apiPort, emulatorPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['--import', 'tsx', 'local/start.ts'], {
      cwd: ROOT,
      env: { ...process.env, SLUICE_PORT: String(apiPort), SLUICE_EMULATOR_PORT: String(emulatorPort), AWS_ENDPOINT_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const deadline = Date.now() + 60_000;
    while (!output.includes('Sluice is running') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(output).toContain(`API       http://127.0.0.1:${apiPort}`);
    expect(output).toContain('curl -s -X POST');

    const url = `http://127.0.0.1:${apiPort}`;
    const json = { 'content-type': 'application/json' };
    expect((await fetch(`${url}/v1/topics/hello`, { method: 'PUT', headers: json, body: '{"partitions":1}' })).status).toBe(201);
    await fetch(`${url}/v1/topics/hello/groups/g`, { method: 'PUT', headers: json, body: '{"startFrom":"earliest"}' });
    await fetch(`${url}/v1/topics/hello/messages`, { method: 'POST', headers: json, body: '{"messages":[{"body":"hi"}]}' });
    const pulled = await (await fetch(`${url}/v1/topics/hello/groups/g/pull`, { method: 'POST', headers: json, body: '{}' })).json();
    expect(pulled.messages.map((m: { body: string }) => m.body)).toEqual(['hi']);
    expect(await listening(emulatorPort)).toBe(true);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(await listening(apiPort)).toBe(false);
    expect(await listening(emulatorPort)).toBe(false);
  });
});
