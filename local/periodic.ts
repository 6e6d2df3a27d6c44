import { currentInvocation } from './invocation.js';
import { localContext } from './lambdaContext.js';

/**
 * Runs scheduled handlers on a fixed rate, as EventBridge rate rules do in the cloud. Later issues add
 * the one-time schedule driver and the SQS / DynamoDB Streams pollers beside it as LocalServices.
 */
export interface LocalService {
  readonly name: string;
  stop(): Promise<void>;
}

export function everyInterval(
  name: string,
  intervalMs: number,
  load: () => Promise<(event: unknown, context: ReturnType<typeof localContext>) => Promise<unknown>>,
): LocalService {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return; // like a reserved concurrency of 1: skip a tick while the last run is busy
    running = load()
      .then((handler) =>
        currentInvocation.run({ functionName: name }, () =>
          handler({ source: 'sluice.local', 'detail-type': 'Scheduled Event', time: new Date().toISOString() }, localContext(`sluice-${name}`)),
        ),
      )
      .catch((error) => console.error(`[sluice] ${name} failed`, error))
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  return {
    name,
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
