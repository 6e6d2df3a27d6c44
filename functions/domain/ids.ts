import { randomBytes } from 'node:crypto';

/**
 * Server-assigned message ids encode where the message lives, so a lookup by id is one bounded read:
 * 9 base-36 digits of the produce time (sortable by time), 2 of the partition, 11 of the offset.
 */
const TIME_DIGITS = 9;
const PARTITION_DIGITS = 2;
const OFFSET_DIGITS = 11;
const SERVER_ID = /^[0-9a-z]{22}$/;

export function serverMessageId(producedAt: number, partition: number, offset: number): string {
  return (
    producedAt.toString(36).padStart(TIME_DIGITS, '0') +
    partition.toString(36).padStart(PARTITION_DIGITS, '0') +
    offset.toString(36).padStart(OFFSET_DIGITS, '0')
  );
}

export function parseServerMessageId(id: string): { producedAt: number; partition: number; offset: number } | undefined {
  if (!SERVER_ID.test(id)) return undefined;
  const decoded = {
    producedAt: parseInt(id.slice(0, TIME_DIGITS), 36),
    partition: parseInt(id.slice(TIME_DIGITS, TIME_DIGITS + PARTITION_DIGITS), 36),
    offset: parseInt(id.slice(TIME_DIGITS + PARTITION_DIGITS), 36),
  };
  // 11 base-36 digits reach past 2^53: such an offset was never assigned (and cannot be stored exactly).
  return Number.isSafeInteger(decoded.offset) ? decoded : undefined;
}

/**
 * A receipt names one delivery: partition, offset, delivery number and a random lease token that only
 * the current lease holder knows. `b` marks broadcast deliveries, which are never leased.
 */
export interface Receipt {
  readonly partition: number;
  readonly offset: number;
  readonly delivery: number;
  readonly token: string;
}

const RECEIPT = /^([0-9]{1,3})\.([0-9a-z]{1,11})\.([0-9]{1,4})\.([0-9a-z]{6,16}|b)$/;

export const formatReceipt = (r: Receipt) => `${r.partition}.${r.offset.toString(36)}.${r.delivery}.${r.token}`;

export function parseReceipt(text: string): Receipt | undefined {
  const m = RECEIPT.exec(text);
  if (!m) return undefined;
  return { partition: Number(m[1]), offset: parseInt(m[2]!, 36), delivery: Number(m[3]), token: m[4]! };
}

export function newLeaseToken(): string {
  return randomBytes(5).toString('hex');
}

/** A push group's Standard Webhooks signing secret: "whsec_" + base64 of 24 random bytes (push/signature.ts signs with it). */
export const newSigningSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
