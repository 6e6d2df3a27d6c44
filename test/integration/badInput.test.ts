import { beforeAll, describe, expect, it } from 'vitest';
import { ack, produce, pullAll, topicWithGroup, uniqueName, useApi, type ApiReply } from '../support/api.js';

/**
 * Malformed requests (API.md, "Errors"): each gets its documented 4xx status and error code in the
 * documented shape, and stores nothing — the fixture topic, its groups and the topic list read the
 * same before and after, and whatever the request would have created is still absent.
 */

/** Every name this file creates (or tries to create) contains RUN, so the topic list can be filtered to ours. */
const RUN = uniqueName('bad');
const T = `${RUN}-topic`; // 2 partitions
const G = `${RUN}-shared`; // shared group with leased and acked messages
const BG = `${RUN}-broadcast`; // broadcast group with one consumer
const MISSING_TOPIC = `${RUN}-missing`;
const topicPath = `/v1/topics/${T}`;
const groupPath = `${topicPath}/groups/${G}`;
const broadcastPath = `${topicPath}/groups/${BG}`;
const freshGroup = (suffix: string) => `${topicPath}/groups/${RUN}-${suffix}`;
const freshTopic = (suffix: string) => `/v1/topics/${RUN}-${suffix}`;

const tooLongName = RUN.padEnd(129, 'x');
const ok = { body: 'fine' };

/** Arrays and objects nested `levels` deep around "deep": [{"a": [{"a": … "deep" …}]}], as JSON text. */
function nestedJson(levels: number): string {
  const wrappers = Array.from({ length: levels }, (_, i) => (i % 2 === 0 ? ['[', ']'] : ['{"a":', '}']));
  return `${wrappers.map(([open]) => open).join('')}"deep"${wrappers.map(([, close]) => close).reverse().join('')}`;
}
/** The same value (JSON.stringify itself overflows the stack near 4,000 levels, so deeper ones stay text). */
const nested = (levels: number): unknown => JSON.parse(nestedJson(levels));

interface Fixture {
  /** A receipt of a message still leased to group G. */
  inFlightReceipt: string;
}

interface BadCase {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  /** The JSON body; `bodyOf` when it needs the fixture; `rawBody` for text that is not JSON. */
  readonly body?: unknown;
  readonly bodyOf?: (f: Fixture) => unknown;
  readonly rawBody?: string;
  readonly status: number;
  readonly code: string;
  /** A GET that must still answer 404 with this code afterwards: the request created nothing. */
  readonly absent?: { readonly path: string; readonly code: string };
}

function expectError(reply: ApiReply, status: number, code: string) {
  expect(reply.status, `body: ${JSON.stringify(reply.body)?.slice(0, 500)}`).toBe(status);
  expect(reply.body).toEqual({ error: { code, message: expect.any(String) } });
  expect((reply.body.error.message as string).length).toBeGreaterThan(0);
}

describe('bad input', () => {
  const api = useApi();
  const fixture: Fixture = { inFlightReceipt: '' };

  beforeAll(async () => {
    expect((await api('PUT', topicPath, { partitions: 2 })).status).toBe(201);
    expect((await api('PUT', groupPath, { startFrom: 'earliest', visibilitySeconds: 43200 })).status).toBe(201);
    expect((await api('PUT', broadcastPath, { mode: 'broadcast', startFrom: 'earliest' })).status).toBe(201);
    await produce(api, T, [
      { body: 1, partition: 0 },
      { body: 2, partition: 0 },
      { body: 3, partition: 0 },
      { body: 4, partition: 1 },
      { body: 5, partition: 1, id: `${RUN}-known-id` },
    ]);
    // Group G: all five leased for 12 h, the first of each partition acked, so it has acked, in-flight and lag.
    const leased = await pullAll(api, groupPath);
    expect(leased).toHaveLength(5);
    await ack(api, groupPath, leased.filter((m) => m.offset === 0).map((m) => m.receipt as string));
    fixture.inFlightReceipt = leased.find((m) => m.partition === 0 && m.offset === 1)!.receipt as string;
    // Broadcast consumer c1 has read the first five.
    expect(await pullAll(api, broadcastPath, { consumerId: 'c1' })).toHaveLength(5);
    // Two more, not yet delivered to anyone: a bad pull that leased anything would show.
    await produce(api, T, [
      { body: 6, partition: 0 },
      { body: 7, partition: 1 },
    ]);
  });

  /** What a rejected request must not change. */
  async function snapshot() {
    const [list, topic, group, broadcast, delayed] = await Promise.all([
      api('GET', '/v1/topics'),
      api('GET', topicPath),
      api('GET', groupPath),
      api('GET', broadcastPath),
      api('GET', `${topicPath}/delayed?limit=100`),
    ]);
    for (const reply of [list, topic, group, broadcast, delayed]) expect(reply.status).toBe(200);
    const ours = (list.body.topics as Array<{ name: string }>)
      .filter((t) => t.name.includes(RUN))
      .sort((a, b) => a.name.localeCompare(b.name));
    return { topics: ours, topic: topic.body, group: group.body, broadcast: broadcast.body, delayed: delayed.body };
  }

  it('the fixture is what the cases assume', async () => {
    const state = await snapshot();
    expect(state.topics.map((t) => t.name)).toEqual([T]);
    expect(state.topic.partitionsInfo).toEqual([
      { partition: 0, startOffset: 0, endOffset: 4 },
      { partition: 1, startOffset: 0, endOffset: 3 },
    ]);
    expect(state.group.partitions).toEqual([
      { partition: 0, ackedThrough: 1, endOffset: 4, inFlight: 2, lag: 3 },
      { partition: 1, ackedThrough: 1, endOffset: 3, inFlight: 1, lag: 2 },
    ]);
    expect(state.broadcast.consumers).toEqual([{ consumerId: 'c1', lag: 2 }]);
  });

  async function runCase(c: BadCase) {
    const before = await snapshot();
    const body = c.bodyOf ? c.bodyOf(fixture) : c.body;
    const reply = await api(c.method, c.path, body, c.rawBody);
    expectError(reply, c.status, c.code);
    expect(await snapshot()).toEqual(before);
    if (c.absent) expectError(await api('GET', c.absent.path), 404, c.absent.code);
  }

  const topicCases: BadCase[] = [
    { name: 'topic name of 129 characters', method: 'PUT', path: `/v1/topics/${tooLongName}`, body: {}, status: 400, code: 'ValidationError' },
    { name: 'topic name with a space (a%20b)', method: 'PUT', path: `/v1/topics/a%20${RUN}`, body: {}, status: 400, code: 'ValidationError' },
    { name: 'topic name with a star (a*b)', method: 'PUT', path: `/v1/topics/a*${RUN}`, body: {}, status: 400, code: 'ValidationError' },
    { name: 'topic name with an encoded slash (a%2Fb)', method: 'PUT', path: `/v1/topics/a%2F${RUN}`, body: {}, status: 400, code: 'ValidationError' },
    {
      name: 'partitions 0',
      method: 'PUT',
      path: freshTopic('p0'),
      body: { partitions: 0 },
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('p0'), code: 'TopicNotFound' },
    },
    {
      name: 'partitions 65',
      method: 'PUT',
      path: freshTopic('p65'),
      body: { partitions: 65 },
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('p65'), code: 'TopicNotFound' },
    },
    {
      name: 'partitions 1.5',
      method: 'PUT',
      path: freshTopic('p15'),
      body: { partitions: 1.5 },
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('p15'), code: 'TopicNotFound' },
    },
    {
      name: 'partitions "4" (a string)',
      method: 'PUT',
      path: freshTopic('pstr'),
      body: { partitions: '4' },
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('pstr'), code: 'TopicNotFound' },
    },
    {
      name: 'retentionHours 0',
      method: 'PUT',
      path: freshTopic('r0'),
      body: { retentionHours: 0 },
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('r0'), code: 'TopicNotFound' },
    },
    {
      name: 'retentionHours 721',
      method: 'PUT',
      path: freshTopic('r721'),
      body: { retentionHours: 721 },
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('r721'), code: 'TopicNotFound' },
    },
    {
      name: 'unknown field in the topic body',
      method: 'PUT',
      path: freshTopic('unknown-field'),
      body: { partitions: 2, replicas: 3 },
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('unknown-field'), code: 'TopicNotFound' },
    },
    {
      name: 'body that is not JSON ({bad)',
      method: 'PUT',
      path: freshTopic('bad-json'),
      rawBody: '{bad',
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('bad-json'), code: 'TopicNotFound' },
    },
    {
      name: 'body that is a JSON array',
      method: 'PUT',
      path: freshTopic('array'),
      body: [{ partitions: 2 }],
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('array'), code: 'TopicNotFound' },
    },
    {
      name: 'body that is a JSON string',
      method: 'PUT',
      path: freshTopic('string'),
      body: 'partitions=2',
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('string'), code: 'TopicNotFound' },
    },
    {
      name: 'body that is JSON null',
      method: 'PUT',
      path: freshTopic('null'),
      rawBody: 'null',
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('null'), code: 'TopicNotFound' },
    },
    {
      name: 'topic body with a field nested 5000 levels deep',
      method: 'PUT',
      path: freshTopic('deep'),
      rawBody: `{"partitions": 2, "x": ${nestedJson(5000)}}`,
      status: 400,
      code: 'ValidationError',
      absent: { path: freshTopic('deep'), code: 'TopicNotFound' },
    },
    { name: 'existing topic with fewer partitions (409: shrinking is not supported)', method: 'PUT', path: topicPath, body: { partitions: 1 }, status: 409, code: 'Conflict' },
  ];

  describe('topics', () => {
    it.each(topicCases)('$method $name → $status $code', runCase);
  });

  const messages = `${topicPath}/messages`;
  const produceCases: BadCase[] = [
    { name: 'missing messages', method: 'POST', path: messages, body: {}, status: 400, code: 'ValidationError' },
    { name: 'empty messages array', method: 'POST', path: messages, body: { messages: [] }, status: 400, code: 'ValidationError' },
    {
      name: '501 messages',
      method: 'POST',
      path: messages,
      body: { messages: Array.from({ length: 501 }, (_, i) => ({ body: i })) },
      status: 400,
      code: 'ValidationError',
    },
    { name: 'messages that is not an array', method: 'POST', path: messages, body: { messages: ok }, status: 400, code: 'ValidationError' },
    { name: 'body that is a JSON array', method: 'POST', path: messages, body: [ok], status: 400, code: 'ValidationError' },
    { name: 'body that is not JSON', method: 'POST', path: messages, rawBody: '{"messages": [', status: 400, code: 'ValidationError' },
    { name: 'message without body', method: 'POST', path: messages, body: { messages: [ok, { key: 'k' }] }, status: 400, code: 'ValidationError' },
    {
      name: 'body and bodyBase64 together',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'x', bodyBase64: 'eA==' }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'bodyBase64 that is not base64',
      method: 'POST',
      path: messages,
      body: { messages: [{ bodyBase64: 'not base64!' }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: '11 tags',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }] },
      status: 400,
      code: 'ValidationError',
    },
    { name: 'empty tag', method: 'POST', path: messages, body: { messages: [{ body: 1, tags: ['a', ''] }] }, status: 400, code: 'ValidationError' },
    { name: 'tag that is not a string', method: 'POST', path: messages, body: { messages: [{ body: 1, tags: [7] }] }, status: 400, code: 'ValidationError' },
    {
      name: 'key of 257 characters',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, key: 'k'.repeat(257) }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'header with a non-string value',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, headers: { h: 1 } }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: '33 headers',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, headers: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`h${i}`, 'v'])) }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'producer id with a space',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, id: 'my id' }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'producer id of 129 characters',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, id: 'i'.repeat(129) }] },
      status: 400,
      code: 'ValidationError',
    },
    { name: 'partition -1', method: 'POST', path: messages, body: { messages: [{ body: 1, partition: -1 }] }, status: 400, code: 'ValidationError' },
    { name: 'partition 1.5', method: 'POST', path: messages, body: { messages: [{ body: 1, partition: 1.5 }] }, status: 400, code: 'ValidationError' },
    {
      name: "partition 2 on a 2-partition topic (after a valid message, which is not appended either)",
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, partition: 0 }, { body: 2, partition: 2 }] },
      status: 400,
      code: 'ValidationError',
    },
    { name: 'partition 64', method: 'POST', path: messages, body: { messages: [{ body: 1, partition: 64 }] }, status: 400, code: 'ValidationError' },
    {
      name: 'delaySeconds -1',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: -1 }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'delaySeconds over 2 years (63,072,001)',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: 63_072_001 }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'delaySeconds 1.5',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: 1.5 }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'delaySeconds as a string',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: '5' }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'deliverAt more than 2 years ahead (after a valid delayed message)',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, deliverAt: new Date(Date.now() + 63_072_000_000 + 3_600_000).toISOString() }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'deliverAt that is not a time',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, deliverAt: 'next tuesday' }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'delaySeconds and deliverAt together',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: 5, deliverAt: Date.now() + 5000 }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'repeat with times 0',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: 5, repeat: { everySeconds: 1, times: 0 } }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'repeat with times 10,001',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: 5, repeat: { everySeconds: 1, times: 10_001 } }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'repeat with everySeconds 0',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: 5, repeat: { everySeconds: 0, times: 2 } }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'repeat with an unknown field',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'fine', delaySeconds: 30 }, { body: 1, delaySeconds: 5, repeat: { everySeconds: 1, times: 2, forever: true } }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'unknown message field',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 1, priority: 5 }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'unknown top-level field',
      method: 'POST',
      path: messages,
      body: { messages: [ok], transactional: true },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'a repeated producer id next to an invalid message',
      method: 'POST',
      path: messages,
      body: { messages: [{ body: 'again', id: `${RUN}-known-id` }, { body: 1, tags: [''] }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'one message over 256 KiB encoded (next to a small one)',
      method: 'POST',
      path: messages,
      body: { messages: [ok, { body: 'x'.repeat(300 * 1024) }] },
      status: 413,
      code: 'PayloadTooLarge',
    },
    {
      name: 'whole request over 1 MiB (five messages of 220 KB)',
      method: 'POST',
      path: messages,
      body: { messages: Array.from({ length: 5 }, () => ({ body: 'y'.repeat(220_000) })) },
      status: 413,
      code: 'PayloadTooLarge',
    },
    {
      name: 'request over 10 MB (refused at the gateway)',
      method: 'POST',
      path: messages,
      rawBody: JSON.stringify({ messages: [{ body: 'z'.repeat(11 * 1024 * 1024) }] }),
      status: 413,
      code: 'PayloadTooLarge',
    },
    {
      name: 'produce to an unknown topic',
      method: 'POST',
      path: `/v1/topics/${MISSING_TOPIC}/messages`,
      body: { messages: [ok] },
      status: 404,
      code: 'TopicNotFound',
      absent: { path: `/v1/topics/${MISSING_TOPIC}`, code: 'TopicNotFound' },
    },
    { name: 'produce to a topic name with a star', method: 'POST', path: `/v1/topics/a*${RUN}/messages`, body: { messages: [ok] }, status: 400, code: 'ValidationError' },
    {
      name: 'message body nested 101 levels deep (next to a small one)',
      method: 'POST',
      path: messages,
      body: { messages: [ok, { body: nested(101) }] },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'message body nested 5000 levels deep',
      method: 'POST',
      path: messages,
      rawBody: `{"messages": [{"body": ${nestedJson(5000)}}]}`,
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'request nested 400,000 levels deep (800 KB of brackets)',
      method: 'POST',
      path: messages,
      rawBody: `{"messages": [{"body": ${'['.repeat(400_000)}${']'.repeat(400_000)}}]}`,
      status: 400,
      code: 'ValidationError',
    },
  ];

  describe('produce', () => {
    it.each(produceCases)('$method $name → $status $code', runCase);
  });

  const absentGroup = (suffix: string) => ({ path: freshGroup(suffix), code: 'GroupNotFound' });
  const groupCases: BadCase[] = [
    { name: 'unknown mode', method: 'PUT', path: freshGroup('mode'), body: { mode: 'fanout' }, status: 400, code: 'ValidationError', absent: absentGroup('mode') },
    { name: 'maxDeliveries 0', method: 'PUT', path: freshGroup('md0'), body: { maxDeliveries: 0 }, status: 400, code: 'ValidationError', absent: absentGroup('md0') },
    {
      name: 'visibilitySeconds 43201',
      method: 'PUT',
      path: freshGroup('vis'),
      body: { visibilitySeconds: 43201 },
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('vis'),
    },
    {
      name: 'filter with an empty tags object',
      method: 'PUT',
      path: freshGroup('filter-empty'),
      body: { filter: { tags: {} } },
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('filter-empty'),
    },
    {
      name: 'filter tags.any empty',
      method: 'PUT',
      path: freshGroup('filter-any'),
      body: { filter: { tags: { any: [] } } },
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('filter-any'),
    },
    {
      name: 'startFrom "yesterday"',
      method: 'PUT',
      path: freshGroup('yesterday'),
      body: { startFrom: 'yesterday' },
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('yesterday'),
    },
    {
      name: 'unknown field in the group body',
      method: 'PUT',
      path: freshGroup('unknown-field'),
      body: { mode: 'shared', priority: 1 },
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('unknown-field'),
    },
    {
      name: 'group body that is not JSON',
      method: 'PUT',
      path: freshGroup('bad-json'),
      rawBody: '{bad',
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('bad-json'),
    },
    {
      name: 'group body that is a JSON string',
      method: 'PUT',
      path: freshGroup('string'),
      body: 'shared',
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('string'),
    },
    {
      name: 'group body that is JSON null',
      method: 'PUT',
      path: freshGroup('null'),
      rawBody: 'null',
      status: 400,
      code: 'ValidationError',
      absent: absentGroup('null'),
    },
    { name: 'group name with a space (a%20b)', method: 'PUT', path: `${topicPath}/groups/a%20b`, body: {}, status: 400, code: 'ValidationError' },
    { name: 'group name with a star (a*b)', method: 'PUT', path: `${topicPath}/groups/a*b`, body: {}, status: 400, code: 'ValidationError' },
    { name: 'group name of 129 characters', method: 'PUT', path: `${topicPath}/groups/${'g'.repeat(129)}`, body: {}, status: 400, code: 'ValidationError' },
    {
      name: 'group on an unknown topic',
      method: 'PUT',
      path: `/v1/topics/${MISSING_TOPIC}/groups/g`,
      body: {},
      status: 404,
      code: 'TopicNotFound',
      absent: { path: `/v1/topics/${MISSING_TOPIC}`, code: 'TopicNotFound' },
    },
    { name: 'existing group with another mode (409)', method: 'PUT', path: groupPath, body: { mode: 'ordered' }, status: 409, code: 'Conflict' },
    { name: 'existing group updated with maxDeliveries 0', method: 'PUT', path: groupPath, body: { maxDeliveries: 0 }, status: 400, code: 'ValidationError' },
    ...(
      [
        ['filter expression with a syntax error', 'expr-syntax', { filter: { expression: 'body.total > (' } }],
        ['filter expression with an unknown operator', 'expr-op', { filter: { expression: 'body.a === 1' } }],
        ['empty filter expression', 'expr-empty', { filter: { expression: '' } }],
        ['filter expression that is not a string', 'expr-number', { filter: { expression: 42 } }],
        ['filter expression of 4097 bytes', 'expr-long', { filter: { expression: `"${'x'.repeat(4095)}"` } }],
        ['filter expression of 2,100 two-byte characters (4,202 bytes)', 'expr-wide', { filter: { expression: `"${'é'.repeat(2100)}"` } }],
        ['filter with tags and a bad expression', 'expr-tags', { filter: { tags: { any: ['a'] }, expression: '(' } }],
        ['filter with neither tags nor expression', 'expr-none', { filter: {} }],
        ['transform with a syntax error', 'tr-syntax', { transform: '{"a": body' }],
        ['transform that is not a string', 'tr-object', { transform: { a: 'body' } }],
        ['transform of 4097 bytes', 'tr-long', { transform: `"${'x'.repeat(4095)}"` }],
        ['good filter expression with a bad transform', 'tr-mixed', { filter: { expression: 'true' }, transform: ')' }],
      ] as const
    ).map(
      ([name, suffix, body]): BadCase => ({ name, method: 'PUT', path: freshGroup(suffix), body, status: 400, code: 'ValidationError', absent: absentGroup(suffix) }),
    ),
    { name: 'existing group updated with a bad filter expression', method: 'PUT', path: groupPath, body: { filter: { expression: '[1,' } }, status: 400, code: 'ValidationError' },
    { name: 'existing group updated with a bad transform', method: 'PUT', path: groupPath, body: { transform: '$x(' }, status: 400, code: 'ValidationError' },
    { name: 'GET an unknown group', method: 'GET', path: freshGroup('never'), status: 404, code: 'GroupNotFound' },
  ];

  describe('consumer groups', () => {
    it.each(groupCases)('$method $name → $status $code', runCase);
  });

  const consumeCases: BadCase[] = [
    {
      name: 'pull from an unknown group',
      method: 'POST',
      path: `${freshGroup('nobody')}/pull`,
      body: {},
      status: 404,
      code: 'GroupNotFound',
      absent: absentGroup('nobody'),
    },
    { name: 'pull max 0', method: 'POST', path: `${groupPath}/pull`, body: { max: 0 }, status: 400, code: 'ValidationError' },
    { name: 'pull max 101', method: 'POST', path: `${groupPath}/pull`, body: { max: 101 }, status: 400, code: 'ValidationError' },
    { name: 'pull waitSeconds 21', method: 'POST', path: `${groupPath}/pull`, body: { waitSeconds: 21 }, status: 400, code: 'ValidationError' },
    { name: 'pull visibilitySeconds 0', method: 'POST', path: `${groupPath}/pull`, body: { visibilitySeconds: 0 }, status: 400, code: 'ValidationError' },
    { name: 'pull with an unknown field', method: 'POST', path: `${groupPath}/pull`, body: { max: 1, greedy: true }, status: 400, code: 'ValidationError' },
    { name: 'pull on a broadcast group without consumerId', method: 'POST', path: `${broadcastPath}/pull`, body: {}, status: 400, code: 'ValidationError' },
    {
      name: 'pull on a broadcast group with consumerId "c 1"',
      method: 'POST',
      path: `${broadcastPath}/pull`,
      body: { consumerId: 'c 1' },
      status: 400,
      code: 'ValidationError',
    },
    { name: 'ack with an empty receipts array', method: 'POST', path: `${groupPath}/ack`, body: { receipts: [] }, status: 400, code: 'ValidationError' },
    {
      name: 'ack with 101 receipts (all of a leased message)',
      method: 'POST',
      path: `${groupPath}/ack`,
      bodyOf: (f) => ({ receipts: Array.from({ length: 101 }, () => f.inFlightReceipt) }),
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'ack a leased receipt together with "garbage"',
      method: 'POST',
      path: `${groupPath}/ack`,
      bodyOf: (f) => ({ receipts: [f.inFlightReceipt, 'garbage'] }),
      status: 400,
      code: 'ValidationError',
    },
    { name: 'ack with a receipt that is not a string', method: 'POST', path: `${groupPath}/ack`, body: { receipts: [12] }, status: 400, code: 'ValidationError' },
    {
      name: 'ack on an unknown group',
      method: 'POST',
      path: `${freshGroup('nobody')}/ack`,
      body: { receipts: ['0.0.1.abcdef1234'] },
      status: 404,
      code: 'GroupNotFound',
      absent: absentGroup('nobody'),
    },
    {
      name: 'nack retryAfterSeconds -1',
      method: 'POST',
      path: `${groupPath}/nack`,
      bodyOf: (f) => ({ receipts: [f.inFlightReceipt], retryAfterSeconds: -1 }),
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'nack retryAfterSeconds 43201',
      method: 'POST',
      path: `${groupPath}/nack`,
      bodyOf: (f) => ({ receipts: [f.inFlightReceipt], retryAfterSeconds: 43201 }),
      status: 400,
      code: 'ValidationError',
    },
    { name: 'reset to "sideways"', method: 'POST', path: `${groupPath}/reset`, body: { to: 'sideways' }, status: 400, code: 'ValidationError' },
    {
      name: 'reset to offset 999999 beyond the end',
      method: 'POST',
      path: `${groupPath}/reset`,
      body: { to: { partition: 0, offset: 999999 } },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'reset to partition 2 of a 2-partition topic',
      method: 'POST',
      path: `${groupPath}/reset`,
      body: { to: { partition: 2, offset: 0 } },
      status: 400,
      code: 'ValidationError',
    },
    {
      name: 'reset to time "yesterday"',
      method: 'POST',
      path: `${groupPath}/reset`,
      body: { to: { time: 'yesterday' } },
      status: 400,
      code: 'ValidationError',
    },
    { name: 'reset without to', method: 'POST', path: `${groupPath}/reset`, body: {}, status: 400, code: 'ValidationError' },
    { name: 'reset a broadcast group to "sideways"', method: 'POST', path: `${broadcastPath}/reset`, body: { to: 'sideways' }, status: 400, code: 'ValidationError' },
    { name: 'dead-letters limit 101', method: 'GET', path: `${groupPath}/dead-letters?limit=101`, status: 400, code: 'ValidationError' },
    { name: 'dead-letters limit 0', method: 'GET', path: `${groupPath}/dead-letters?limit=0`, status: 400, code: 'ValidationError' },
    {
      name: 'dead-letters of an unknown group',
      method: 'GET',
      path: `${freshGroup('nobody')}/dead-letters`,
      status: 404,
      code: 'GroupNotFound',
    },
  ];

  describe('consume', () => {
    it.each(consumeCases)('$method $name → $status $code', runCase);
  });

  const partitionMessages = (p: string | number, query = '') => `${topicPath}/partitions/${p}/messages${query}`;
  const lookupCases: BadCase[] = [
    { name: 'browse partition "x"', method: 'GET', path: partitionMessages('x'), status: 400, code: 'ValidationError' },
    { name: 'browse partition 99', method: 'GET', path: partitionMessages(99), status: 400, code: 'ValidationError' },
    { name: 'browse partition 2 of a 2-partition topic', method: 'GET', path: partitionMessages(2), status: 400, code: 'ValidationError' },
    { name: 'browse limit 0', method: 'GET', path: partitionMessages(0, '?limit=0'), status: 400, code: 'ValidationError' },
    { name: 'browse limit 1001', method: 'GET', path: partitionMessages(0, '?limit=1001'), status: 400, code: 'ValidationError' },
    { name: 'browse from -1', method: 'GET', path: partitionMessages(0, '?from=-1'), status: 400, code: 'ValidationError' },
    {
      name: 'browse an unknown topic',
      method: 'GET',
      path: `/v1/topics/${MISSING_TOPIC}/partitions/0/messages`,
      status: 404,
      code: 'TopicNotFound',
    },
    { name: 'GET a message by an unknown id', method: 'GET', path: `${topicPath}/messages/${RUN}-no-such-id`, status: 404, code: 'MessageNotFound' },
    {
      name: 'GET a message by a server-style id that points at nothing',
      method: 'GET',
      path: `${topicPath}/messages/${'0'.repeat(9)}00${'z'.repeat(11)}`,
      status: 404,
      code: 'MessageNotFound',
    },
    { name: 'GET a message on an unknown topic', method: 'GET', path: `/v1/topics/${MISSING_TOPIC}/messages/x`, status: 404, code: 'TopicNotFound' },
    { name: 'GET a topic name with a space', method: 'GET', path: `/v1/topics/a%20b`, status: 400, code: 'ValidationError' },
  ];

  describe('lookup', () => {
    it.each(lookupCases)('$method $name → $status $code', runCase);
  });

  const routeCases: BadCase[] = [
    { name: 'unknown route', method: 'GET', path: '/v1/queues', status: 404, code: 'NotFound' },
    { name: 'unknown route under a topic', method: 'POST', path: `${topicPath}/publish`, body: { messages: [ok] }, status: 404, code: 'NotFound' },
    { name: 'PATCH on a topic', method: 'PATCH', path: `/v1/topics/${RUN}-x`, body: { partitions: 2 }, status: 405, code: 'MethodNotAllowed' },
    { name: 'POST on the topic list', method: 'POST', path: '/v1/topics', body: { name: `${RUN}-y` }, status: 405, code: 'MethodNotAllowed' },
    { name: 'DELETE on a group', method: 'DELETE', path: groupPath, status: 405, code: 'MethodNotAllowed' },
  ];

  describe('routing', () => {
    it.each(routeCases)('$method $name → $status $code', runCase);
  });

  it('a well-formed but unknown receipt is stale (200), not an error, and settles nothing', async () => {
    const { topic, groupPath: path } = await topicWithGroup(api, { group: {} });
    await produce(api, topic, [{ body: 'one' }]);
    const before = (await api('GET', path)).body;
    const reply = await api('POST', `${path}/ack`, { receipts: ['0.0.1.abcdef1234'] });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ acked: 0, stale: ['0.0.1.abcdef1234'] });
    const nacked = await api('POST', `${path}/nack`, { receipts: ['0.0.1.abcdef1234'] });
    expect(nacked.status).toBe(200);
    expect(nacked.body).toEqual({ nacked: 0, stale: ['0.0.1.abcdef1234'] });
    expect((await api('GET', path)).body).toEqual(before);
  });

  it('well-formed receipts at the edges of the receipt format are stale (200), not errors', async () => {
    const { topic, groupPath: path } = await topicWithGroup(api, { group: {} });
    await produce(api, topic, [{ body: 'one' }]);
    const before = (await api('GET', path)).body;
    const receipts = ['0.zzzzzzzzzzz.9999.zzzzzzzzzzzzzzzz', '999.0.1.abcdef', '0.0.1.b'];
    for (const verb of ['ack', 'nack'] as const) {
      const reply = await api('POST', `${path}/${verb}`, { receipts });
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
      expect(reply.body).toEqual({ [verb === 'ack' ? 'acked' : 'nacked']: 0, stale: expect.arrayContaining(receipts) });
      expect(reply.body.stale).toHaveLength(receipts.length);
    }
    expect((await api('GET', path)).body).toEqual(before);
  });

  it('a message body nested 100 levels deep is accepted and read back whole', async () => {
    const { topic, groupPath: path } = await topicWithGroup(api, { group: {} });
    const body = nested(100);
    const [result] = await produce(api, topic, [{ body }]);
    expect(result).toMatchObject({ partition: 0, offset: 0 });
    const [message] = await pullAll(api, path);
    expect(message!.body).toEqual(body);
  });

  it('a body nested too deep is refused with the field named', async () => {
    const just = await api('POST', messages, { messages: [ok, { body: nested(101) }] });
    expect(just.body.error.message).toContain('messages.1.body');
    const far = await api('POST', messages, undefined, `{"messages": [{"body": ${nestedJson(5000)}}]}`);
    expect(far.body.error.message).toContain('messages.0.body');
  });

  it('has at least 35 malformed-request cases', () => {
    const total = topicCases.length + produceCases.length + groupCases.length + consumeCases.length + lookupCases.length + routeCases.length;
    expect(total).toBeGreaterThanOrEqual(35);
  });
});
