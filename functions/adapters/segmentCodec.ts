import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import type { StoredRecord } from '../domain/messages.js';

/**
 * How a segment's records are stored. Segments are written once and read by every consumer group, every
 * browse and every push delivery, and DynamoDB bills writes per 1 KB and reads per 4 KB of item: the records
 * are compressed (brotli) when that saves a billed kilobyte.
 *
 * - `m`: the records as one JSON string (every segment written before compression, and small ones);
 * - `z`: brotli of that JSON, as a Binary attribute.
 *
 * Brotli over zstd: zlib's zstd needs Node 22.15 (Lambda's Node 22 has it, the local Node 20 does not),
 * and at quality 5 brotli takes ~0.1-0.6 ms for a 20 KB segment (docs/performance.md, "Segment
 * compression"). No dictionary: Node's brotli takes none, and message bodies are the users' own.
 */
const QUALITY = 5;
/** Below one billed write unit compression cannot save one. */
const MIN_COMPRESS_BYTES = 1024;

/** Brotli of `json` when it saves a billed kilobyte, else undefined (small JSON, or random bytes that barely shrink). */
function compressedIfCheaper(json: string): Uint8Array | undefined {
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes < MIN_COMPRESS_BYTES) return undefined;
  const compressed = brotliCompressSync(json, {
    params: { [constants.BROTLI_PARAM_QUALITY]: QUALITY, [constants.BROTLI_PARAM_SIZE_HINT]: bytes, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT },
  });
  if (Math.ceil(compressed.length / 1024) >= Math.ceil(bytes / 1024)) return undefined;
  return new Uint8Array(compressed.buffer, compressed.byteOffset, compressed.length);
}

export function encodeRecords(records: readonly StoredRecord[]): { m: string } | { z: Uint8Array } {
  const json = JSON.stringify(records);
  const z = compressedIfCheaper(json);
  return z ? { z } : { m: json };
}

export function decodeRecords(item: Record<string, unknown>): StoredRecord[] {
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
