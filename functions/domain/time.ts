import { validation } from './errors.js';

/** Parses an API time: ISO-8601 string or epoch milliseconds. */
export function parseTime(value: string | number, field: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0 || !Number.isInteger(value)) throw validation(`${field} must be epoch milliseconds.`);
    return value;
  }
  if (/^\d+$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) throw validation(`${field} must be an ISO-8601 time or epoch milliseconds.`);
  return ms;
}

export const iso = (ms: number) => new Date(ms).toISOString();
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
