/** Domain errors. The HTTP layer maps each code to a status in one place (functions/http/errors.ts). */
export type ErrorCode =
  | 'ValidationError'
  | 'TopicNotFound'
  | 'GroupNotFound'
  | 'MessageNotFound'
  | 'Conflict'
  | 'PayloadTooLarge'
  | 'Throttled'
  | 'NotSupported'
  | 'TransactionNotFound'
  | 'TransactionTooLarge'
  | 'OutOfOrderSequence';

export class SluiceError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SluiceError';
  }
}

export const validation = (message: string) => new SluiceError('ValidationError', message);
export const topicNotFound = (topic: string) => new SluiceError('TopicNotFound', `Topic '${topic}' does not exist.`);
export const groupNotFound = (topic: string, group: string) =>
  new SluiceError('GroupNotFound', `Consumer group '${group}' does not exist on topic '${topic}'.`);
