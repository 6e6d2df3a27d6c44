import { randomUUID } from 'node:crypto';
import {
  ConflictException,
  CreateScheduleCommand,
  CreateScheduleGroupCommand,
  GetScheduleCommand,
  GetScheduleGroupCommand,
  ListSchedulesCommand,
  ResourceNotFoundException,
  SchedulerClient,
  UpdateScheduleCommand,
  type CreateScheduleCommandInput,
} from '@aws-sdk/client-scheduler';
import { DELAY_SWEEP_FUNCTION, DELAY_SWEEP_SECONDS, timeoutSecondsOf } from '../lib/routes.js';
import { SCHEDULED_HANDLERS, type ScheduledHandler } from './handlers.js';
import { FUNCTIONS } from './invocation.js';
import { everyInterval, type LocalService, type ScheduledService } from './periodic.js';

/**
 * EventBridge Scheduler's rate expression for an interval, as the CDK writes it
 * (ScheduleExpression.rate): whole days, hours or minutes; a minute is the finest rate Scheduler takes.
 */
export function rateExpression(seconds: number): string {
  const units: Array<[number, string]> = [
    [86_400, 'day'],
    [3_600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    if (seconds >= size && seconds % size === 0) {
      const n = seconds / size;
      return `rate(${n} ${unit}${n === 1 ? '' : 's'})`;
    }
  }
  throw new Error(`EventBridge Scheduler cannot run every ${seconds} s: a rate is whole minutes, hours or days.`);
}

/** The interval of a `rate(…)` expression in ms; undefined for `at(…)` and `cron(…)`. */
export function rateIntervalMs(expression: string): number | undefined {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!m) return undefined;
  const unit = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[m[2]!.replace(/s$/, '') as 'minute' | 'hour' | 'day'];
  return Number(m[1]) * unit;
}

/** A recurring EventBridge Scheduler schedule of the stack, and the function it invokes. */
export interface RecurringSchedule {
  readonly name: string;
  readonly handler: string;
  readonly expression: string;
}

/**
 * The stack's Scheduler schedules, from the same declarations (lib/constructs/delaySweep.ts schedules the
 * sweep at rate(DELAY_SWEEP_SECONDS)). The retention pass is an EventBridge rule, not a Scheduler
 * schedule; local/runtime.ts runs it with everyInterval directly.
 */
export const RECURRING_SCHEDULES: readonly RecurringSchedule[] = [
  { name: 'delay-sweep', handler: DELAY_SWEEP_FUNCTION.handler, expression: rateExpression(DELAY_SWEEP_SECONDS) },
];

/** The schedule group of a local deployment, and the ARN a schedule's target names for a function. */
export const localScheduleGroup = (prefix: string) => `${prefix}-schedules`;
const ACCOUNT = '000000000000';
export const localFunctionArn = (prefix: string, handler: string) =>
  `arn:aws:lambda:${process.env.AWS_REGION ?? 'us-east-1'}:${ACCOUNT}:function:${prefix}-${handler}`;

/**
 * Creates the schedule group and every schedule of RECURRING_SCHEDULES on the emulator's Scheduler API
 * (idempotent: an existing schedule is brought to the declaration). Nothing on the emulator fires them;
 * startScheduleDriver reads them back and runs their targets.
 */
export async function createSchedules(client: SchedulerClient, prefix: string, schedules = RECURRING_SCHEDULES): Promise<void> {
  const group = localScheduleGroup(prefix);
  try {
    await client.send(new GetScheduleGroupCommand({ Name: group }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
    // moto replaces a group created twice (with its schedules), so it is created only when missing.
    await client.send(new CreateScheduleGroupCommand({ Name: group }));
  }
  for (const schedule of schedules) {
    const input: CreateScheduleCommandInput = {
      Name: schedule.name,
      GroupName: group,
      ScheduleExpression: schedule.expression,
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Target: { Arn: localFunctionArn(prefix, schedule.handler), RoleArn: `arn:aws:iam::${ACCOUNT}:role/${prefix}-scheduler` },
    };
    try {
      await client.send(new CreateScheduleCommand(input));
    } catch (error) {
      if (!(error instanceof ConflictException)) throw error;
      await client.send(new UpdateScheduleCommand(input));
    }
  }
}

/**
 * The event a schedule hands its target: the target's Input with Scheduler's context attributes filled in,
 * or `{}` when it has none (Scheduler then sends a notification whose shape AWS does not document; our
 * scheduled handlers ignore their event).
 */
export function scheduledEvent(input: string | undefined, scheduleArn: string, scheduledTime: Date): unknown {
  if (input === undefined) return {};
  const filled = input
    .replaceAll('<aws.scheduler.schedule-arn>', scheduleArn)
    .replaceAll('<aws.scheduler.scheduled-time>', scheduledTime.toISOString().replace(/\.\d{3}Z$/, 'Z'))
    .replaceAll('<aws.scheduler.execution-id>', randomUUID())
    .replaceAll('<aws.scheduler.attempt-number>', '1');
  try {
    return JSON.parse(filled);
  } catch {
    return filled;
  }
}

export interface DrivenSchedule {
  readonly name: string;
  readonly arn: string;
  readonly expression: string;
  readonly handler: string;
  readonly intervalMs: number;
  readonly service: ScheduledService;
}

export interface ScheduleDriver extends LocalService {
  readonly schedules: readonly DrivenSchedule[];
}

export interface ScheduleDriverOptions {
  readonly prefix: string;
  readonly client?: SchedulerClient;
  /** Seconds between runs per handler name, instead of the schedule's rate (the sweep runs every second locally). */
  readonly intervalSeconds?: Partial<Record<string, number>>;
  /** Handlers to run instead of the functions' own modules (tests). */
  readonly handlers?: Partial<Record<string, ScheduledHandler>>;
  /** Seconds, instead of the timeouts lib/routes.ts declares. */
  readonly timeoutSeconds?: Partial<Record<string, number>>;
  readonly log?: (line: string) => void;
}

/**
 * Runs the schedules of the local schedule group, as EventBridge Scheduler would: reads each schedule
 * back through the Scheduler API (ListSchedules, GetSchedule), resolves its target ARN to a declared
 * function, and invokes the handler in-process on the schedule's rate (or the interval given for it),
 * within the function's timeout (local/periodic.ts). Only enabled `rate(…)` schedules run; `at(…)` and
 * `cron(…)` are reported and skipped.
 */
export async function startScheduleDriver(options: ScheduleDriverOptions): Promise<ScheduleDriver> {
  const client = options.client ?? new SchedulerClient({});
  const log = options.log ?? ((line: string) => console.error(line));
  const group = localScheduleGroup(options.prefix);
  const functionPrefix = localFunctionArn(options.prefix, '');
  const names: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListSchedulesCommand({ GroupName: group, NextToken: nextToken }));
    for (const s of page.Schedules ?? []) if (s.Name) names.push(s.Name);
    nextToken = page.NextToken;
  } while (nextToken);

  const driven: DrivenSchedule[] = [];
  try {
    for (const name of names.sort()) {
      const schedule = await client.send(new GetScheduleCommand({ GroupName: group, Name: name }));
      const expression = schedule.ScheduleExpression ?? '';
      const targetArn = schedule.Target?.Arn ?? '';
      if (schedule.State !== 'ENABLED') continue;
      const rateMs = rateIntervalMs(expression);
      if (rateMs === undefined) {
        log(`[sluice] schedule ${group}/${name} (${expression}) is not a rate; the local driver runs only rate(…) schedules.`);
        continue;
      }
      const handler = targetArn.startsWith(functionPrefix) ? targetArn.slice(functionPrefix.length) : undefined;
      const spec = FUNCTIONS.find((f) => f.handler === handler);
      if (!handler || !spec) {
        log(`[sluice] schedule ${group}/${name} targets ${targetArn}, which is no function of lib/routes.ts; not run.`);
        continue;
      }
      const own = options.handlers?.[handler];
      const load = own ? async () => own : SCHEDULED_HANDLERS[handler] ? async () => (await SCHEDULED_HANDLERS[handler]!()).handler : undefined;
      if (!load) {
        log(`[sluice] schedule ${group}/${name} targets ${handler}, which has no entry in local/handlers.ts SCHEDULED_HANDLERS; not run.`);
        continue;
      }
      const override = options.intervalSeconds?.[handler];
      const intervalMs = override !== undefined ? override * 1000 : rateMs;
      const arn = schedule.Arn ?? `${group}/${name}`;
      const service = everyInterval(handler, intervalMs, load, {
        timeoutSeconds: options.timeoutSeconds?.[handler] ?? timeoutSecondsOf(spec),
        log,
        event: () => scheduledEvent(schedule.Target?.Input, arn, new Date()),
      });
      driven.push({ name, arn, expression, handler, intervalMs, service });
    }
  } catch (error) {
    for (const d of driven) await d.service.stop();
    throw error;
  }
  return {
    name: `schedules:${group}`,
    schedules: driven,
    stop: async () => {
      await Promise.all(driven.map((d) => d.service.stop()));
      if (!options.client) client.destroy();
    },
  };
}
