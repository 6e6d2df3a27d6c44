import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';

/**
 * Request units computed from item sizes by DynamoDB's rounding rules, because the emulator reports a
 * flat 1 unit per call. Writes: 1 WRU per started KB of the item (x2 in a transaction); reads: 1 RRU per
 * started 4 KB (summed over a Query's items), halved for eventually consistent reads.
 * Requests arrive here in wire form; results already unmarshalled by the document client, so they are
 * marshalled again to be measured.
 */
export interface Meter {
  writeUnits: number;
  readUnits: number;
  calls: number;
  /** Per command: calls and request units, to see where the units go. */
  byCommand: Record<string, { calls: number; units: number }>;
}

const meter: Meter = { writeUnits: 0, readUnits: 0, calls: 0, byCommand: {} };
let enabled = false;

export function startMetering(): Meter {
  enabled = true;
  meter.writeUnits = 0;
  meter.readUnits = 0;
  meter.calls = 0;
  meter.byCommand = {};
  return meter;
}

export const readMeter = (): Meter => ({ ...meter, byCommand: { ...meter.byCommand } });

function numberSize(n: string): number {
  const digits = n.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

export function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return Buffer.byteLength(v.S, 'utf8');
  if (v.N !== undefined) return numberSize(v.N);
  if (v.B !== undefined) return v.B.byteLength;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.SS) return v.SS.reduce((s, x) => s + Buffer.byteLength(x, 'utf8'), 0);
  if (v.NS) return v.NS.reduce((s, x) => s + numberSize(x), 0);
  if (v.L) return 3 + v.L.reduce((s, x) => s + 1 + valueSize(x), 0);
  if (v.M) return 3 + itemSize(v.M) + Object.keys(v.M).length;
  return 0;
}

export function itemSize(item: Record<string, AttributeValue> | undefined): number {
  if (!item) return 0;
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name, 'utf8') + valueSize(value);
  return size;
}

const wru = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
const rru = (bytes: number, consistent: boolean | undefined) => Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);

/* eslint-disable @typescript-eslint/no-explicit-any */
const outputSize = (item: any) => (item ? itemSize(marshall(item, { removeUndefinedValues: true })) : 0);

export function record(commandName: string, input: any, output: any) {
  if (!enabled) return;
  meter.calls++;
  const before = meter.readUnits + meter.writeUnits;
  tally(commandName, input, output);
  const entry = (meter.byCommand[commandName] ??= { calls: 0, units: 0 });
  entry.calls++;
  entry.units += meter.readUnits + meter.writeUnits - before;
}

function tally(commandName: string, input: any, output: any) {
  switch (commandName) {
    case 'PutItemCommand':
      meter.writeUnits += wru(itemSize(input.Item));
      break;
    case 'UpdateItemCommand':
    case 'DeleteItemCommand':
      meter.writeUnits += 1;
      break;
    case 'GetItemCommand':
      meter.readUnits += rru(outputSize(output.Item), input.ConsistentRead);
      break;
    case 'QueryCommand':
    case 'ScanCommand':
      meter.readUnits += rru((output.Items ?? []).reduce((s: number, i: any) => s + outputSize(i), 0), input.ConsistentRead);
      break;
    case 'BatchGetItemCommand':
      for (const [table, items] of Object.entries<any[]>(output.Responses ?? {})) {
        const consistent = input.RequestItems?.[table]?.ConsistentRead;
        for (const i of items) meter.readUnits += rru(outputSize(i), consistent);
      }
      break;
    case 'BatchWriteItemCommand':
      for (const requests of Object.values<any[]>(input.RequestItems ?? {})) {
        for (const r of requests) meter.writeUnits += r.PutRequest ? wru(itemSize(r.PutRequest.Item)) : 1;
      }
      break;
    case 'TransactWriteItemsCommand':
      for (const t of input.TransactItems ?? []) meter.writeUnits += 2 * (t.Put ? wru(itemSize(t.Put.Item)) : 1);
      break;
    default:
      break;
  }
}
