import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { observeDynamoCalls } from '../../functions/adapters/callObserver.js';
import { clearFault, faultFired, InjectedFault, injectFault } from '../../functions/adapters/faults.js';
import { dynamoStores } from '../../functions/adapters/stores.js';
import { loadConfig } from '../../functions/config.js';
import { topicKeyOf } from '../../functions/domain/ports.js';
import { clearBuriedTopic, trimAllTopics, trimTopic } from '../../functions/domain/log/retention.js';
import { segmentExpiry, TAIL_PROTECTION_SECONDS } from '../../functions/domain/log/expiry.js';
import { forgetKnownSegments } from '../../functions/domain/groups/segmentCache.js';
import { handler as retentionHandler } from '../../functions/handlers/trimRetention.js';
import { useLocalAws } from '../../local/environment.js';
import { localContext } from '../../local/lambdaContext.js';
import { createTables } from '../../local/tables.js';
import { sweepExpiredItems } from '../../local/ttlSweeper.js';
import { produce, pullAll, topicWithGroup, useApi } from '../support/api.js';

const HOUR = 3600 * 1000;
const stores = () => dynamoStores(loadConfig());

// This file's own tables (its own process, so the handlers and the local gateway use them too): a
// retention pass trims every topic it finds, so the passes of other test files (permissions.test.ts
// runs one 1,000 hours ahead) must not reach into these tests' half-trimmed partitions, nor these
// passes into theirs. Set before anything builds the stores.
const prefix = () => `${inject('tablePrefix')}ret`;
beforeAll(async () => {
  useLocalAws(inject('awsEndpoint'), prefix());
  await createTables(new DynamoDBClient({}), prefix());
  if (!loadConfig().tables.log.startsWith(`${prefix()}-`)) throw new Error('the retention tests are not on their own tables');
});

/** Writes `count` one-record segments at bases from..from+count-1, straight through the log store. */
async function writeSegments(key: string, partition: number, count: number, options: { from?: number; bytes?: number; producedAt?: number } = {}) {
  const { from = 0, bytes = 20, producedAt = Date.now() - 100 * HOUR } = options;
  const body = 'x'.repeat(bytes);
  for (let i = 0; i < count; i += 16) {
    const writes = [];
    for (let j = i; j < Math.min(count, i + 16); j++)
      writes.push(stores().log.appendSegment(key, { partition, base: from + j, producedAt, records: [{ b: `${from + j}:${body}` }] }, [], 0));
    await Promise.all(writes);
  }
}

/** A topic (72 h retention) whose partitions hold `segments` one-record segments written 100 hours ago. */
async function topicWithOldLog(api: ReturnType<typeof useApi>, segments: number, options: { partitions?: number; bytes?: number } = {}) {
  const partitions = options.partitions ?? 1;
  const made = await topicWithGroup(api, { partitions, group: {} });
  const incarnation = (await stores().catalog.getTopic(made.topic))!;
  const key = topicKeyOf(incarnation);
  for (let p = 0; p < partitions; p++) await writeSegments(key, p, segments, { bytes: options.bytes ?? 20 });
  return { ...made, incarnation, key };
}

/** Oldest and newest base still stored (strongly consistent). */
async function edges(key: string, partition: number) {
  const [head, tail] = await Promise.all([stores().log.head(key, partition), stores().log.tail(key, partition)]);
  return { head: head?.base, tail: tail?.base };
}

/** Makes `key` the first topic of the next pass: the cursor just before it (a proper prefix sorts first). */
const passStartsAt = (key: string) => stores().catalog.putRetentionCursor(key.slice(0, -1));

/** A clock for PassOptions: time is up once `calls` BatchWriteItem calls have been sent. */
function stopAfterBatchWrites(calls: number) {
  let seen = 0;
  observeDynamoCalls((name) => {
    if (name.startsWith('BatchWriteItem')) seen++;
  });
  return () => (seen >= calls ? Infinity : 0);
}

describe('retention', () => {
  const api = useApi();
  afterEach(() => {
    clearFault();
    observeDynamoCalls(undefined);
  });

  it('deletes segments past retention but never the newest, so offsets continue and groups skip what is gone', async () => {
    const { topic, base, groupPath } = await topicWithGroup(api, { partitions: 1, group: {} });
    await api('PUT', `${base}/groups/slow`, { startFrom: 'earliest' });
    for (let i = 0; i < 4; i++) await produce(api, topic, [{ body: `m${i}` }]);
    const [first] = await pullAll(api, groupPath, { max: 1 });
    expect(first!.body).toBe('m0');

    // 100 hours on, the 72-hour retention and the day of grace have passed for all four segments: the
    // pass keeps the newest (it removes its expiry), and TTL takes the other three.
    const later = Date.now() + 100 * HOUR;
    expect(await trimTopic(stores(), topic, later)).toBe(0);
    // (The log's TTL only: the group's own items live on this test's real clock.)
    expect(await sweepExpiredItems(new DynamoDBClient({}), { nowSeconds: Math.floor(later / 1000), tables: ['Log'] })).toEqual({ Log: 3 });
    const info = (await api('GET', base)).body.partitionsInfo[0];
    expect(info).toEqual({ partition: 0, startOffset: 3, endOffset: 4 });
    // A process 100 hours on no longer has m0 in its segment cache (it serves segments younger than retention only).
    forgetKnownSegments();

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

  it('a partition with 250 expired segments is trimmed in one pass down to its newest, and offsets continue', async () => {
    const { topic, base, groupPath, key } = await topicWithOldLog(api, 250);
    const pass = await trimAllTopics(stores());
    expect(await edges(key, 0)).toEqual({ head: 249, tail: 249 });
    expect(pass.complete).toBe(true);
    expect(pass.deleted).toBeGreaterThanOrEqual(249);
    expect((await api('GET', base)).body.partitionsInfo[0]).toEqual({ partition: 0, startOffset: 249, endOffset: 250 });

    const [next] = await produce(api, topic, [{ body: 'after' }]);
    expect(next!.offset).toBe(250);
    const got = await pullAll(api, groupPath);
    expect(got.map((m) => m.offset)).toEqual([249, 250]);
    expect(got[1]!.body).toBe('after');
  });

  it('every partition keeps exactly its newest segment, even when all are expired; a second pass deletes nothing more', async () => {
    const { topic, key } = await topicWithOldLog(api, 130, { partitions: 3 });
    const pass = await trimAllTopics(stores());
    for (const p of [0, 1, 2]) expect(await edges(key, p)).toEqual({ head: 129, tail: 129 });
    expect(pass.complete).toBe(true);
    expect(await trimTopic(stores(), topic, Date.now() + 1000 * HOUR)).toBe(0);
    for (const p of [0, 1, 2]) {
      const [next] = await produce(api, topic, [{ body: `p${p}`, partition: p }]);
      expect(next!.offset).toBe(130);
    }
  });

  it('big segments: ten of ~250 KB (2.5 MB, several 1 MB Query pages) are trimmed in one pass', async () => {
    const { key } = await topicWithOldLog(api, 10, { bytes: 250_000 });
    const pass = await trimAllTopics(stores());
    expect(await edges(key, 0)).toEqual({ head: 9, tail: 9 });
    expect(pass.complete).toBe(true);
  });

  it('a pass whose deadline has passed starts nothing; one stopped mid-partition hands on, and the next pass finishes', async () => {
    const { key } = await topicWithOldLog(api, 300);
    await passStartsAt(key);
    const none = await trimAllTopics(stores(), Date.now(), { deadline: Date.now() - 1 });
    expect(await edges(key, 0)).toEqual({ head: 0, tail: 299 });
    expect(none).toMatchObject({ deleted: 0, complete: false, started: 0 });

    // Time runs out right after the third BatchWriteItem: 75 segments deleted, the rest left for later.
    const stopped = await trimAllTopics(stores(), Date.now(), { deadline: 1, clock: stopAfterBatchWrites(3), concurrency: 1 });
    expect(await edges(key, 0)).toEqual({ head: 75, tail: 299 });
    expect(stopped).toMatchObject({ deleted: 75, complete: false, started: 1 });
    expect(await stores().catalog.getRetentionCursor()).toBe(key);

    observeDynamoCalls(undefined);
    const next = await trimAllTopics(stores());
    expect(await edges(key, 0)).toEqual({ head: 299, tail: 299 });
    expect(next.complete).toBe(true);
    expect(next.deleted).toBeGreaterThanOrEqual(224);
  });

  it('the next pass starts after the topic the last one started, so one big backlog cannot starve the others', async () => {
    const first = await topicWithOldLog(api, 100);
    // A name that sorts right after the first topic's key ("<name>@…" < "<name>z@…").
    const second = `${first.topic}z`;
    expect((await api('PUT', `/v1/topics/${second}`, { partitions: 1 })).status).toBe(201);
    const secondKey = topicKeyOf((await stores().catalog.getTopic(second))!);
    await writeSegments(secondKey, 0, 100);

    await passStartsAt(first.key);
    await trimAllTopics(stores(), Date.now(), { deadline: 1, clock: stopAfterBatchWrites(1), concurrency: 1 });
    expect(await edges(first.key, 0)).toEqual({ head: 25, tail: 99 });
    expect(await edges(secondKey, 0)).toEqual({ head: 0, tail: 99 });

    await trimAllTopics(stores(), Date.now(), { deadline: 1, clock: stopAfterBatchWrites(1), concurrency: 1 });
    expect(await edges(first.key, 0)).toEqual({ head: 25, tail: 99 });
    expect(await edges(secondKey, 0)).toEqual({ head: 25, tail: 99 });
  });

  it('the handler stops before its Lambda timeout and says so; the next invocation finishes', async () => {
    const { key } = await topicWithOldLog(api, 3000);
    await passStartsAt(key);
    const started = Date.now();
    // 2.2 s left: the pass keeps 2 s back, so it has 0.2 s for 2999 deletes (about 2 s on this emulator).
    const short = (await retentionHandler({}, localContext('sluice-trimRetention', 2200))) as { deletedSegments: number; complete: boolean };
    expect(Date.now() - started).toBeLessThan(2200);
    expect((await edges(key, 0)).head).toBeLessThan(2999);
    expect(short.complete).toBe(false);
    expect(short.deletedSegments).toBeLessThan(2999);

    const long = (await retentionHandler({}, localContext('sluice-trimRetention', 300_000))) as { complete: boolean };
    expect(await edges(key, 0)).toEqual({ head: 2999, tail: 2999 });
    expect(long.complete).toBe(true);
  });

  it('a BatchWriteItem applied whose handler then died: the pass fails, the next one finishes the job', async () => {
    const { topic, key } = await topicWithOldLog(api, 260);
    await passStartsAt(key);
    injectFault({ command: 'BatchWriteItem', when: 'after', nth: 2 });
    await expect(trimAllTopics(stores(), Date.now(), { concurrency: 1 })).rejects.toBeInstanceOf(InjectedFault);
    expect(faultFired()).toBe(true);
    expect(await edges(key, 0)).toEqual({ head: 50, tail: 259 });

    const pass = await trimAllTopics(stores());
    expect(await edges(key, 0)).toEqual({ head: 259, tail: 259 });
    expect(pass.complete).toBe(true);
    const [next] = await produce(api, topic, [{ body: 'after' }]);
    expect(next!.offset).toBe(260);
  });

  it('a BatchWriteItem whose reply is lost inside the SDK is sent again, deletes nothing twice, and the pass completes', async () => {
    const { key } = await topicWithOldLog(api, 130);
    await passStartsAt(key);
    injectFault({ command: 'BatchWriteItem', when: 'lostReply' });
    const pass = await trimAllTopics(stores(), Date.now(), { concurrency: 1 });
    expect(faultFired()).toBe(true);
    expect(await edges(key, 0)).toEqual({ head: 129, tail: 129 });
    expect(pass.complete).toBe(true);
  });

  it('a buried topic with many and big segments is cleared in one pass and forgotten in the next; a pass out of time keeps it', async () => {
    const { base, incarnation, key } = await topicWithOldLog(api, 150, { partitions: 2 });
    await writeSegments(key, 1, 6, { from: 150, bytes: 250_000 });
    expect((await api('DELETE', base)).status).toBe(204);
    const graves = async () => (await stores().catalog.listBuriedTopics()).map((t) => t.epoch);

    expect(await clearBuriedTopic(stores(), incarnation, { deadline: Date.now() - 1 })).toBe(0);
    expect(await edges(key, 0)).toEqual({ head: 0, tail: 149 });

    const pass = await trimAllTopics(stores());
    for (const p of [0, 1]) expect(await edges(key, p)).toEqual({ head: undefined, tail: undefined });
    expect(pass.complete).toBe(true);
    expect(await graves()).toContain(incarnation.epoch);
    await trimAllTopics(stores());
    expect(await graves()).not.toContain(incarnation.epoch);
  });

  it('lost-reply sweep: every AWS call of a pass applied and its reply lost once; the pass still trims all but the newest, and graves go', async () => {
    for (const command of ['Scan', 'GetItem', 'Query', 'BatchWriteItem', 'PutItem', 'DeleteItem']) {
      const live = await topicWithOldLog(api, 130);
      const doomed = await topicWithOldLog(api, 40);
      expect((await api('DELETE', doomed.base)).status).toBe(204);
      await passStartsAt(live.key);
      injectFault({ command, when: 'lostReply' });
      // PutItem is the resume point, written only by a pass that runs out of time: stop one after a batch.
      if (command === 'PutItem') await trimAllTopics(stores(), Date.now(), { deadline: 1, clock: stopAfterBatchWrites(1), concurrency: 1 });
      observeDynamoCalls(undefined);
      const pass = await trimAllTopics(stores());
      expect(await edges(live.key, 0), command).toEqual({ head: 129, tail: 129 });
      expect(await edges(doomed.key, 0), command).toEqual({ head: undefined, tail: undefined });
      expect(pass.complete, command).toBe(true);
      // The grave is forgotten by the pass after the one that emptied its log (DeleteItem's reply is lost there).
      await trimAllTopics(stores());
      expect(faultFired(), `${command}: the fault fired`).toBe(true);
      expect((await stores().catalog.listBuriedTopics()).map((t) => t.epoch), command).not.toContain(doomed.incarnation.epoch);
    }
  });
});

describe('retention with TTL (local/ttlSweeper.ts stands in for DynamoDB TTL, which the emulator lacks)', () => {
  const api = useApi();
  afterEach(() => {
    clearFault();
    observeDynamoCalls(undefined);
  });
  /** What DynamoDB TTL does by `at` (epoch ms), on the log only: every expired segment goes. */
  const ttlAt = (at: number) => sweepExpiredItems(new DynamoDBClient({}), { nowSeconds: Math.floor(at / 1000), tables: ['Log'] });
  const SECOND = 1000;

  /** A topic (72 h) with a group and `segments` produced one-message segments; its key and its newest segment's expiry. */
  async function produced(segments: number) {
    const made = await topicWithGroup(api, { partitions: 1, group: {} });
    for (let i = 0; i < segments; i++) await produce(api, made.topic, [{ body: `m${i}` }]);
    const key = topicKeyOf((await stores().catalog.getTopic(made.topic))!);
    const tail = (await stores().log.tail(key, 0))!;
    return { ...made, key, tailExpiry: tail.expiresAt! };
  }

  it('produced segments expire a day after retention; an idle partition keeps its newest through TTL, and offsets go on', async () => {
    const { topic, groupPath, key, tailExpiry } = await produced(3);
    const keys = await stores().log.segmentKeysFrom(key, 0, 0, 10);
    expect(keys.map((k) => k.expiresAt)).toEqual(keys.map((k) => segmentExpiry(k.producedAt, 72)));

    // Until 12 hours before the newest segment would expire, the pass leaves it alone; then it removes the expiry.
    await trimTopic(stores(), topic, (tailExpiry - TAIL_PROTECTION_SECONDS) * SECOND);
    expect((await stores().log.tail(key, 0))!.expiresAt).toBe(tailExpiry);
    await trimTopic(stores(), topic, (tailExpiry - TAIL_PROTECTION_SECONDS + 1) * SECOND);
    expect((await stores().log.tail(key, 0))!.expiresAt).toBeUndefined();

    // TTL, long after: the two older segments go, the newest stays, and the next message takes offset 3.
    await ttlAt((tailExpiry + 30 * 24 * 3600) * SECOND);
    expect(await edges(key, 0)).toEqual({ head: 2, tail: 2 });
    const [next] = await produce(api, topic, [{ body: 'after' }]);
    expect(next!.offset).toBe(3);
    expect((await pullAll(api, groupPath)).map((m) => [m.offset, m.body])).toEqual([
      [2, 'm2'],
      [3, 'after'],
    ]);
    // The protected segment, overtaken, is the pass's to delete once it is past retention (TTL never will).
    expect(await trimTopic(stores(), topic, (tailExpiry + 30 * 24 * 3600) * SECOND)).toBe(1);
    expect(await edges(key, 0)).toEqual({ head: 3, tail: 3 });
  });

  it('removing the expiry: a lost reply is sent again, a handler killed after it left it done, one killed before it is redone', async () => {
    for (const when of ['lostReply', 'after', 'before'] as const) {
      const { topic, key, tailExpiry } = await produced(2);
      const at = (tailExpiry - 60) * SECOND;
      injectFault({ command: 'UpdateItem', when });
      if (when === 'lostReply') await trimTopic(stores(), topic, at);
      else await expect(trimTopic(stores(), topic, at), when).rejects.toBeInstanceOf(InjectedFault);
      expect(faultFired(), when).toBe(true);
      expect((await stores().log.tail(key, 0))!.expiresAt, when).toBe(when === 'before' ? tailExpiry : undefined);
      clearFault();
      await trimTopic(stores(), topic, at);
      expect((await stores().log.tail(key, 0))!.expiresAt, when).toBeUndefined();
      await ttlAt((tailExpiry + 3600) * SECOND);
      expect(await edges(key, 0), when).toEqual({ head: 1, tail: 1 });
      expect((await produce(api, topic, [{ body: 'next' }]))[0]!.offset, when).toBe(2);
    }
  });

  it('an expiry update never brings back a segment that is gone', async () => {
    const { key } = await produced(1);
    await stores().log.deleteSegments(key, 0, [0]);
    expect(await stores().log.setSegmentExpiry(key, 0, 0, undefined)).toBe(false);
    expect(await stores().log.setSegmentExpiry(key, 0, 0, 12345)).toBe(false);
    expect(await stores().log.segmentsFrom(key, 0, 0, 10)).toEqual([]);
  });
});
