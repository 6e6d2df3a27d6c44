import { requireGroupCached } from '../groups/groups.js';
import { groupKeyOf, type PushWork, type Stores } from '../ports.js';
import { pushPartition, type PushPorts } from './worker.js';

/** SQS delays stop at 15 minutes: a later wake-up is sent as a 15-minute one (the round then re-plans). */
const MAX_WAKE_DELAY_SECONDS = 900;
/** When all of a group's delivery slots are taken: try again this soon. */
const BUSY_RETRY_SECONDS = 1;

export interface WorkOutcome {
  readonly delivered: number;
  readonly failed: number;
  /** Seconds until this work was queued again (undefined: nothing left to do). */
  readonly wakeInSeconds?: number;
  readonly busy?: boolean;
}

/**
 * One unit of push work: claims one of the group's `maxConcurrency` delivery slots (so no more than that
 * many batches of the group are out at once, whatever SQS delivers), delivers the partition, and queues
 * its own wake-up for whatever is left: a slow-down, a retry after backoff, a lease that may expire.
 * Only the earliest pending wake-up of a partition is queued (planWake), so duplicates do not pile up.
 */
export async function runPushWork(stores: Stores, ports: PushPorts, work: PushWork, deadline: number): Promise<WorkOutcome> {
  let found;
  try {
    // Work for a partition that a growth added re-reads a cached copy of the topic that lacks it.
    found = await requireGroupCached(stores, work.topic, work.group, work.partition + 1);
  } catch {
    return { delivered: 0, failed: 0 }; // the topic or group is gone: nothing to deliver
  }
  const { topic, group } = found;
  if (!group.delivery || group.delivery.type === 'pull' || work.partition >= topic.partitions) return { delivered: 0, failed: 0 };
  const groupKey = groupKeyOf(topic, group.name);
  const slot = await stores.groupState.claimSlot(groupKey, group.delivery.maxConcurrency, deadline + 5000);
  if (!slot) {
    await stores.pushQueue.send([work], BUSY_RETRY_SECONDS);
    return { delivered: 0, failed: 0, wakeInSeconds: BUSY_RETRY_SECONDS, busy: true };
  }
  let round;
  try {
    round = await pushPartition(stores, ports, work.topic, work.group, work.partition, deadline);
  } finally {
    await stores.groupState.releaseSlot(groupKey, slot);
  }
  let wakeAt: number | undefined;
  if (round.more) wakeAt = Date.now() + (round.resumeAfterMs ?? 0);
  else {
    // Messages waiting for a retry (nacked with backoff) or leased (a lease may expire): wake then.
    const progress = await stores.groupState.getProgress(groupKey, work.partition);
    const dues = (progress?.entries ?? []).map((e) => e.until);
    if (dues.length > 0) wakeAt = Math.max(Date.now(), Math.min(...dues));
  }
  if (wakeAt === undefined) return { delivered: round.delivered, failed: round.failed };
  const delay = Math.min(MAX_WAKE_DELAY_SECONDS, Math.max(0, Math.ceil((wakeAt - Date.now()) / 1000)));
  if (await stores.groupState.planWake(groupKey, work.partition, Date.now() + delay * 1000)) {
    await stores.pushQueue.send([work], delay);
  }
  return { delivered: round.delivered, failed: round.failed, wakeInSeconds: delay };
}
