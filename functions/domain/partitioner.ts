import { createHash } from 'node:crypto';

/** Keyed messages go to hash(key) mod N so that per-key order holds; the hash is stable across runtimes. */
export function partitionForKey(key: string, partitions: number): number {
  return createHash('md5').update(key, 'utf8').digest().readUInt32BE(0) % partitions;
}

/** Unkeyed messages of one request go to one random partition, so the batch lands in one segment (Kafka's sticky partitioner). */
export function stickyPartition(partitions: number): number {
  return Math.floor(Math.random() * partitions);
}
