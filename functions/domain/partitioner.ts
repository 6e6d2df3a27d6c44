import { createHash } from 'node:crypto';

/** Keyed messages go to hash(key) mod N so that per-key order holds; the hash is stable across runtimes. */
export function partitionForKey(key: string, partitions: number): number {
  return createHash('md5').update(key, 'utf8').digest().readUInt32BE(0) % partitions;
}

/**
 * Unkeyed messages of one request go to one partition, so the batch lands in one segment (Kafka's
 * sticky partitioner). Successive requests of a process take successive partitions from a random
 * start, so concurrent requests rarely race for the same tail.
 */
let nextSticky = Math.floor(Math.random() * 1_000_000);

export function stickyPartition(partitions: number): number {
  nextSticky = (nextSticky + 1) % 1_000_000;
  return nextSticky % partitions;
}
