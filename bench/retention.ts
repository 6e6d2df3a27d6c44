/**
 * Retention throughput against the local emulator (docs/retention.md): writes expired segments of a
 * few sizes straight through the log store, then times one retention pass and meters its calls.
 * Starts its own emulator on a free port and stops it at the end.
 *
 *   npm run bench:retention -- [segments-per-case-scale]
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startMetering } from '../functions/adapters/metering.js';
import { dynamoStores } from '../functions/adapters/stores.js';
import { loadConfig } from '../functions/config.js';
import { topicKeyOf, type Topic } from '../functions/domain/ports.js';
import { trimAllTopics } from '../functions/domain/log/retention.js';
import { segmentExpiry } from '../functions/domain/log/expiry.js';
import { ensureEmulatorInstalled, freePort, startEmulator } from '../local/emulator.js';
import { useLocalAws, useLocalQueues } from '../local/environment.js';
import { createQueues } from '../local/queues.js';
import { createTables } from '../local/tables.js';

const HOUR = 3600_000;
const scale = Number(process.argv[2] ?? 1);
const cases = [
  { label: '~150 B', bytes: 100, segments: 3000, partitions: 1 },
  { label: '~150 B', bytes: 100, segments: 3000, partitions: 4 },
  { label: '~10 KB', bytes: 10_000, segments: 1000, partitions: 1 },
  { label: '~250 KB', bytes: 250_000, segments: 120, partitions: 1 },
];

ensureEmulatorInstalled();
const emulator = await startEmulator(await freePort());
const prefix = `m${Date.now().toString(36)}`;
useLocalAws(emulator.endpoint, prefix);
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
try {
  await createTables(new DynamoDBClient({}), prefix);
  // The configuration names every queue (functions/config.ts); the pass uses none of them.
  useLocalQueues(await createQueues(new SQSClient({}), prefix));
  const stores = dynamoStores(loadConfig());
  for (const c of cases) {
    for (const concurrency of [1, 4]) {
      const segments = Math.round(c.segments * scale);
      const topic: Topic = {
        name: `m-${randomBytes(4).toString('hex')}`,
        partitions: c.partitions,
        retentionHours: 1,
        createdAt: Date.now(),
        epoch: randomBytes(4).toString('hex'),
      };
      await stores.catalog.createTopic(topic);
      const key = topicKeyOf(topic);
      const body = 'x'.repeat(c.bytes);
      const old = Date.now() - 2 * HOUR;
      const writeStarted = Date.now();
      const perPartition = Math.ceil(segments / c.partitions);
      for (let i = 0; i < perPartition; i += 16) {
        const writes = [];
        for (let p = 0; p < c.partitions; p++)
          for (let j = i; j < Math.min(perPartition, i + 16); j++)
            writes.push(stores.log.appendSegment(key, { partition: p, base: j, producedAt: old, records: [{ b: body }] }, [], 0));
        await Promise.all(writes);
      }
      const writeMs = Date.now() - writeStarted;
      const meter = startMetering();
      const started = Date.now();
      const result = await trimAllTopics(stores, Date.now(), { concurrency });
      const ms = Date.now() - started;
      const written = perPartition * c.partitions;
      const calls = Object.entries(meter.byCommand)
        .map(([name, m]) => `${name.replace(/Command$/, '')} ${m.calls}`)
        .join(', ');
      console.log(
        `${c.label} x ${written} in ${c.partitions} partition(s), concurrency ${concurrency}: deleted ${result.deleted} ` +
          `(expected ${written - c.partitions}) in ${ms} ms = ${Math.round((result.deleted / ms) * 1000)} segments/s; ` +
          `write of the same took ${writeMs} ms; calls: ${calls}; RRU ${meter.readUnits}, WRU ${meter.writeUnits} (metered as DynamoDB would)`,
      );
    }
  }

  // An idle pass: many partitions, nothing expired (the steady state of most partitions in most passes).
  const idleTopics = Math.round(200 * scale);
  for (let t = 0; t < idleTopics; t++) {
    const topic: Topic = { name: `idle-${t}`, partitions: 4, retentionHours: 72, createdAt: Date.now(), epoch: 'e' };
    await stores.catalog.createTopic(topic);
    await Promise.all(
      [0, 1, 2, 3].map((p) =>
        stores.log.appendSegment(topicKeyOf(topic), { partition: p, base: 0, producedAt: Date.now(), records: [{ b: 'x'.repeat(20_000) }] }, [], 0),
      ),
    );
  }
  for (const concurrency of [1, 8]) {
    const meter = startMetering();
    const started = Date.now();
    const result = await trimAllTopics(stores, Date.now(), { concurrency });
    const ms = Date.now() - started;
    const partitions = result.topics * 4;
    console.log(
      `idle pass over ${result.topics} topics (~${partitions} partitions, one ~20 KB segment each), concurrency ${concurrency}: ` +
        `${ms} ms = ${(ms / partitions).toFixed(2)} ms per partition; deleted ${result.deleted}; calls: ` +
        Object.entries(meter.byCommand).map(([name, m]) => `${name.replace(/Command$/, '')} ${m.calls}`).join(', ') +
        `; RRU ${meter.readUnits}`,
    );
  }

  // With TTL (docs/retention.md, "TTL"): partitions whose old segments carry exp (TTL's work) and whose newest
  // is fresh (steady state: two reads per partition, no writes), then the same partitions idle for long (the
  // newest near its expiry: one protection update each, once).
  const ttlTopics = Math.round(100 * scale);
  const old = Date.now() - 80 * HOUR;
  for (let t = 0; t < ttlTopics; t++) {
    const topic: Topic = { name: `ttl-${t}`, partitions: 4, retentionHours: 72, createdAt: old, epoch: 'e' };
    await stores.catalog.createTopic(topic);
    await Promise.all(
      [0, 1, 2, 3].map(async (p) => {
        for (const [base, producedAt] of [[0, old], [1, old + 1], [2, Date.now()]] as const) {
          const segment = { partition: p, base, producedAt, records: [{ b: 'x'.repeat(20_000) }], expiresAt: segmentExpiry(producedAt, 72) };
          await stores.log.appendSegment(topicKeyOf(topic), segment, [], 0);
        }
      }),
    );
  }
  for (const [label, at] of [
    ['steady state (old segments TTL\'s, newest fresh)', Date.now()],
    ['idle for 4 days (the newest near its expiry)', Date.now() + 4 * 24 * HOUR],
    ['idle for 4 days, the next pass', Date.now() + 4 * 24 * HOUR],
  ] as const) {
    const meter = startMetering();
    const started = Date.now();
    const result = await trimAllTopics(stores, at, { concurrency: 8 });
    const ms = Date.now() - started;
    console.log(
      `TTL, ${label}: ${result.topics} topics, ${ms} ms; deleted ${result.deleted}, protected ${result.protected}; calls: ` +
        Object.entries(meter.byCommand).map(([name, m]) => `${name.replace(/Command$/, '')} ${m.calls}`).join(', ') +
        `; RRU ${meter.readUnits}, WRU ${meter.writeUnits}`,
    );
  }
} finally {
  await emulator.stop();
}
