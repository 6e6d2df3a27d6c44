import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { TABLES, type TableSpec } from '../lib/tables.js';
import type { LocalService } from './periodic.js';

/**
 * DynamoDB TTL for the emulator: moto stores a table's TTL setting but never deletes expired items. Sluice's
 * retention relies on TTL for the log (docs/retention.md), so the local runtime sweeps every table of
 * lib/tables.ts that declares a TTL attribute: a Scan for items whose attribute is before now, and a delete
 * of each that is still expired when it is deleted (a conditional DeleteItem: an item written again with a
 * later expiry meanwhile stays, as on AWS, where TTL only deletes items that are expired).
 *
 * AWS deletes expired items "typically within a few days"; this sweep deletes them at its next round. That
 * is the harsher case for Sluice (a partition's newest segment must be protected before it expires), and it
 * keeps a long-running `npm start` from growing without bound.
 */

/** Scan page size: the sweep reads keys and the TTL attribute only. */
const SCAN_PAGE = 500;

export interface SweepOptions {
  /** The TTL clock, epoch seconds (tests move it on). */
  readonly nowSeconds?: number;
  /** Only these tables (ids of lib/tables.ts); default every table with a TTL attribute. */
  readonly tables?: readonly string[];
  /** Only items whose partition key starts with this (tests: one topic's log, "<topic>@<epoch>#"). */
  readonly partitionKeyPrefix?: string;
}

/**
 * Deletes every expired item of the TTL tables the configuration names (each table's `envVar`, as the
 * handlers read it: local/environment.ts sets them); returns how many, by table id.
 */
export async function sweepExpiredItems(client: DynamoDBClient, options: SweepOptions = {}): Promise<Record<string, number>> {
  const documents = DynamoDBDocumentClient.from(client);
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const swept: Record<string, number> = {};
  for (const spec of TABLES as readonly TableSpec[]) {
    if (!spec.ttlAttribute || (options.tables && !options.tables.includes(spec.id))) continue;
    const table = process.env[spec.envVar];
    if (!table) throw new Error(`${spec.envVar} is not set: no ${spec.id} table to sweep`);
    const keyNames = [spec.partitionKey.name, ...(spec.sortKey ? [spec.sortKey.name] : [])];
    const names = Object.fromEntries([...keyNames, spec.ttlAttribute].map((name, i) => [`#a${i}`, name]));
    const ttl = `#a${keyNames.length}`;
    let count = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const page = await documents.send(
        new ScanCommand({
          TableName: table,
          FilterExpression: `${ttl} < :now` + (options.partitionKeyPrefix !== undefined ? ' AND begins_with(#a0, :prefix)' : ''),
          ProjectionExpression: Object.keys(names).join(', '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':now': now, ...(options.partitionKeyPrefix !== undefined ? { ':prefix': options.partitionKeyPrefix } : {}) },
          Limit: SCAN_PAGE,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        try {
          await documents.send(
            new DeleteCommand({
              TableName: table,
              Key: Object.fromEntries(keyNames.map((k) => [k, item[k]])),
              ConditionExpression: '#ttl < :now',
              ExpressionAttributeNames: { '#ttl': spec.ttlAttribute },
              ExpressionAttributeValues: { ':now': now },
            }),
          );
          count++;
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
    swept[spec.id] = count;
  }
  return swept;
}

/** The sweep as a service of the local runtime: one round every `intervalMs`, never two at once. */
export function startTtlSweeper(intervalMs: number, log: (line: string) => void = (line) => console.error(line)): LocalService {
  const client = new DynamoDBClient({});
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = sweepExpiredItems(client)
      .then(() => undefined)
      .catch((error: unknown) => log(`[sluice] TTL sweep failed: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return {
    name: 'ttl-sweeper',
    stop: async () => {
      clearInterval(timer);
      await running;
      client.destroy();
    },
  };
}
