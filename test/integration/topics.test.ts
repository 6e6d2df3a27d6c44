import { describe, expect, it } from 'vitest';
import { produce, pullAll, uniqueName, useApi } from '../support/api.js';

describe('topics', () => {
  const api = useApi();

  it('creates a topic (201), accepts the same settings again (200), refuses fewer partitions or another retention (409)', async () => {
    const name = uniqueName('t');
    const created = await api('PUT', `/v1/topics/${name}`, { partitions: 3, retentionHours: 24 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name, partitions: 3, retentionHours: 24 });
    expect(Date.parse(created.body.createdAt)).toBeGreaterThan(0);
    const again = await api('PUT', `/v1/topics/${name}`, { partitions: 3, retentionHours: 24 });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(created.body);
    // More partitions grow the topic (test/integration/partitionGrowth.test.ts); fewer cannot.
    const fewer = await api('PUT', `/v1/topics/${name}`, { partitions: 2, retentionHours: 24 });
    expect(fewer.status).toBe(409);
    expect(fewer.body.error.code).toBe('Conflict');
    const other = await api('PUT', `/v1/topics/${name}`, { partitions: 3, retentionHours: 48 });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('Conflict');
  });

  it('defaults to 4 partitions and 72 hours, and lists and describes topics', async () => {
    const name = uniqueName('t');
    expect((await api('PUT', `/v1/topics/${name}`)).body).toMatchObject({ partitions: 4, retentionHours: 72 });
    const list = await api('GET', '/v1/topics');
    expect(list.body.topics.map((t: { name: string }) => t.name)).toContain(name);
    await produce(api, name, [{ body: 'a', partition: 2 }, { body: 'b', partition: 2 }]);
    const described = await api('GET', `/v1/topics/${name}`);
    expect(described.body.partitionsInfo).toEqual([
      { partition: 0, startOffset: 0, endOffset: 0 },
      { partition: 1, startOffset: 0, endOffset: 0 },
      { partition: 2, startOffset: 0, endOffset: 2 },
      { partition: 3, startOffset: 0, endOffset: 0 },
    ]);
  });

  it('deletes a topic with its groups; a new topic of the same name starts empty', async () => {
    const name = uniqueName('t');
    await api('PUT', `/v1/topics/${name}`, { partitions: 1 });
    await api('PUT', `/v1/topics/${name}/groups/g`, { startFrom: 'earliest' });
    await produce(api, name, [{ body: 'old', id: 'dup-1' }]);
    expect((await api('DELETE', `/v1/topics/${name}`)).status).toBe(204);
    expect((await api('GET', `/v1/topics/${name}`)).body.error.code).toBe('TopicNotFound');
    expect((await api('GET', `/v1/topics/${name}/groups/g`)).status).toBe(404);
    expect((await api('DELETE', `/v1/topics/${name}`)).status).toBe(404);

    await api('PUT', `/v1/topics/${name}`, { partitions: 1 });
    expect((await api('GET', `/v1/topics/${name}`)).body.partitionsInfo[0]).toEqual({ partition: 0, startOffset: 0, endOffset: 0 });
    expect((await api('GET', `/v1/topics/${name}/groups/g`)).body.error.code).toBe('GroupNotFound');
    // The old producer id belongs to the old topic: the same id is a new message here.
    const [result] = await produce(api, name, [{ body: 'new', id: 'dup-1' }]);
    expect(result).toEqual({ id: 'dup-1', partition: 0, offset: 0 });
    await api('PUT', `/v1/topics/${name}/groups/g`, { startFrom: 'earliest' });
    const messages = await pullAll(api, `/v1/topics/${name}/groups/g`);
    expect(messages.map((m) => m.body)).toEqual(['new']);
  });
});
