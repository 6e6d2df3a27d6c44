import type { StoredRecord } from '../messages.js';
import type { GroupLandingChange, LandingChange, PendingGroup } from '../ports.js';

/**
 * What a landing of delayed messages adds to the append of the segment it lands in (functions/domain/delay/
 * decides what lands; the log appends it): the message to append, and the pending record or group item that
 * changes in the same transaction. Here, in the log, so the log never imports the delay capability.
 */
export interface Pending {
  readonly index: number;
  readonly partition: number;
  /** Neither a key nor an explicit partition: the message may go to any partition. */
  readonly movable: boolean;
  readonly record: StoredRecord;
  readonly bytes: number;
  /** A delayed message landing: its pending record goes (or advances) in the same transaction as the segment. */
  readonly landing?: LandingChange;
  /** A member of a delayed group landing: its group's item changes in the same transaction (no producer-id record). */
  readonly member?: MemberLanding;
}

/** Bytes of group items one segment's transaction carries at most besides the segment (TransactWriteItems: 4 MB). */
export const MAX_GROUP_BYTES_PER_TRANSACTION = 3 * 1024 * 1024;

/** Positions: "<member>.<partition>.<offset>" in base 36, comma-separated (~10 bytes a member). */
export const encodePosition = (member: number, partition: number, offset: number) =>
  `${member.toString(36)}.${partition.toString(36)}.${offset.toString(36)}`;

export const joinPositions = (a: string, b: string) => (a === '' ? b : b === '' ? a : `${a},${b}`);

/** What a group item stores of a member, in bytes (its record, and a few for its field names and index). */
export const memberBytes = (record: StoredRecord) => Buffer.byteLength(JSON.stringify(record), 'utf8') + 16;

/** About what a group's item weighs (members + the fixed attributes), for a transaction's 4 MB. */
export const groupBytes = (g: PendingGroup) => 600 + g.members.reduce((s, m) => s + memberBytes(m.record), 0) + g.positions.length;

/**
 * One landing of a group in progress: which members are still to land, and what the group item is known
 * to be (version, members landed so far and where). Shared by the group's members in the append; a
 * segment that lands some of them advances it, so a group split over two segments of one partition
 * lands with two transactions, each at the version the previous one wrote.
 */
export class GroupLandingPlan {
  version: number;
  landed: number[];
  positions: string;
  readonly toLand: Set<number>;

  constructor(
    readonly group: PendingGroup,
    toLand: readonly number[],
    readonly next: GroupLandingChange['next'],
  ) {
    this.version = group.version;
    this.landed = [...group.landed];
    this.positions = group.positions;
    this.toLand = new Set(toLand);
  }

  get id() {
    return this.group.id;
  }

  readonly storedBytes = () => groupBytes(this.group);
}

/** A member of a group, landing: its plan and its index. */
export interface MemberLanding {
  readonly plan: GroupLandingPlan;
  readonly member: number;
}

/**
 * The group changes of one segment (`remaining` appended at `base` of `partition`): one per group with
 * members in it. `commit` advances the plans once the segment's transaction is applied.
 */
export function groupLandings(remaining: readonly Pending[], partition: number, base: number, expiresAt: number): { changes: LandingChange[]; commit: () => void } {
  const byPlan = new Map<GroupLandingPlan, Array<{ member: number; offset: number }>>();
  remaining.forEach((p, i) => {
    if (!p.member) return;
    const list = byPlan.get(p.member.plan) ?? [];
    list.push({ member: p.member.member, offset: base + i });
    byPlan.set(p.member.plan, list);
  });
  const changes: LandingChange[] = [];
  const applied: Array<() => void> = [];
  for (const [plan, members] of byPlan) {
    const here = new Set(members.map((m) => m.member));
    const landed = [...plan.landed, ...members.map((m) => m.member)];
    const positions = joinPositions(plan.positions, members.map((m) => encodePosition(m.member, partition, m.offset)).join(','));
    const complete = [...plan.toLand].every((m) => here.has(m));
    const group: GroupLandingChange = {
      landing: plan.group.landing,
      landed,
      positions,
      complete,
      ...(complete && plan.next ? { next: plan.next } : {}),
      expiresAt,
    };
    changes.push({ topicKey: plan.group.topicKey, id: plan.id, version: plan.version, group });
    applied.push(() => {
      plan.version += 1;
      plan.landed = landed;
      plan.positions = positions;
      for (const m of here) plan.toLand.delete(m);
    });
  }
  return { changes, commit: () => applied.forEach((apply) => apply()) };
}

/**
 * Transaction actions a segment's pending item costs: a message's producer-id record and its pending
 * record; a group's item and its lookup record, once per group in the segment.
 */
export function landingCost(p: Pending, groupsInChunk: ReadonlySet<GroupLandingPlan>): { actions: number; bytes: number } {
  if (p.member) {
    if (groupsInChunk.has(p.member.plan)) return { actions: 0, bytes: 0 };
    return { actions: 2, bytes: p.member.plan.storedBytes() };
  }
  return { actions: (p.record.i !== undefined ? 1 : 0) + (p.landing ? 1 : 0), bytes: 0 };
}
