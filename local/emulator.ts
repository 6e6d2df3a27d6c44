import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/**
 * The AWS emulator: moto's server mode, installed into a project-local virtualenv (.venv, git-ignored)
 * on first use and started on loopback. Pinned, because emulator behaviour is part of what tests see.
 */
export const MOTO_VERSION = '5.2.5';
const PROJECT_ROOT = resolve(import.meta.dirname, '..');
const VENV = join(PROJECT_ROOT, '.venv');
const MARKER = join(VENV, `.moto-${MOTO_VERSION}-installed`);
const VENV_PYTHON = join(VENV, 'bin', 'python');
/** Our launcher: moto's app with DynamoDB requests serialized (see the file for why). */
const LAUNCHER = join(PROJECT_ROOT, 'local', 'moto_server.py');

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`'${command} ${args.join(' ')}' failed (exit ${result.status ?? result.signal}).`);
}

const INSTALL_LOCK = join(PROJECT_ROOT, '.sluice', 'install.lock');
/** An install lock older than this was left by a killed install. */
const STALE_LOCK_MS = 10 * 60_000;

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Installs moto into .venv unless this exact version is there already. Idempotent, and safe when
 * `npm start` and `npm test` start at once on a fresh machine: one installs, the other waits.
 */
export function ensureEmulatorInstalled(log: (line: string) => void = console.log) {
  if (existsSync(MARKER) && existsSync(VENV_PYTHON)) return;
  mkdirSync(join(PROJECT_ROOT, '.sluice'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(INSTALL_LOCK);
      break;
    } catch {
      if (Date.now() - statSync(INSTALL_LOCK).mtimeMs > STALE_LOCK_MS) rmSync(INSTALL_LOCK, { recursive: true, force: true });
      else {
        log('[sluice] Another process is installing the emulator; waiting for it …');
        pause(2000);
      }
      if (existsSync(MARKER) && existsSync(VENV_PYTHON)) return;
    }
  }
  try {
    installEmulator(log);
  } finally {
    rmSync(INSTALL_LOCK, { recursive: true, force: true });
  }
}

function installEmulator(log: (line: string) => void) {
  if (existsSync(MARKER) && existsSync(VENV_PYTHON)) return;
  const python = process.env.PYTHON ?? 'python3';
  log(`[sluice] First run: installing the AWS emulator (moto[server]==${MOTO_VERSION}) into ${VENV} — this takes a minute, once.`);
  if (!existsSync(join(VENV, 'bin', 'python'))) run(python, ['-m', 'venv', VENV]);
  run(join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `moto[server]==${MOTO_VERSION}`]);
  writeFileSync(MARKER, `${new Date().toISOString()}\n`);
  log('[sluice] Emulator installed.');
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface RunningEmulator {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export const EMULATOR_LOG_DIR = join(PROJECT_ROOT, '.sluice');

/**
 * Starts moto's server (through local/moto_server.py) on 127.0.0.1 and waits until it answers. Its request log goes to a file: moto
 * writes a line per request, and an unread pipe fills up and stalls the emulator.
 */
export async function startEmulator(port: number): Promise<RunningEmulator> {
  mkdirSync(EMULATOR_LOG_DIR, { recursive: true });
  const logFile = join(EMULATOR_LOG_DIR, `emulator-${port}.log`);
  const logFd = openSync(logFile, 'w');
  const child: ChildProcess = spawn(VENV_PYTHON, [LAUNCHER, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', logFd, logFd],
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`The emulator exited at start (is port ${port} in use?).`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('The emulator did not answer within 30 s.');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    // The log is kept when the emulator fails to start, and removed after a clean stop.
    stop: () =>
      new Promise<void>((done) => {
        const finish = () => {
          rmSync(logFile, { force: true });
          done();
        };
        if (exited) return finish();
        child.once('exit', finish);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
