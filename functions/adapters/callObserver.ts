/**
 * Lets a test watch every DynamoDB call in wire form (command name and marshalled input), e.g. to check
 * that the IAM grants of lib/routes.ts cover what each handler really does. Nothing observes in production.
 */
export type CallObserver = (commandName: string, input: unknown) => void;

let observer: CallObserver | undefined;

export function observeDynamoCalls(next: CallObserver | undefined) {
  observer = next;
}

export function notifyCall(commandName: string, input: unknown) {
  observer?.(commandName, input);
}
