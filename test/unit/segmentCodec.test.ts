/**
 * The segment layouts (functions/adapters/segmentCodec.ts): every layout reads back exactly what was written,
 * each is chosen only when it is the cheapest in billed kilobytes, and the layouts written before stay readable.
 */
import { randomBytes } from 'node:crypto';
import { brotliCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeRecords } from '../../functions/adapters/segmentCodec.js';
import type { StoredRecord } from '../../functions/domain/messages.js';

const hex = (n: number) => Array.from({ length: n }, () => ({ b: randomBytes(100).toString('hex') }));
const storedBytes = (encoded: Record<string, unknown>) => {
  const [value] = Object.values(encoded);
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : (value as Uint8Array).length;
};
const roundTrip = (records: StoredRecord[]) => decodeRecords(encodeRecords(records));

describe('segment layouts', () => {
  it('100 random-hex bodies take the columnar layout, within 10 KB (a billed kilobyte less than brotli of the JSON)', () => {
    const records = hex(100);
    const encoded = encodeRecords(records);
    expect(Object.keys(encoded)).toEqual(['c']);
    expect(storedBytes(encoded)).toBeLessThan(10 * 1024 - 150);
    const asJson = brotliCompressSync(JSON.stringify(records)).length;
    expect(Math.ceil(storedBytes(encoded) / 1024)).toBeLessThan(Math.ceil(asJson / 1024));
    expect(decodeRecords(encoded)).toEqual(records);
  });

  it('string bodies beside records of every other kind read back exactly, in order', () => {
    const records: StoredRecord[] = [];
    for (let i = 0; i < 60; i++) {
      records.push({ b: `text ${i} ${randomBytes(40).toString('hex')}`, k: `key-${i % 3}`, t: ['a', `t${i}`], h: { trace: `x-${i}` } });
      records.push({ b: { order: i, nested: { s: 'naïve café ☕', list: [1, 2, i] } }, i: `id-${i}` });
      records.push({ x: randomBytes(30).toString('base64') });
      records.push({ b: '' });
      records.push({ b: i });
      records.push({ b: null, d: 1_900_000_000_000 + i });
      records.push({ b: '😀 emoji, "quotes", \\ backslash, \n newline, \u0000 nul' });
      records.push({ b: JSON.stringify({ stringified: i, deep: { a: [i, 'x'] } }) });
    }
    const encoded = encodeRecords(records);
    expect(Object.keys(encoded)).toEqual(['c']);
    expect(decodeRecords(encoded)).toEqual(records);
  });

  it('a body with a lone surrogate stays in the header, and comes back unchanged', () => {
    const records: StoredRecord[] = [...hex(50), { b: 'broken \uD800 high' }, { b: 'broken \uDC00 low' }, ...hex(50)];
    const encoded = encodeRecords(records);
    expect(Object.keys(encoded)).toEqual(['c']);
    expect(decodeRecords(encoded)).toEqual(records);
  });

  it('JSON object bodies take brotli of the JSON (z): there are no string bodies to take out', () => {
    const records = Array.from({ length: 100 }, (_, i) => ({ b: { orderId: `ord-${i}`, status: 'created', total: i * 1.5 } }));
    const encoded = encodeRecords(records);
    expect(Object.keys(encoded)).toEqual(['z']);
    expect(roundTrip(records)).toEqual(records);
  });

  it('small segments stay JSON (m): under a kilobyte no layout can save a billed one', () => {
    const records = [{ b: 'tiny' }, { b: 'x'.repeat(900) }];
    expect(encodeRecords(records)).toEqual({ m: JSON.stringify(records) });
  });

  it('incompressible segments stay JSON (m) when no layout saves a billed kilobyte', () => {
    const records = [{ x: randomBytes(1100).toString('base64') }];
    expect(Object.keys(encodeRecords(records))).toEqual(['m']);
    expect(roundTrip(records)).toEqual(records);
  });

  it('segments written in the earlier layouts (m, z) read back as before', () => {
    const records = [{ b: { old: 1 } }, { b: 'old text', k: 'k' }];
    expect(decodeRecords({ m: JSON.stringify(records) })).toEqual(records);
    expect(decodeRecords({ z: new Uint8Array(brotliCompressSync(JSON.stringify(records))) })).toEqual(records);
  });

  it('random inputs of mixed kinds round-trip through whatever layout is chosen', () => {
    const alphabet = ['a', 'é', '☕', '😀', '"', '\\', '\n', '0', 'f', ' '];
    for (let round = 0; round < 40; round++) {
      const records: StoredRecord[] = Array.from({ length: 1 + (round * 7) % 90 }, (_, i) => {
        const text = Array.from({ length: (i * 13 + round) % 300 }, (_, j) => alphabet[(i + j * round) % alphabet.length]).join('');
        return i % 4 === 0 ? { b: { text } } : i % 4 === 1 ? { b: text, k: text.slice(0, 5) } : i % 4 === 2 ? { x: Buffer.from(text).toString('base64') } : { b: text + randomBytes(8).toString('hex') };
      });
      expect(roundTrip(records), `round ${round}`).toEqual(records);
    }
  });
});
