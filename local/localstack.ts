import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { installOnce, PROJECT_ROOT, run, startServerProcess, type RunningEmulator } from './emulator.js';
import { AWS_SERVICES, EMULATOR_TARGETS, SERVICE_NAMES, type AwsService } from './environment.js';

/**
 * LocalStack in host mode (no Docker): its last open-source release, installed into a project-local virtualenv
 * (.venv-localstack, git-ignored) on first use and started on loopback with all its files under
 * .sluice/localstack/<port>. It serves only what the `localstack` target gives it (SQS, Step Functions,
 * Scheduler): its DynamoDB wraps DynamoDB Local, whose licence is not open source, and is never enabled here.
 * docs/testing.md, "Emulator targets".
 */
export const LOCALSTACK_VERSION = '2026.3.0';
/**
 * localstack-core with its runtime, and the pins it needs to start: newer cbor2, pyOpenSSL and cryptography
 * releases than these break its import; service-identity is missing from its own requirements.
 */
export const LOCALSTACK_REQUIREMENTS: readonly string[] = [
  `localstack-core[runtime]==${LOCALSTACK_VERSION}`,
  'cbor2<6',
  'pyopenssl>=25,<26',
  'cryptography>=45.0.7,<47',
  'service-identity',
];
/**
 * The oldest Python it runs on. Its metadata says 3.10, but it imports `warnings.deprecated` (new in 3.13): on
 * 3.12 every service plugin fails to load and the runtime stops with "No component plugins found".
 */
export const LOCALSTACK_MIN_PYTHON: readonly [number, number] = [3, 13];

const VENV = join(PROJECT_ROOT, '.venv-localstack');
const VENV_PYTHON = join(VENV, 'bin', 'python');
const REQUIREMENTS_HASH = createHash('sha256').update(LOCALSTACK_REQUIREMENTS.join('\n')).digest('hex').slice(0, 12);
const MARKER = join(VENV, `.localstack-${LOCALSTACK_VERSION}-${REQUIREMENTS_HASH}-installed`);
export const LOCALSTACK_DIR = join(PROJECT_ROOT, '.sluice', 'localstack');

/** LocalStack's name for each service it serves here. */
const LOCALSTACK_SERVICE_IDS: Partial<Record<AwsService, string>> = { sqs: 'sqs', sfn: 'stepfunctions', scheduler: 'scheduler' };
/**
 * Services LocalStack needs for its own work: a Step Functions task (e.g. `sqs:sendMessage.waitForTaskToken`) calls
 * the target service with the state machine's role, assumed through its STS; without it the task fails.
 */
const LOCALSTACK_INTERNAL = ['sts'];
export const LOCALSTACK_SERVED: readonly AwsService[] = AWS_SERVICES.filter((s) => EMULATOR_TARGETS.localstack[s] === 'localstack');

const rel = (path: string) => relative(process.cwd(), path) || '.';

interface PythonFound {
  readonly command: string;
  /** [major, minor, patch], or why it could not be run. */
  readonly version: readonly [number, number, number] | string;
}

function pythonVersion(command: string): PythonFound {
  const result = spawnSync(command, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'], { encoding: 'utf8', timeout: 20_000 });
  if (result.error) return { command, version: (result.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : result.error.message };
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(result.stdout.trim());
  if (result.status !== 0 || !m) return { command, version: `does not run (exit ${result.status})` };
  return { command, version: [Number(m[1]), Number(m[2]), Number(m[3])] };
}

const fits = (found: PythonFound) =>
  typeof found.version !== 'string' &&
  (found.version[0] > LOCALSTACK_MIN_PYTHON[0] || (found.version[0] === LOCALSTACK_MIN_PYTHON[0] && found.version[1] >= LOCALSTACK_MIN_PYTHON[1]));

/** pyenv's interpreters (`pyenv root`, PYENV_ROOT or ~/.pyenv), found without pyenv having to select them. */
function pyenvPythons(): string[] {
  const roots = new Set<string>();
  const fromPyenv = spawnSync('pyenv', ['root'], { encoding: 'utf8', timeout: 10_000 });
  if (fromPyenv.status === 0 && fromPyenv.stdout.trim()) roots.add(fromPyenv.stdout.trim());
  if (process.env.PYENV_ROOT) roots.add(process.env.PYENV_ROOT);
  roots.add(join(homedir(), '.pyenv'));
  const out: string[] = [];
  for (const root of roots) {
    const versions = join(root, 'versions');
    if (!existsSync(versions)) continue;
    for (const v of readdirSync(versions).filter((name) => /^3\.\d+/.test(name))) {
      const python = join(versions, v, 'bin', 'python3');
      if (existsSync(python)) out.push(python);
    }
  }
  return out;
}

/**
 * A Python ≥ 3.13: SLUICE_LOCALSTACK_PYTHON if set (and only it), else python3.13 / python3.14 on PATH, pyenv's
 * versions, python3. 3.13 is preferred over newer ones (what this release was tested on here). Throws naming
 * every interpreter it tried and its version when none fits.
 */
export function findLocalStackPython(env: NodeJS.ProcessEnv = process.env): string {
  const minimum = LOCALSTACK_MIN_PYTHON.join('.');
  const explicit = env.SLUICE_LOCALSTACK_PYTHON?.trim();
  const candidates = explicit ? [explicit] : ['python3.13', 'python3.14', ...pyenvPythons(), 'python3'];
  const found = [...new Set(candidates)].map(pythonVersion);
  const usable = found.filter(fits).sort((a, b) => {
    const [x, y] = [a.version as readonly number[], b.version as readonly number[]];
    // 3.13 first, then newer minors, each newest patch first.
    return (x[1] === 13 ? 0 : x[1]!) - (y[1] === 13 ? 0 : y[1]!) || y[2]! - x[2]!;
  });
  if (usable[0]) return usable[0].command;
  const tried = found.map((f) => `${f.command} (${typeof f.version === 'string' ? f.version : f.version.join('.')})`).join(', ');
  throw new Error(
    `LocalStack ${LOCALSTACK_VERSION} needs Python ≥ ${minimum} (it imports warnings.deprecated; 3.12 fails at start), and none was found. ` +
      `Tried: ${tried}. Install Python ${minimum} (e.g. \`pyenv install ${minimum}\` or your system's python${minimum} package) ` +
      `or point SLUICE_LOCALSTACK_PYTHON at one.`,
  );
}

/**
 * Installs LocalStack into .venv-localstack unless this exact version with these pins is there already.
 * Idempotent; safe when two processes start at once (one installs, the other waits).
 */
export function ensureLocalStackInstalled(log: (line: string) => void = console.log) {
  const installed = () => existsSync(MARKER) && existsSync(VENV_PYTHON);
  installOnce('localstack', installed, () => installLocalStack(log), log);
}

function installLocalStack(log: (line: string) => void) {
  const python = findLocalStackPython();
  const venvVersion = existsSync(VENV_PYTHON) ? pythonVersion(VENV_PYTHON) : undefined;
  if (venvVersion && !fits(venvVersion)) {
    log(`[sluice] ${rel(VENV)} has Python ${String(venvVersion.version)}; LocalStack needs ≥ ${LOCALSTACK_MIN_PYTHON.join('.')}: making it anew.`);
    rmSync(VENV, { recursive: true, force: true });
  }
  const version = pythonVersion(python).version;
  log(
    `[sluice] Installing LocalStack (localstack-core ${LOCALSTACK_VERSION}) with Python ${Array.isArray(version) ? version.join('.') : String(version)} ` +
      `(${python}) into ${rel(VENV)} — about a minute, once.`,
  );
  if (!existsSync(VENV_PYTHON)) run(python, ['-m', 'venv', VENV]);
  run(VENV_PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...LOCALSTACK_REQUIREMENTS]);
  // Its plugin loader swallows import errors ("No component plugins found"); an import names the real cause.
  const check = spawnSync(VENV_PYTHON, ['-c', 'import localstack.aws.components'], {
    encoding: 'utf8',
    env: { ...process.env, OVERRIDE_IN_DOCKER: '0', FILESYSTEM_ROOT: join(LOCALSTACK_DIR, 'install-check') },
  });
  rmSync(join(LOCALSTACK_DIR, 'install-check'), { recursive: true, force: true });
  if (check.status !== 0) throw new Error(`LocalStack was installed but does not import:\n${check.stderr.trim().split('\n').slice(-3).join('\n')}`);
  for (const name of readdirSync(VENV).filter((f) => f.startsWith('.localstack-'))) rmSync(join(VENV, name), { force: true });
  writeFileSync(MARKER, `${new Date().toISOString()}\n`);
  log('[sluice] LocalStack installed.');
}

/**
 * The environment LocalStack runs with: host mode, every file under `dir`, only `services`, on loopback, queue URLs
 * on its own endpoint (`path` strategy: the SDK sends an SQS call to its QueueUrl's host when that differs from
 * the endpoint), nothing fetched from the network (its DNS server, test certificate and analytics are off), and
 * no AWS_* variable of ours: its own clients must not follow them.
 */
export function localStackEnvironment(port: number, dir: string, services: readonly AwsService[] = LOCALSTACK_SERVED): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('AWS_')));
  return {
    ...env,
    OVERRIDE_IN_DOCKER: '0',
    FILESYSTEM_ROOT: join(dir, 'fs'),
    TMPDIR: join(dir, 'tmp'),
    GATEWAY_LISTEN: `127.0.0.1:${port}`,
    LOCALSTACK_HOST: `127.0.0.1:${port}`,
    SERVICES: [...services.map((s) => LOCALSTACK_SERVICE_IDS[s] ?? s), ...LOCALSTACK_INTERNAL].join(','),
    STRICT_SERVICE_LOADING: '1',
    EAGER_SERVICE_LOADING: '1',
    SQS_ENDPOINT_STRATEGY: 'path',
    DNS_ADDRESS: '0',
    SKIP_SSL_CERT_DOWNLOAD: '1',
    DISABLE_EVENTS: '1',
    PERSISTENCE: '0',
    PYTHONUNBUFFERED: '1',
  };
}

/**
 * Starts LocalStack (installed by ensureLocalStackInstalled) on 127.0.0.1:port serving `services`, and waits until
 * it has loaded them. Its files and log are in .sluice/localstack/<port>: kept when it fails to start, removed
 * after a clean stop.
 */
export async function startLocalStack(port: number, services: readonly AwsService[] = LOCALSTACK_SERVED): Promise<RunningEmulator> {
  for (const s of services) if (!LOCALSTACK_SERVICE_IDS[s]) throw new Error(`LocalStack does not serve ${SERVICE_NAMES[s]} here.`);
  const dir = join(LOCALSTACK_DIR, String(port));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'fs'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const endpoint = `http://127.0.0.1:${port}`;
  return startServerProcess({
    name: `LocalStack ${LOCALSTACK_VERSION}`,
    command: VENV_PYTHON,
    args: ['-m', 'localstack.runtime.main'],
    env: localStackEnvironment(port, dir, services),
    logFile: join(dir, 'localstack.log'),
    // Ready: the runtime finished starting (EAGER_SERVICE_LOADING loads the services before that).
    readyUrl: `${endpoint}/_localstack/init/ready`,
    isReady: async (res) => ((await res.json()) as { completed?: boolean }).completed === true,
    endpoint,
    startTimeoutMs: 90_000,
    stopGraceMs: 10_000,
    cleanUp: () => rmSync(dir, { recursive: true, force: true }),
  });
}
