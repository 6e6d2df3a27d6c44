import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/**
 * The AWS emulator: moto's server mode, installed into a project-local virtualenv (.venv, git-ignored)
 * on first use and started on loopback. Pinned, because emulator behaviour is part of what tests see.
 */
export const MOTO_VERSION = '5.2.5';
export const PROJECT_ROOT = resolve(import.meta.dirname, '..');
const VENV = join(PROJECT_ROOT, '.venv');
const MARKER = join(VENV, `.moto-${MOTO_VERSION}-installed`);
const VENV_PYTHON = join(VENV, 'bin', 'python');
/** Our launcher: moto's app with DynamoDB requests serialized (see the file for why). */
const LAUNCHER = join(PROJECT_ROOT, 'local', 'moto_server.py');

export function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`'${command} ${args.join(' ')}' failed (exit ${result.status ?? result.signal}).`);
}

const SLUICE_DIR = join(PROJECT_ROOT, '.sluice');
/** An install lock older than this was left by a killed install. */
const STALE_LOCK_MS = 10 * 60_000;

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Runs `install` unless `installed()` says it is done, under a lock folder in .sluice/, so that `npm start` and
 * `npm test` starting at once on a fresh machine do not install twice: one installs, the other waits.
 */
export function installOnce(what: string, installed: () => boolean, install: () => void, log: (line: string) => void = console.log) {
  if (installed()) return;
  mkdirSync(SLUICE_DIR, { recursive: true });
  const lock = join(SLUICE_DIR, `install-${what}.lock`);
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) rmSync(lock, { recursive: true, force: true });
      else {
        log(`[sluice] Another process is installing ${what}; waiting for it …`);
        pause(2000);
      }
      if (installed()) return;
    }
  }
  try {
    if (!installed()) install();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Installs moto into .venv unless this exact version is there already. Idempotent, and safe when
 * `npm start` and `npm test` start at once on a fresh machine: one installs, the other waits.
 */
export function ensureEmulatorInstalled(log: (line: string) => void = console.log) {
  installOnce('moto', () => existsSync(MARKER) && existsSync(VENV_PYTHON), () => installEmulator(log), log);
}

function installEmulator(log: (line: string) => void) {
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

export interface ServerProcessOptions {
  /** For messages: "the emulator", "LocalStack". */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Where its output goes (an unread pipe would fill up and stall it). */
  readonly logFile: string;
  /** A URL that answers 2xx once it serves. */
  readonly readyUrl: string;
  /** Whether that answer says it is ready (by default any 2xx does). */
  readonly isReady?: (res: Response) => Promise<boolean>;
  readonly endpoint: string;
  readonly startTimeoutMs?: number;
  /** How long a SIGTERM may take before SIGKILL. */
  readonly stopGraceMs?: number;
  /**
   * Removes what it leaves after a clean stop (its log by default); everything is kept when it fails to start, or
   * when SLUICE_KEEP_EMULATOR_LOGS=1.
   */
  readonly cleanUp?: () => void;
}

/** Starts a server process on loopback and waits until `readyUrl` answers; stop() ends it (SIGTERM, then SIGKILL). */
export async function startServerProcess(options: ServerProcessOptions): Promise<RunningEmulator> {
  const logFd = openSync(options.logFile, 'w');
  const child: ChildProcess = spawn(options.command, [...options.args], { stdio: ['ignore', logFd, logFd], env: options.env ?? process.env });
  let exited = false;
  child.on('exit', () => (exited = true));
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`${options.name} exited at start (is ${options.endpoint} in use? Its log: ${options.logFile}).`);
    try {
      const res = await fetch(options.readyUrl);
      if (res.ok && (!options.isReady || (await options.isReady(res)))) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not answer within ${timeoutMs / 1000} s (its log: ${options.logFile}).`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // SLUICE_KEEP_EMULATOR_LOGS=1 keeps them after a clean stop too.
  const keep = process.env.SLUICE_KEEP_EMULATOR_LOGS === '1';
  const cleanUp = keep ? () => undefined : (options.cleanUp ?? (() => rmSync(options.logFile, { force: true })));
  return {
    endpoint: options.endpoint,
    stop: () =>
      new Promise<void>((done) => {
        const finish = () => {
          cleanUp();
          done();
        };
        if (exited) return finish();
        child.once('exit', finish);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), options.stopGraceMs ?? 3000).unref();
      }),
  };
}

/**
 * Starts moto's server (through local/moto_server.py) on 127.0.0.1 and waits until it answers. Its request log goes to a file: moto
 * writes a line per request, and an unread pipe fills up and stalls the emulator. The log is kept when the emulator fails to
 * start, and removed after a clean stop.
 */
export async function startEmulator(port: number): Promise<RunningEmulator> {
  mkdirSync(EMULATOR_LOG_DIR, { recursive: true });
  const endpoint = `http://127.0.0.1:${port}`;
  return startServerProcess({
    name: 'The emulator (moto)',
    command: VENV_PYTHON,
    args: [LAUNCHER, '-H', '127.0.0.1', '-p', String(port)],
    logFile: join(EMULATOR_LOG_DIR, `emulator-${port}.log`),
    readyUrl: `${endpoint}/moto-api/`,
    endpoint,
  });
}
