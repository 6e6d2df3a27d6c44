import { BatchGetCommand, BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/*
 * Batch calls may return unprocessed work under load (throttling); retry it with exponential backoff
 * and jitter (AWS guidance for BatchGetItem/BatchWriteItem), so concurrent callers do not retry in step.
 * Rounds 1..7 wait 25-50 ms up to 0.5-1 s each, about 3.5 s at most in all before giving up.
 */
const MAX_ROUNDS = 8;
const pause = (round: number) => {
  const ceiling = Math.min(1000, 25 * 2 ** round);
  return new Promise((r) => setTimeout(r, ceiling / 2 + Math.random() * (ceiling / 2)));
};

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function batchGetAll(
  client: DynamoDBDocumentClient,
  table: string,
  keys: ReadonlyArray<Record<string, unknown>>,
): Promise<Record<string, unknown>[]> {
  const found: Record<string, unknown>[] = [];
  for (const part of chunk(keys, 100)) {
    let request: Record<string, unknown>[] | undefined = part;
    for (let round = 0; request && request.length > 0; round++) {
      if (round >= MAX_ROUNDS) throw new Error('BatchGetItem kept returning unprocessed keys');
      if (round > 0) await pause(round);
      const out = await client.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: request, ConsistentRead: true } } }));
      found.push(...(out.Responses?.[table] ?? []));
      request = out.UnprocessedKeys?.[table]?.Keys as Record<string, unknown>[] | undefined;
    }
  }
  return found;
}

export async function batchDeleteAll(
  client: DynamoDBDocumentClient,
  table: string,
  keys: ReadonlyArray<Record<string, unknown>>,
): Promise<void> {
  for (const part of chunk(keys, 25)) {
    let requests = part.map((Key) => ({ DeleteRequest: { Key } }));
    for (let round = 0; requests.length > 0; round++) {
      if (round >= MAX_ROUNDS) throw new Error('BatchWriteItem kept returning unprocessed items');
      if (round > 0) await pause(round);
      const out = await client.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
      requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
    }
  }
}
