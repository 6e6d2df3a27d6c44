import { randomBytes } from 'node:crypto';
import type { PendingGroup } from '../ports.js';

/**
 * Grouped pending records (docs/delay.md, "Groups"): the id-less delayed messages of one produce request
 * that are due at the same moment, repeat alike and go to the same partition are one pending item, landed
 * in one transaction (the segment, one conditional update of the group, one lookup record).
 *
 * Ids: the group's id has the form of a generated delayed id, "dl-<due, base 36>-<16 hex>"; member i is
 * "<group>-<i, 3 base-36 digits>" (so members sort in index order), and landing n ≥ 2 of a repeat lands as
 * "<member>.<n>", as every repeat does.
 */
export const newGroupId = (due: number) => `dl-${due.toString(36)}-${randomBytes(8).toString('hex')}`;

const MEMBER_DIGITS = 3;
const LANDED_MEMBER_ID = /^(dl-[0-9a-z]{1,11}-[0-9a-f]{16})-([0-9a-z]{3})(?:\.([1-9][0-9]{0,4}))?$/;

export const memberId = (groupId: string, member: number) => `${groupId}-${member.toString(36).padStart(MEMBER_DIGITS, '0')}`;

/** The id member `member` lands with at landing `landing`. */
export const landedMemberId = (groupId: string, member: number, landing: number) =>
  landing === 1 ? memberId(groupId, member) : `${memberId(groupId, member)}.${landing}`;

/** A pending member's id (as produce answered it): its group and index. */
export function parseMemberId(id: string): { group: string; member: number } | undefined {
  const m = LANDED_MEMBER_ID.exec(id);
  if (!m || m[3] !== undefined) return undefined;
  return { group: m[1]!, member: parseInt(m[2]!, 36) };
}

/** A landed member's id (a pending member's id, or with ".<n>" for landing n of a repeat). */
export function parseLandedMemberId(id: string): { group: string; member: number; landing: number } | undefined {
  const m = LANDED_MEMBER_ID.exec(id);
  if (!m) return undefined;
  return { group: m[1]!, member: parseInt(m[2]!, 36), landing: m[3] === undefined ? 1 : Number(m[3]) };
}

/**
 * The id of a group's lookup record for one landing, in the de-duplication table beside producer ids. The
 * space keeps it apart from every producer id: those are printable ASCII without spaces (API.md), so no
 * producer id can name (and collide with) a group's record.
 */
export const groupRecordId = (groupId: string, landing: number) => `${groupId} ${landing}`;

export function positionIn(positions: string, member: number): { partition: number; offset: number } | undefined {
  const prefix = `${member.toString(36)}.`;
  for (const entry of positions.split(',')) {
    if (!entry.startsWith(prefix)) continue;
    const [, partition, offset] = entry.split('.');
    if (partition === undefined || offset === undefined) return undefined;
    return { partition: parseInt(partition, 36), offset: parseInt(offset, 36) };
  }
  return undefined;
}

/** Members not cancelled. */
export const liveMembers = (g: PendingGroup) => {
  const cancelled = new Set(g.cancelled);
  return g.members.map((_, i) => i).filter((i) => !cancelled.has(i));
};

