/** The message model: what producers send, how a segment stores it, and what consumers get. */
export interface MessageInput {
  readonly body?: unknown;
  readonly bodyBase64?: string;
  readonly key?: string;
  readonly tags?: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly id?: string;
  readonly partition?: number;
  /** Delay (functions/domain/delay/): seconds from now, or a time; at most 2 years ahead. */
  readonly delaySeconds?: number;
  readonly deliverAt?: string | number;
  readonly repeat?: { readonly everySeconds: number; readonly times: number };
}

/** One message inside a segment. Short field names: every byte is paid for on each write and read. */
export interface StoredRecord {
  /** JSON body */
  b?: unknown;
  /** base64 body */
  x?: string;
  k?: string;
  t?: string[];
  h?: Record<string, string>;
  /** producer-supplied id (or a delayed message's id) */
  i?: string;
  /** due time of a delayed message (epoch ms) */
  d?: number;
}

export interface Segment {
  readonly partition: number;
  readonly base: number;
  readonly count: number;
  readonly producedAt: number;
  readonly records: readonly StoredRecord[];
}

export interface LogMessage {
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
  readonly producedAt: string;
  readonly body?: unknown;
  readonly bodyBase64?: string;
  readonly key?: string;
  readonly tags: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
  /** When a delayed message was due (ISO). */
  readonly deliverAt?: string;
}

export function toRecord(input: MessageInput): StoredRecord {
  const record: StoredRecord = {};
  if (input.bodyBase64 !== undefined) record.x = input.bodyBase64;
  else record.b = input.body ?? null;
  if (input.key !== undefined) record.k = input.key;
  if (input.tags && input.tags.length > 0) record.t = [...input.tags];
  if (input.headers && Object.keys(input.headers).length > 0) record.h = { ...input.headers };
  if (input.id !== undefined) record.i = input.id;
  return record;
}

export const recordBytes = (record: StoredRecord) => Buffer.byteLength(JSON.stringify(record), 'utf8');
