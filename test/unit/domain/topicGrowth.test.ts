/**
 * Growing a topic (PUT with a larger partition count; functions/domain/topics.ts): fast tests over the
 * in-memory catalog, on real timers (a growth answers once keyed routing switched, 1.25 s after its write).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTopic, growthSwitchDelayMs, requireTopicCached } from '../../../functions/domain/topics.js';
import type { Topic } from '../../../functions/domain/ports.js';
import { memoryStores, type MemoryStores } from '../../memory/stores.js';
import { rejection, unique } from '../../memory/fixtures.js';

afterEach(() => {
  vi.restoreAllMocks();
});

async function twoPartitions() {
  const stores = memoryStores();
  const name = unique('grow');
  const { topic } = await createTopic(stores, name, { partitions: 2, retentionHours: 24 });
  return { stores, name, topic };
}

/** Makes `write` happen between this growth's read of the topic and its own conditional write. */
function before(stores: MemoryStores, write: () => Promise<unknown>) {
  const real = stores.catalog.growTopic.bind(stores.catalog);
  vi.spyOn(stores.catalog, 'growTopic').mockImplementationOnce(async (topic: Topic, partitions: number, at: number) => {
    await write();
    return real(topic, partitions, at);
  });
}

describe('topic growth', () => {
  it('grows the partition count and answers once keyed routing has switched', async () => {
    const { stores, name } = await twoPartitions();
    const started = Date.now();
    const grown = await createTopic(stores, name, { partitions: 4, retentionHours: 24 });
    const elapsed = Date.now() - started;
    expect(grown.created).toBe(false);
    expect(grown.topic).toMatchObject({ name, partitions: 4, growth: { from: 2 } });
    expect(grown.topic.growth!.at - started).toBeGreaterThanOrEqual(growthSwitchDelayMs());
    expect(growthSwitchDelayMs()).toBe(1250);
    expect(elapsed).toBeGreaterThanOrEqual(growthSwitchDelayMs() - 5);
    expect(elapsed).toBeLessThan(growthSwitchDelayMs() + 1000);
    expect(await stores.catalog.getTopic(name)).toEqual(grown.topic);
    // The same PUT again: nothing changes, at once.
    const again = Date.now();
    expect(await createTopic(stores, name, { partitions: 4, retentionHours: 24 })).toEqual({ created: false, topic: grown.topic });
    expect(Date.now() - again).toBeLessThan(500);
  });

  it('a repeated PUT during the switch answers when the switch is done, as the first one does', async () => {
    const { stores, name } = await twoPartitions();
    const first = createTopic(stores, name, { partitions: 4, retentionHours: 24 });
    await new Promise((r) => setTimeout(r, 100));
    const second = await createTopic(stores, name, { partitions: 4, retentionHours: 24 });
    expect(Date.now()).toBeGreaterThanOrEqual(second.topic.growth!.at);
    expect(second.topic.partitions).toBe(4);
    expect((await first).topic).toEqual(second.topic);
  });

  it('a growth that lost to a concurrent one: 200 when that reached the same count, else Conflict', async () => {
    const same = await twoPartitions();
    const real = same.stores.catalog.growTopic.bind(same.stores.catalog);
    vi.spyOn(same.stores.catalog, 'growTopic').mockImplementationOnce(async (topic, partitions, at) => {
      await real(topic, 6, Date.now());
      return real(topic, partitions, at);
    });
    const won = await createTopic(same.stores, same.name, { partitions: 6, retentionHours: 24 });
    expect(won.topic).toMatchObject({ partitions: 6, growth: { from: 2 } });

    const other = await twoPartitions();
    const realOther = other.stores.catalog.growTopic.bind(other.stores.catalog);
    vi.spyOn(other.stores.catalog, 'growTopic').mockImplementationOnce(async (topic, partitions, at) => {
      await realOther(topic, 3, Date.now());
      return realOther(topic, partitions, at);
    });
    expect(await rejection(createTopic(other.stores, other.name, { partitions: 6, retentionHours: 24 }))).toMatchObject({
      code: 'Conflict',
      message: `Topic '${other.name}' changed while it was being grown (it has 3 partitions now, after a concurrent PUT or a delete); send the PUT again.`,
    });
  });

  it('a growth racing a delete: being deleted is a Conflict, gone is TopicNotFound, another incarnation a Conflict', async () => {
    const deleting = await twoPartitions();
    before(deleting.stores, () => deleting.stores.catalog.markTopicDeleting(deleting.topic, Date.now()));
    expect(await rejection(createTopic(deleting.stores, deleting.name, { partitions: 4, retentionHours: 24 }))).toMatchObject({
      code: 'Conflict',
      message: `Topic '${deleting.name}' is being deleted; create it again in a few seconds.`,
    });

    const gone = await twoPartitions();
    before(gone.stores, () => gone.stores.catalog.deleteTopic(gone.name));
    expect(await rejection(createTopic(gone.stores, gone.name, { partitions: 4, retentionHours: 24 }))).toMatchObject({
      code: 'TopicNotFound',
    });

    const recreated = await twoPartitions();
    before(recreated.stores, async () => {
      await recreated.stores.catalog.deleteTopic(recreated.name);
      await recreated.stores.catalog.createTopic({ ...recreated.topic, epoch: 'another' });
    });
    expect(await rejection(createTopic(recreated.stores, recreated.name, { partitions: 4, retentionHours: 24 }))).toMatchObject({
      code: 'Conflict',
      message: `Topic '${recreated.name}' changed while it was being grown (it has 2 partitions now, after a concurrent PUT or a delete); send the PUT again.`,
    });
  });

  it('refuses to shrink, or to change the retention, word for word', async () => {
    const { stores, name } = await twoPartitions();
    expect(await rejection(createTopic(stores, name, { partitions: 1, retentionHours: 24 }))).toMatchObject({
      code: 'Conflict',
      message: `Topic '${name}' has 2 partitions; shrinking a topic is not supported (a partition count can only grow).`,
    });
    expect(await rejection(createTopic(stores, name, { partitions: 2, retentionHours: 25 }))).toMatchObject({
      code: 'Conflict',
      message: `Topic '${name}' exists with other settings (partitions 2, retentionHours 24).`,
    });
  });

  it('a cached topic with fewer partitions than a caller needs is read again', async () => {
    const { stores, name, topic } = await twoPartitions();
    expect((await requireTopicCached(stores, name, 2)).partitions).toBe(2);
    await stores.catalog.growTopic(topic, 4, Date.now());
    expect((await requireTopicCached(stores, name, 2)).partitions).toBe(2);
    expect((await requireTopicCached(stores, name, 3)).partitions).toBe(4);
  });
});
