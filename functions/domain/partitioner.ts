import { createHash } from 'node:crypto';
import type { Topic } from './ports.js';

/** Keyed messages go to hash(key) mod N so that per-key order holds; the hash is stable across runtimes. */
export function partitionForKey(key: string, partitions: number): number {
  return createHash('md5').update(key, 'utf8').digest().readUInt32BE(0) % partitions;
}

/**
 * How many partitions keyed messages of `topic` are spread over at `now`: a grown topic keeps its old
 * count until `growth.at` (when every warm handler knows the new one; functions/domain/topics.ts,
 * growTopic), so that all handlers route a key alike at every moment.
 */
export const keyedPartitions = (topic: Topic, now = Date.now()): number =>
  topic.growth !== undefined && now < topic.growth.at ? topic.growth.from : topic.partitions;

/** The partition of a keyed message of `topic` produced at `now`. */
export const partitionOfKey = (topic: Topic, key: string, now = Date.now()): number => partitionForKey(key, keyedPartitions(topic, now));

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
