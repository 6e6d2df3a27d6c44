import { describe, expect, it } from 'vitest';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { topicKeyOf } from '../../functions/domain/ports.js';
import { trimAllTopics, trimTopic } from '../../functions/domain/retention.js';
import { produce, pullAll, topicWithGroup, useApi } from '../support/api.js';

const HOUR = 3600 * 1000;

describe('retention', () => {
  const api = useApi();
  const stores = () => dynamoStores(loadConfig());

  it('deletes segments past retention but never the newest, so offsets continue and groups skip what is gone', async () => {
    const { topic, base, groupPath } = await topicWithGroup(api, { partitions: 1, group: {} });
    await api('PUT', `${base}/groups/slow`, { startFrom: 'earliest' });
    for (let i = 0; i < 4; i++) await produce(api, topic, [{ body: `m${i}` }]);
    const [first] = await pullAll(api, groupPath, { max: 1 });
    expect(first!.body).toBe('m0');

    // 100 hours on, the 72-hour retention has passed for all four segments.
    const removed = await trimTopic(stores(), topic, Date.now() + 100 * HOUR);
    expect(removed).toBe(3);
    const info = (await api('GET', base)).body.partitionsInfo[0];
    expect(info).toEqual({ partition: 0, startOffset: 3, endOffset: 4 });

    const [next] = await produce(api, topic, [{ body: 'after' }]);
    expect(next!.offset).toBe(4);
    // A group that had not read the trimmed messages continues with what is left.
    const slow = await pullAll(api, `${base}/groups/slow`);
    expect(slow.map((m) => m.body)).toEqual(['m3', 'after']);
    // The leased m0 is gone: it can never come back; the rest arrives.
    const rest = await pullAll(api, groupPath);
    expect(rest.map((m) => m.body)).toEqual(['m3', 'after']);
  });

  it('a deleted topic is buried: the retention pass removes its whole log, then forgets it', async () => {
    const { topic, base } = await topicWithGroup(api, { partitions: 2 });
    await produce(api, topic, [{ body: 'a', partition: 0 }, { body: 'b', partition: 1 }]);
    const incarnation = (await stores().catalog.getTopic(topic))!;
    expect((await api('DELETE', base)).status).toBe(204);
    expect((await stores().catalog.listBuriedTopics()).map((t) => t.epoch)).toContain(incarnation.epoch);

    await trimAllTopics(stores());
    await trimAllTopics(stores());
    const key = topicKeyOf(incarnation);
    for (const p of [0, 1]) expect(await stores().log.segmentsFrom(key, p, 0, 10)).toEqual([]);
    expect((await stores().catalog.listBuriedTopics()).map((t) => t.epoch)).not.toContain(incarnation.epoch);
  });
});
