import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import type { StoredRecord } from '../domain/messages.js';

/**
 * How a segment's records are stored. Segments are written once and read by every consumer group, every
 * browse and every push delivery, and DynamoDB bills writes per 1 KB and reads per 4 KB of item: the records
 * are compressed (brotli) when that saves a billed kilobyte, in whichever of two layouts is smaller.
 *
 * - `m`: the records as one JSON string (every segment written before compression, and small ones);
 * - `z`: brotli of that JSON, as a Binary attribute;
 * - `c`: the records with their string bodies taken out, then those bodies one after another (docs/performance.md,
 *   "Segment layouts"): [header length, 4 bytes][brotli of the header JSON][brotli of the bodies]. The header
 *   is `{"r": records without those bodies, "s": each body's length, or -1}`. Bodies side by side cost no
 *   JSON quoting or escaping and no framing between them, and brotli's quality 4 codes random text (ids,
 *   hashes, tokens) closer to its entropy than quality 5: 100 bodies of 200 random hex characters take
 *   ~10.0 KB this way against ~11.0 KB as `z` (a billed kilobyte per segment).
 *
 * Brotli over zstd: zlib's zstd needs Node 22.15 (Lambda's Node 22 has it, the local Node 20 does not),
 * and at quality 5 brotli takes ~0.1-0.6 ms for a 20 KB segment (docs/performance.md, "Segment
 * compression"). No dictionary: Node's brotli takes none, and message bodies are the users' own.
 */
const QUALITY = 5;
/** The bodies of the `c` layout: measured on random hex, text and stringified JSON (docs/performance.md). */
const BODIES_QUALITY = 4;
/** Below one billed write unit compression cannot save one. */
const MIN_COMPRESS_BYTES = 1024;

const brotli = (data: string | Buffer, quality: number) =>
  brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: quality,
      [constants.BROTLI_PARAM_SIZE_HINT]: typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    },
  });

const asBytes = (buffer: Buffer) => new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
const billedKb = (bytes: number) => Math.ceil(bytes / 1024);

/** Brotli of `json` when it saves a billed kilobyte, else undefined (small JSON, or random bytes that barely shrink). */
function compressedIfCheaper(json: string): Uint8Array | undefined {
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes < MIN_COMPRESS_BYTES) return undefined;
  const compressed = brotli(json, QUALITY);
  if (billedKb(compressed.length) >= billedKb(bytes)) return undefined;
  return asBytes(compressed);
}

/**
 * The `c` layout, or undefined when no record has a string body that can travel apart: a lone surrogate
 * (possible in a JSON string) does not survive UTF-8, so such a body stays in the header as JSON escapes it.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function columnar(records: readonly StoredRecord[]): Buffer | undefined {
  const bodies: string[] = [];
  const lengths: number[] = [];
  const rest = records.map((record) => {
    if (typeof record.b !== 'string' || LONE_SURROGATE.test(record.b)) {
      lengths.push(-1);
      return record;
    }
    bodies.push(record.b);
    lengths.push(record.b.length);
    const { b: _body, ...others } = record;
    return others;
  });
  if (bodies.length === 0) return undefined;
  const header = brotli(JSON.stringify({ r: rest, s: lengths }), QUALITY);
  const size = Buffer.alloc(4);
  size.writeUInt32BE(header.length);
  return Buffer.concat([size, header, brotli(bodies.join(''), BODIES_QUALITY)]);
}

function fromColumnar(bytes: Uint8Array): StoredRecord[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const headerLength = buffer.readUInt32BE(0);
  const header = JSON.parse(brotliDecompressSync(buffer.subarray(4, 4 + headerLength)).toString('utf8')) as { r: StoredRecord[]; s: number[] };
  const bodies = brotliDecompressSync(buffer.subarray(4 + headerLength)).toString('utf8');
  let at = 0;
  return header.r.map((record, i) => {
    const length = header.s[i]!;
    if (length < 0) return record;
    const b = bodies.slice(at, at + length);
    at += length;
    return { ...record, b };
  });
}

/**
 * The layout with the fewest billed kilobytes; on a tie the simpler one (`m`, then `z`, then `c`): a layout a
 * reader has to undo is worth only a billed kilobyte less.
 */
export function encodeRecords(records: readonly StoredRecord[]): { m: string } | { z: Uint8Array } | { c: Uint8Array } {
  const json = JSON.stringify(records);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes < MIN_COMPRESS_BYTES) return { m: json };
  const z = compressedIfCheaper(json);
  const c = columnar(records);
  const best = billedKb(z ? z.length : bytes);
  if (c && billedKb(c.length) < best) return { c: asBytes(c) };
  return z ? { z } : { m: json };
}

export function decodeRecords(item: Record<string, unknown>): StoredRecord[] {
  if (item.c !== undefined) return fromColumnar(item.c as Uint8Array);
  if (item.z !== undefined) return JSON.parse(brotliDecompressSync(item.z as Uint8Array).toString('utf8')) as StoredRecord[];
  return JSON.parse(item.m as string) as StoredRecord[];
}

/**
 * The same rule for any JSON attribute rewritten often (a group's in-flight entries, `f`, rewritten by every
 * pull and ack): `<name>` as a JSON string, or `<name>z` as brotli of it when that saves a billed kilobyte.
 */
export function packJson(name: string, json: string): Record<string, string | Uint8Array> {
  const compressed = compressedIfCheaper(json);
  return compressed ? { [`${name}z`]: compressed } : { [name]: json };
}

export function unpackJson(item: Record<string, unknown>, name: string): string | undefined {
  const compressed = item[`${name}z`];
  if (compressed !== undefined) return brotliDecompressSync(compressed as Uint8Array).toString('utf8');
  return item[name] as string | undefined;
}
