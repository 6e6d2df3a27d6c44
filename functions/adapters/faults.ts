/**
 * Fault injection for crash tests. Nothing arms it outside tests.
 * - `before` / `after`: the Nth matching AWS call fails before it reaches the service, or after it was
 *   applied, and the failure reaches the caller, as if the Lambda died between two AWS calls.
 * - `lostReply`: the Nth matching call is applied, then its reply is lost *inside the SDK's retry loop*
 *   (a TimeoutError, which the SDK classifies as transient), so the SDK sends the very same request
 *   again — what happens on AWS when a response times out after DynamoDB applied the write.
 * - `slow`: the Nth matching call waits `delayMs` before it is sent (a slow network or a throttled retry).
 * - `stale`: a replica that missed every write since the plan was armed. The first reply of each
 *   matching read after arming is kept; the Nth matching *eventually consistent* read (ConsistentRead
 *   not true) of something read before is answered with that older reply instead of DynamoDB's. DynamoDB's own replicas do this for up to a second; the
 *   emulator is always consistent, so without this the re-read branches of the domain never run.
 * Several plans may be armed at once; each counts its own matching calls.
 */
export interface FaultPlan {
  /** SDK command name, e.g. "TransactWriteItemsCommand" or "PutCommand" (the document client's names are mapped); "*" is any. */
  readonly command: string;
  readonly when: 'before' | 'after' | 'lostReply' | 'slow' | 'stale';
  /** Which matching call fails (1 = the first). */
  readonly nth?: number;
  /** For `slow`: how long the call waits. */
  readonly delayMs?: number;
}

export class InjectedFault extends Error {
  constructor(plan: FaultPlan) {
    super(`injected fault ${plan.when} ${plan.command}`);
    this.name = 'InjectedFault';
  }
}

let armed: Array<{ plan: FaultPlan; seen: number }> = [];
/** For `stale`: the first reply of each read (by command and input, consistency aside) since a stale plan was armed. */
const replica = new Map<string, unknown>();

export function injectFault(plan: FaultPlan) {
  armed.push({ plan, seen: 0 });
}

export function clearFault() {
  armed = [];
  replica.clear();
}

/** True once every armed plan has fired. */
export const faultFired = () => armed.length === 0;

function fires(commandName: string, when: FaultPlan['when']): FaultPlan | undefined {
  for (const entry of armed) {
    if (entry.plan.when !== when || !sameCommand(entry.plan.command, commandName)) continue;
    entry.seen++;
    if (entry.seen !== (entry.plan.nth ?? 1)) continue;
    armed = armed.filter((e) => e !== entry);
    return entry.plan;
  }
  return undefined;
}

/** Called around each AWS call, outside the SDK's retries; throws when an armed fault matches. */
export function checkFault(commandName: string, when: 'before' | 'after') {
  const plan = fires(commandName, when);
  if (plan) throw new InjectedFault(plan);
}

/** Called before each AWS call; waits when an armed `slow` plan matches. */
export async function slowDown(commandName: string) {
  const plan = fires(commandName, 'slow');
  if (plan) await new Promise((r) => setTimeout(r, plan.delayMs ?? 1000));
}

/** Called after each attempt was applied, inside the SDK's retries; throws a retryable timeout when armed. */
export function checkLostReply(commandName: string) {
  const plan = fires(commandName, 'lostReply');
  if (!plan) return;
  const lost = new Error(`injected: the reply of ${commandName} was lost after it was applied`);
  // @smithy/service-error-classification treats "TimeoutError" as transient: the SDK retries the request.
  lost.name = 'TimeoutError';
  throw lost;
}

const base = (name: string) => name.replace(/Command$/, '').replace(/Item$/, '');
const sameCommand = (planned: string, actual: string) => planned === '*' || base(planned) === base(actual);

const readKey = (commandName: string, input: unknown) => {
  const { ConsistentRead: _consistency, ...rest } = (input ?? {}) as Record<string, unknown>;
  return `${base(commandName)} ${JSON.stringify(rest)}`;
};

const staleArmed = (commandName: string) => armed.some((e) => e.plan.when === 'stale' && sameCommand(e.plan.command, commandName));

/**
 * Called before each AWS call: when an armed `stale` plan fires on this eventually consistent read and
 * the replica has an older reply of it, that reply (the caller then acts on state that is out of date).
 */
export function staleReply(commandName: string, input: unknown): unknown {
  if (!staleArmed(commandName) || (input as { ConsistentRead?: boolean } | undefined)?.ConsistentRead === true) return undefined;
  const key = readKey(commandName, input);
  if (!replica.has(key)) return undefined;
  if (!fires(commandName, 'stale')) return undefined;
  const reply = replica.get(key);
  if (!armed.some((e) => e.plan.when === 'stale')) replica.clear();
  return reply;
}

/** Called after each AWS call: while a `stale` plan is armed, the first reply of each read is what the replica keeps. */
export function rememberRead(commandName: string, input: unknown, reply: unknown) {
  if (!staleArmed(commandName)) return;
  const key = readKey(commandName, input);
  if (!replica.has(key)) replica.set(key, reply);
}
