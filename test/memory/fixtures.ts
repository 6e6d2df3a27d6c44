/**
 * Helpers for the fast domain tests: fresh in-memory stores, a topic and a group with unique names
 * (the warm caches are keyed by name), and a clock the test moves by hand (only `Date` is faked, so
 * the domain's own sleeps still run on real timers).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, vi } from 'vitest';
import { putGroup, type GroupSettings } from '../../functions/domain/groups/groups.js';
import { ack, nack, pull, type Delivery, type PullRequest } from '../../functions/domain/groups/consume.js';
import type { MessageInput } from '../../functions/domain/messages.js';
import { produce } from '../../functions/domain/produce.js';
import { createTopic } from '../../functions/domain/topics.js';
import { groupKeyOf, topicKeyOf, type Topic } from '../../functions/domain/ports.js';
import { memoryStores, type MemoryStores } from './stores.js';

export const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

export const unique = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`;

/** Freezes Date.now() at T0 for each test; `advance` moves it. */
export function useClock() {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  return {
    advance(ms: number) {
      vi.setSystemTime(Date.now() + ms);
    },
    set(ms: number) {
      vi.setSystemTime(ms);
    },
  };
}

export const defaults: GroupSettings = { mode: 'shared', startFrom: 'earliest', maxDeliveries: 3, visibilitySeconds: 30 };

/** A produce result, appended or scheduled, with every field optional but the id (tests check what they expect). */
export interface Result {
  readonly id: string;
  readonly partition?: number;
  readonly offset?: number;
  readonly duplicate?: true;
  readonly status?: 'scheduled';
  readonly deliverAt?: string;
}

export interface World {
  readonly stores: MemoryStores;
  readonly topic: Topic;
  readonly name: string;
  readonly group: string;
  readonly topicKey: string;
  readonly groupKey: string;
  produce(inputs: MessageInput[]): Promise<Result[]>;
  pull(request?: Partial<PullRequest>): Promise<Delivery[]>;
  ack(receipts: string[]): ReturnType<typeof ack>;
  nack(receipts: string[], retryAfterSeconds?: number, deliveriesAtLeast?: number): ReturnType<typeof nack>;
}

/** A topic of `partitions` partitions and, unless `group` is null, a group created before anything is produced. */
export async function world(
  options: { partitions?: number; retentionHours?: number; group?: Partial<GroupSettings> | null; stores?: MemoryStores } = {},
): Promise<World> {
  const stores = options.stores ?? memoryStores();
  const name = unique('topic');
  const { topic } = await createTopic(stores, name, { partitions: options.partitions ?? 1, retentionHours: options.retentionHours ?? 72 });
  const group = unique('group');
  if (options.group !== null) await putGroup(stores, name, group, { ...defaults, ...options.group });
  return {
    stores,
    topic,
    name,
    group,
    topicKey: topicKeyOf(topic),
    groupKey: groupKeyOf(topic, group),
    produce: (inputs) => produce(stores, name, inputs),
    pull: (request = {}) => pull(stores, name, group, { max: 100, waitSeconds: 0, ...request }),
    ack: (receipts) => ack(stores, name, group, receipts),
    nack: (receipts, retryAfterSeconds, deliveriesAtLeast) => nack(stores, name, group, receipts, retryAfterSeconds, deliveriesAtLeast),
  };
}

/** `n` messages with bodies 0..n-1 (keyed to partition 0 unless `partition` says otherwise). */
export const bodies = (n: number, extra: Partial<MessageInput> = { partition: 0 }): MessageInput[] =>
  Array.from({ length: n }, (_, i) => ({ body: i, ...extra }));

export const offsetsOf = (deliveries: readonly { offset: number }[]) => deliveries.map((d) => d.offset).sort((a, b) => a - b);

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
