import { validation } from '../errors.js';
import { LIMITS } from '../limits.js';
import type { LogMessage } from '../messages.js';
import { groupKeyOf, type DeadLetter, type Stores } from '../ports.js';
import { applyRedrive, freshProgress } from './progress.js';
import { requireGroup, retryOnConflict, startOffsetOf } from './groups.js';
import { iso } from '../time.js';

const CURSOR = /^d#[0-9]{13}#[0-9]{3}#[0-9]{15}$/;

/** Oldest dead letters first, at most `limit` and a reply's worth of bytes; `next` pages on. */
export async function listDeadLetters(stores: Stores, topicName: string, groupName: string, limit: number, after?: string) {
  if (after !== undefined && !CURSOR.test(after)) throw validation('after is not a cursor returned by this API.');
  const { topic, group } = await requireGroup(stores, topicName, groupName);
  const page = await stores.groupState.listDeadLetters(groupKeyOf(topic, group.name), limit, after, LIMITS.maxReplyMessageBytes);
  return {
    letters: page.letters.map((l) => ({ ...l.message, deadAt: iso(l.deadAt), deliveryCount: l.deliveryCount, reason: l.reason ?? null })),
    ...(page.next ? { next: page.next } : {}),
  };
}

/**
 * Letters moved per transaction: TransactWriteItems takes 100 actions (the progress write, then a
 * delete and a copy per letter) and 4 MB, so a batch also stops at 3 MB of copies.
 */
const REDRIVE_BATCH = 49;
const REDRIVE_BATCH_BYTES = 3 * 1024 * 1024;
const MAX_REDRIVE_PER_CALL = 1000;

type Letter = DeadLetter & { key: string };

function firstBatch(letters: readonly Letter[]): Letter[] {
  const batch: Letter[] = [];
  let bytes = 0;
  for (const l of letters) {
    const size = Buffer.byteLength(JSON.stringify(l.message));
    if (batch.length > 0 && (batch.length >= REDRIVE_BATCH || bytes + size > REDRIVE_BATCH_BYTES)) break;
    batch.push(l);
    bytes += size;
  }
  return batch;
}

export interface RedriveSummary {
  /** Letters back in the group (as waiting deliveries, or as offsets the group will read again). */
  readonly redriven: number;
  /** Letters left dead because their partition's in-flight window is full; redrive again later. */
  readonly deferred: number;
}

/**
 * Puts dead letters back into their partitions as waiting deliveries with a fresh delivery count.
 * Each batch of a partition is one transaction: the progress gains the offsets, each letter's item is
 * replaced by a kept copy (retention may have removed its segment meanwhile: the copy is what gets
 * delivered then). Offsets the group will read again from the log (a reset moved it back) just lose
 * their letter. At most the in-flight window's room comes back per partition; the rest stays dead.
 */
export async function redriveDeadLetters(stores: Stores, topicName: string, groupName: string, deadline = Date.now() + 8000): Promise<RedriveSummary> {
  const { topic, group } = await requireGroup(stores, topicName, groupName);
  const groupKey = groupKeyOf(topic, group.name);
  let redriven = 0;
  let deferred = 0;
  let after: string | undefined;
  while (redriven + deferred < MAX_REDRIVE_PER_CALL && Date.now() < deadline) {
    const page = await stores.groupState.listDeadLetters(groupKey, REDRIVE_BATCH, after, REDRIVE_BATCH_BYTES);
    const batch = firstBatch(page.letters);
    if (batch.length === 0) break;
    after = batch[batch.length - 1]!.key;
    const byPartition = new Map<number, Letter[]>();
    for (const l of batch) byPartition.set(l.message.partition, [...(byPartition.get(l.message.partition) ?? []), l]);
    for (const [partition, list] of byPartition) {
      const outcome = await retryOnConflict(async () => {
        const progress = (await stores.groupState.getProgress(groupKey, partition)) ?? freshProgress(startOffsetOf(group, partition));
        const plan = applyRedrive(progress, list.map((l) => l.message.offset), Date.now());
        const moved: Array<{ key: string; message: LogMessage }> = [];
        const dropped: string[] = [];
        const accepted = new Set(plan.accepted);
        const fromLog = new Set(plan.fromLog);
        for (const l of list) {
          // The same offset may be dead twice (a reset between): one copy is enough.
          if (accepted.delete(l.message.offset)) moved.push({ key: l.key, message: l.message });
          else if (fromLog.has(l.message.offset) || plan.accepted.includes(l.message.offset)) dropped.push(l.key);
        }
        if (moved.length > 0 || dropped.length > 0) {
          await stores.groupState.putProgress(groupKey, partition, plan.next, { redriven: moved, droppedLetters: dropped });
        }
        return { back: moved.length + dropped.length, deferred: list.length - moved.length - dropped.length };
      });
      redriven += outcome.back;
      deferred += outcome.deferred;
    }
    if (!page.next && batch.length === page.letters.length) break;
  }
  return { redriven, deferred };
}
