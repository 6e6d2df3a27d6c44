/**
 * Fault injection for crash tests: makes the Nth matching AWS call fail before or after it reaches the
 * service, as if the Lambda died between two AWS calls. Nothing arms it outside tests.
 */
export interface FaultPlan {
  /** SDK command name, e.g. "TransactWriteItemsCommand" or "PutCommand" (the document client's names are mapped). */
  readonly command: string;
  readonly when: 'before' | 'after';
  /** Which matching call fails (1 = the first). */
  readonly nth?: number;
}

export class InjectedFault extends Error {
  constructor(plan: FaultPlan) {
    super(`injected fault ${plan.when} ${plan.command}`);
    this.name = 'InjectedFault';
  }
}

let armed: { plan: FaultPlan; seen: number } | undefined;

export function injectFault(plan: FaultPlan) {
  armed = { plan, seen: 0 };
}

export function clearFault() {
  armed = undefined;
}

export const faultFired = () => armed === undefined;

/** Called around each AWS call; throws when the armed fault matches. */
export function checkFault(commandName: string, when: 'before' | 'after') {
  if (!armed || armed.plan.when !== when || !sameCommand(armed.plan.command, commandName)) return;
  armed.seen++;
  if (armed.seen === (armed.plan.nth ?? 1)) {
    const plan = armed.plan;
    armed = undefined;
    throw new InjectedFault(plan);
  }
}

const base = (name: string) => name.replace(/Command$/, '').replace(/Item$/, '');
const sameCommand = (a: string, b: string) => base(a) === base(b);
