import type { MiddlewareStack } from '@smithy/types';
import { notifyCall } from './callObserver.js';
import { checkFault, checkLostReply, rememberRead, slowDown, staleReply } from './faults.js';
import { record } from './metering.js';

/**
 * Every AWS client of Sluice gets the same two middlewares:
 * - at `build` (once per call, outside the SDK's retries): the call observer of the permission test,
 *   the crash-test faults (`before` / `after` / `slow` / `stale`), and DynamoDB request-unit metering;
 * - at `deserialize` (once per attempt, inside the retry loop): the lost-reply fault, a reply lost after
 *   the call was applied, which the SDK then retries.
 * Nothing is armed outside tests; metering only counts when the bench starts it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function instrument(stack: MiddlewareStack<any, any>, options: { meter: boolean }) {
  stack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      notifyCall(name, args.input);
      checkFault(name, 'before');
      await slowDown(name);
      const stale = staleReply(name, args.input) as Awaited<ReturnType<typeof next>> | undefined;
      // A stale replica's answer: a copy of an older reply (the document client unmarshals it again).
      if (stale) return { ...stale, output: structuredClone(stale.output) };
      const result = await next(args);
      rememberRead(name, args.input, result);
      if (options.meter) record(name, args.input, result.output);
      checkFault(name, 'after');
      return result;
    },
    { step: 'build', name: 'sluiceFaultsAndMetering' },
  );
  stack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      checkLostReply(context.commandName ?? 'unknown');
      return result;
    },
    { step: 'deserialize', name: 'sluiceLostReply' },
  );
}
