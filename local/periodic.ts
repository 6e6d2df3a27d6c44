import { inspect } from 'node:util';
import { currentInvocation, functionTimeoutMs, invokeWithin } from './invocation.js';
import { localContext } from './lambdaContext.js';

/**
 * Runs scheduled handlers on a fixed rate, as EventBridge rate rules and Scheduler rate schedules do in the
 * cloud (local/schedules.ts drives the Scheduler schedules through it). The SQS pollers (local/sqsPoller.ts)
 * are LocalServices beside it.
 */
export interface LocalService {
  readonly name: string;
  stop(): Promise<void>;
}

/** What a scheduled function's runs came to. A timeout is a failed run (Lambda counts it in Errors), and is also counted apart. */
export interface RunCounts {
  readonly started: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly timedOut: number;
  /** Ticks skipped because the previous run was still going (it may be going past its timeout). */
  readonly skipped: number;
}

export interface ScheduledService extends LocalService {
  readonly runs: RunCounts;
}

export interface EveryIntervalOptions {
  /** Seconds; the timeout lib/routes.ts declares for the function named `name` by default. */
  readonly timeoutSeconds?: number;
  /** Where failed and timed-out runs are reported (stderr by default). */
  readonly log?: (line: string) => void;
  /** The event each run gets; an EventBridge rule's "Scheduled Event" by default. */
  readonly event?: () => unknown;
}

type ScheduledHandler = (event: unknown, context: ReturnType<typeof localContext>) => Promise<unknown>;

export function everyInterval(
  name: string,
  intervalMs: number,
  load: () => Promise<ScheduledHandler>,
  options: EveryIntervalOptions = {},
): ScheduledService {
  const timeoutMs = options.timeoutSeconds !== undefined ? options.timeoutSeconds * 1000 : functionTimeoutMs(name);
  const log = options.log ?? ((line: string) => console.error(line));
  const runs = { started: 0, succeeded: 0, failed: 0, timedOut: 0, skipped: 0 };
  /** Until the run's handler has settled, even past its timeout. */
  let busy: Promise<void> | undefined;
  /** Until the run's outcome is known: at most its timeout after it started. */
  let deciding: Promise<void> | undefined;

  const run = async (): Promise<{ finished: Promise<void> }> => {
    runs.started++;
    let handler: ScheduledHandler;
    try {
      handler = await load();
    } catch (error) {
      runs.failed++;
      log(`[sluice] ${name} could not be loaded: ${inspect(error)}`);
      return { finished: Promise.resolve() };
    }
    const context = localContext(`sluice-${name}`, timeoutMs);
    const event = options.event ? options.event() : { source: 'sluice.local', 'detail-type': 'Scheduled Event', time: new Date().toISOString() };
    const invocation = invokeWithin(
      timeoutMs,
      () => currentInvocation.run({ functionName: name }, () => handler(event, context)),
      (lateByMs, late) =>
        log(`[sluice] ${name} ${late.kind === 'threw' ? 'failed' : 'finished'} ${lateByMs} ms after its timeout; the run counted as failed.`),
    );
    const outcome = await invocation.outcome;
    if (outcome.kind === 'returned') runs.succeeded++;
    else if (outcome.kind === 'threw') {
      runs.failed++;
      log(`[sluice] ${name} failed: ${inspect(outcome.error)}`);
    } else {
      runs.failed++;
      runs.timedOut++;
      log(
        `[sluice] SCHEDULED FUNCTION TIMEOUT: ${name} did not finish within its ${timeoutMs / 1000} s timeout; counted as a ` +
          'failed run. On AWS Lambda stops it there; here its work goes on, and ticks are skipped until it ends.',
      );
    }
    return { finished: invocation.finished };
  };

  const timer = setInterval(() => {
    // Like a reserved concurrency of 1: skip a tick while the last run is busy.
    if (busy) {
      runs.skipped++;
      return;
    }
    const started = run();
    deciding = started.then(() => undefined);
    busy = started
      .then(({ finished }) => finished)
      .finally(() => {
        busy = undefined;
      });
  }, intervalMs);
  timer.unref();
  return {
    name,
    runs,
    stop: async () => {
      clearInterval(timer);
      await deciding;
    },
  };
}
