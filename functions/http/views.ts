import type { Delivery } from '../domain/groups/consume.js';
import type { GroupView } from '../domain/groups/groups.js';
import type { LogMessage } from '../domain/messages.js';
import type { Group, PendingDelayed, Topic } from '../domain/ports.js';
import { iso } from '../domain/time.js';

/** Reply shapes of API.md, kept apart from the domain's types so that either may change on its own. */
export const topicView = (t: Topic) => ({
  name: t.name,
  partitions: t.partitions,
  retentionHours: t.retentionHours,
  createdAt: iso(t.createdAt),
});

export const groupView = (g: Group) => ({
  topic: g.topic,
  name: g.name,
  mode: g.mode,
  startFrom: g.startFrom,
  maxDeliveries: g.maxDeliveries,
  visibilitySeconds: g.visibilitySeconds,
  filter: g.filter ?? null,
  transform: g.transform ?? null,
  delivery: g.delivery ?? { type: 'pull' },
  createdAt: iso(g.createdAt),
});

export const groupWithLagView = (v: GroupView) => ({
  ...groupView(v.group),
  lag: v.lag,
  partitions: v.partitions,
  ...(v.consumers ? { consumers: v.consumers } : {}),
});

export const messageView = (m: LogMessage) => ({
  id: m.id,
  partition: m.partition,
  offset: m.offset,
  ...(m.bodyBase64 !== undefined ? { bodyBase64: m.bodyBase64 } : { body: m.body }),
  key: m.key ?? null,
  tags: m.tags,
  headers: m.headers,
  producedAt: m.producedAt,
  ...(m.deliverAt !== undefined ? { deliverAt: m.deliverAt } : {}),
});

/** A pending delayed message (API.md, "Delay messages"); the body only where one message is asked for. */
export const pendingView = (p: PendingDelayed, withBody: boolean) => ({
  id: p.id,
  deliverAt: iso(p.due),
  key: p.key ?? null,
  tags: p.record.t ?? [],
  headers: p.record.h ?? {},
  ...(p.partition !== undefined ? { partition: p.partition } : {}),
  ...(p.repeat ? { repeat: { ...p.repeat, next: p.landing } } : {}),
  ...(withBody ? (p.record.x !== undefined ? { bodyBase64: p.record.x } : { body: p.record.b }) : {}),
  createdAt: iso(p.createdAt),
});

export const deliveryView = (d: Delivery) => ({ ...messageView(d), deliveryCount: d.deliveryCount, receipt: d.receipt });
