import { groupKeyOf, type Stores } from './ports.js';
import { applyRedrive, freshProgress } from './progress.js';
import { requireGroup, retryOnConflict, startOffsetOf } from './groups.js';
import { iso } from './time.js';

export async function listDeadLetters(stores: Stores, topicName: string, groupName: string, limit: number) {
  const { topic, group } = await requireGroup(stores, topicName, groupName);
  const letters = await stores.groupState.listDeadLetters(groupKeyOf(topic, group.name), limit);
  return letters.map((l) => ({ ...l.message, deadAt: iso(l.deadAt), deliveryCount: l.deliveryCount }));
}

/** Dead letters moved back per redrive call; one transaction per partition batch (TransactWriteItems: 100 actions). */
const REDRIVE_BATCH = 99;
const MAX_REDRIVE_PER_CALL = 1000;

/**
 * Puts dead letters back into their partitions as waiting deliveries with a fresh delivery count.
 * Each batch is one transaction: the progress gains the offsets and the dead-letter items go, together.
 */
export async function redriveDeadLetters(stores: Stores, topicName: string, groupName: string): Promise<number> {
  const { topic, group } = await requireGroup(stores, topicName, groupName);
  const groupKey = groupKeyOf(topic, group.name);
  let redriven = 0;
  while (redriven < MAX_REDRIVE_PER_CALL) {
    const letters = await stores.groupState.listDeadLetters(groupKey, REDRIVE_BATCH);
    if (letters.length === 0) break;
    const byPartition = new Map<number, typeof letters>();
    for (const l of letters) {
      const list = byPartition.get(l.message.partition) ?? [];
      list.push(l);
      byPartition.set(l.message.partition, list);
    }
    for (const [partition, list] of byPartition) {
      await retryOnConflict(async () => {
        const progress = (await stores.groupState.getProgress(groupKey, partition)) ?? freshProgress(startOffsetOf(group, partition));
        const next = applyRedrive(progress, list.map((l) => l.message.offset), Date.now());
        await stores.groupState.putProgress(groupKey, partition, next, { redrivenKeys: list.map((l) => l.key) });
      });
      redriven += list.length;
    }
  }
  return redriven;
}

