import { AsyncLocalStorage } from 'node:async_hooks';

/** Which function an in-process invocation belongs to, as a Lambda sandbox would know implicitly. */
export const currentInvocation = new AsyncLocalStorage<{ readonly functionName: string }>();
