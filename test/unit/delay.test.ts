import { describe, expect, it } from 'vitest';
import { prepareDelayed } from '../../functions/domain/delay/schedule.js';
import { queueDue } from '../../functions/domain/delay/queueing.js';
import { SluiceError } from '../../functions/domain/errors.js';
import type { DelayQueueMessage, PendingDelayed, Stores, Topic } from '../../functions/domain/ports.js';

const NOW = 1_800_000_000_000;
const topic: Topic = { name: 't', partitions: 4, retentionHours: 72, createdAt: 0, epoch: 'e1' };
const TWO_YEARS_MS = 63_072_000 * 1000;

const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error as SluiceError;
  }
  throw new Error('expected an error');
};

describe('delayed messages: due times', () => {
  it('delaySeconds counts from now; deliverAt in the past means now; exactly 2 years is allowed', () => {
    const [a, b, c] = prepareDelayed(
      topic,
      [
        { index: 0, input: { body: 1, delaySeconds: 5 } },
        { index: 1, input: { body: 2, deliverAt: NOW - 60_000 } },
        { index: 2, input: { body: 3, deliverAt: new Date(NOW + TWO_YEARS_MS).toISOString() } },
      ],
      NOW,
    );
    expect([a!.due, b!.due, c!.due]).toEqual([NOW + 5000, NOW, NOW + TWO_YEARS_MS]);
    expect(a!.record.i).toBe(a!.id);
    expect(a!.id).toMatch(/^dl-/);
  });

  it('more than 2 years ahead is a ValidationError that names the message, never a truncation', () => {
    const error = errorOf(() => prepareDelayed(topic, [{ index: 3, input: { body: 1, deliverAt: NOW + TWO_YEARS_MS + 1 } }], NOW));
    expect(error.code).toBe('ValidationError');
    expect(error.message).toContain('messages[3]');
  });

  it('refuses delaySeconds with deliverAt, a partition outside the topic, and a bad time', () => {
    expect(errorOf(() => prepareDelayed(topic, [{ index: 0, input: { body: 1, delaySeconds: 1, deliverAt: NOW } }], NOW)).code).toBe(
      'ValidationError',
    );
    expect(errorOf(() => prepareDelayed(topic, [{ index: 0, input: { body: 1, delaySeconds: 1, partition: 4 } }], NOW)).code).toBe(
      'ValidationError',
    );
    expect(errorOf(() => prepareDelayed(topic, [{ index: 0, input: { body: 1, deliverAt: 'tomorrow' } }], NOW)).code).toBe('ValidationError');
  });
});

describe('delayed messages: handing them to the queue', () => {
  const pending = (id: string, due: number, topicKey = 't@e1'): PendingDelayed => ({
    topicKey,
    id,
    due,
    record: { b: id, i: id },
    landing: 1,
    queued: true,
    version: 1,
    createdAt: NOW,
  });
  const recordingStores = (maxDelaySeconds = 900) => {
    const sent: DelayQueueMessage[] = [];
    const stores = { delayQueue: { maxDelaySeconds, send: async (m: readonly DelayQueueMessage[]) => void sent.push(...m) } } as unknown as Stores;
    return { stores, sent };
  };

  it('one queue message per topic and due second, at most 100 ids each, delayed to the second before due', async () => {
    const { stores, sent } = recordingStores();
    const items = [
      ...Array.from({ length: 250 }, (_, i) => pending(`a${i}`, NOW + 10_400 + (i % 3))),
      pending('b', NOW + 11_000),
      pending('c', NOW + 10_500, 'other@e2'),
    ];
    expect(await queueDue(stores, items, NOW)).toBe(5);
    expect(sent.map((m) => [m.topicKey, m.ids.length, m.delaySeconds])).toEqual([
      ['t@e1', 100, 10],
      ['t@e1', 100, 10],
      ['t@e1', 50, 10],
      ['t@e1', 1, 11],
      ['other@e2', 1, 10],
    ]);
    expect(new Set(sent.flatMap((m) => m.ids)).size).toBe(252);
  });

  it('never a negative delay, never past the queue maximum', async () => {
    const { stores, sent } = recordingStores(5);
    await queueDue(stores, [pending('late', NOW - 30_000), pending('far', NOW + 60_000)], NOW);
    expect(sent.map((m) => m.delaySeconds)).toEqual([0, 5]);
  });
});
