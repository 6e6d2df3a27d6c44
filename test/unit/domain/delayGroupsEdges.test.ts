/**
 * The pure parts of grouped pending records (docs/delay.md, "Groups"): member ids and their parsing, the
 * positions of a lookup record (functions/domain/delay/groups.ts), and what a group's landing adds to a
 * segment's transaction (functions/domain/log/landings.ts: its cost, the group changes of a segment, the
 * 3 MB bound), at their edges. The behaviour over the in-memory stores is in delayGroups.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  groupRecordId,
  landedMemberId,
  liveMembers,
  memberId,
  newGroupId,
  parseLandedMemberId,
  parseMemberId,
  positionIn,
} from '../../../functions/domain/delay/groups.js';
import { chunkForSegments } from '../../../functions/domain/log/append.js';
import {
  encodePosition,
  groupBytes,
  GroupLandingPlan,
  groupLandings,
  joinPositions,
  landingCost,
  MAX_GROUP_BYTES_PER_TRANSACTION,
  memberBytes,
  type Pending,
} from '../../../functions/domain/log/landings.js';
import { LIMITS } from '../../../functions/domain/limits.js';
import type { PendingGroup } from '../../../functions/domain/ports.js';
import { T0 } from '../../memory/fixtures.js';

const G = `dl-${T0.toString(36)}-0123456789abcdef`;

const group = (overrides: Partial<PendingGroup> = {}): PendingGroup => ({
  topicKey: 't@e1',
  id: G,
  due: T0,
  members: [{ record: { b: 0 } }, { record: { b: 1 } }, { record: { b: 2 } }, { record: { b: 3 } }],
  cancelled: [],
  landed: [],
  positions: '',
  landing: 1,
  queued: true,
  version: 1,
  createdAt: T0,
  ...overrides,
});

const memberPending = (plan: GroupLandingPlan, member: number, index = member, bytes = 10): Pending => ({
  index,
  partition: 0,
  movable: false,
  record: { b: member },
  bytes,
  member: { plan, member },
});

const message = (index: number, extra: Partial<Pending> = {}): Pending => ({ index, partition: 0, movable: false, record: { b: index }, bytes: 10, ...extra });

describe('group and member ids', () => {
  it('a group id is dl-<due, base 36>-<16 hex>; member i is <group>-<i, 3 base-36 digits>; landing n ≥ 2 adds .<n>', () => {
    const g = newGroupId(T0 + 1);
    expect(g).toMatch(new RegExp(`^dl-${(T0 + 1).toString(36)}-[0-9a-f]{16}$`));
    expect(newGroupId(T0 + 1)).not.toBe(g);
    expect(memberId(G, 0)).toBe(`${G}-000`);
    expect(memberId(G, 35)).toBe(`${G}-00z`);
    expect(memberId(G, 36)).toBe(`${G}-010`);
    expect(memberId(G, 499)).toBe(`${G}-0dv`);
    expect(landedMemberId(G, 5, 1)).toBe(`${G}-005`);
    expect(landedMemberId(G, 5, 2)).toBe(`${G}-005.2`);
    expect(landedMemberId(G, 10, 10_000)).toBe(`${G}-00a.10000`);
    // The lookup record's id: a space keeps it apart from every producer id.
    expect(groupRecordId(G, 1)).toBe(`${G} 1`);
    expect(groupRecordId(G, 12)).toBe(`${G} 12`);
  });

  it('parses pending and landed member ids back to group, index and landing', () => {
    expect(parseMemberId(`${G}-000`)).toEqual({ group: G, member: 0 });
    expect(parseMemberId(`${G}-0dv`)).toEqual({ group: G, member: 499 });
    expect(parseMemberId(`${G}-zzz`)).toEqual({ group: G, member: 36 ** 3 - 1 });
    expect(parseMemberId(`${G}-000.2`)).toBeUndefined();
    expect(parseLandedMemberId(`${G}-001`)).toEqual({ group: G, member: 1, landing: 1 });
    expect(parseLandedMemberId(`${G}-00a.2`)).toEqual({ group: G, member: 10, landing: 2 });
    expect(parseLandedMemberId(`${G}-00a.99999`)).toEqual({ group: G, member: 10, landing: 99_999 });
    expect(parseLandedMemberId(`${G}-00a.10`)).toEqual({ group: G, member: 10, landing: 10 });
    // Due times of 1 and 11 base-36 digits.
    expect(parseMemberId('dl-a-0123456789abcdef-001')).toEqual({ group: 'dl-a-0123456789abcdef', member: 1 });
    expect(parseMemberId(`dl-${'z'.repeat(11)}-0123456789abcdef-001`)).toEqual({ group: `dl-${'z'.repeat(11)}-0123456789abcdef`, member: 1 });
  });

  it('refuses every id not of a member’s form', () => {
    const notMembers = [
      G, // a delayed id of the form before groups
      `${G}-00`,
      `${G}-0000`,
      `${G}-00A`,
      `${G}-00-`,
      `x${G}-000`,
      `${G}-000x`,
      `${G}-000 `,
      `${G}-000.`,
      `${G}-000.0`,
      `${G}-000.01`,
      `${G}-000.100000`,
      `${G}-000.2.3`,
      `${G}-000-000`,
      `dl-${T0.toString(36)}-0123456789abcde-000`,
      `dl-${T0.toString(36)}-0123456789abcdef0-000`,
      `dl-${T0.toString(36)}-0123456789ABCDEF-000`,
      `dl-${T0.toString(36)}-0123456789abcdeg-000`,
      `dl--0123456789abcdef-000`,
      `dl-${'a'.repeat(12)}-0123456789abcdef-000`,
      `dl-A-0123456789abcdef-000`,
      `dl-a.-0123456789abcdef-000`,
      `dm-a-0123456789abcdef-000`,
      `dl-a_0123456789abcdef-000`,
      'order-1',
      '',
    ];
    for (const id of notMembers) {
      expect(parseLandedMemberId(id), id).toBeUndefined();
      expect(parseMemberId(id), id).toBeUndefined();
    }
  });

  it('finds a member’s place in a lookup record’s positions', () => {
    const positions = ['0.0.a', '1.2.b', 'a.1.z', '11.0.5', '2.3'].join(',');
    expect(positionIn(positions, 0)).toEqual({ partition: 0, offset: 10 });
    expect(positionIn(positions, 1)).toEqual({ partition: 2, offset: 11 });
    expect(positionIn(positions, 10)).toEqual({ partition: 1, offset: 35 });
    expect(positionIn(positions, 37)).toEqual({ partition: 0, offset: 5 });
    // Not there, and a malformed entry.
    expect(positionIn(positions, 3)).toBeUndefined();
    expect(positionIn(positions, 2)).toBeUndefined();
    expect(positionIn('', 0)).toBeUndefined();
    // Written by encodePosition.
    expect(positionIn(joinPositions(encodePosition(7, 3, 1234), encodePosition(70, 63, 99_999)), 70)).toEqual({ partition: 63, offset: 99_999 });
  });

  it('live members are those not cancelled', () => {
    expect(liveMembers(group())).toEqual([0, 1, 2, 3]);
    expect(liveMembers(group({ cancelled: [1, 3] }))).toEqual([0, 2]);
    expect(liveMembers(group({ cancelled: [0, 1, 2, 3] }))).toEqual([]);
  });
});

describe('positions and sizes', () => {
  it('encodes a position in base 36 and joins lists of them', () => {
    expect(encodePosition(10, 2, 100)).toBe('a.2.2s');
    expect(encodePosition(0, 0, 0)).toBe('0.0.0');
    expect(joinPositions('', '')).toBe('');
    expect(joinPositions('a.0.0', '')).toBe('a.0.0');
    expect(joinPositions('', 'b.0.1')).toBe('b.0.1');
    expect(joinPositions('a.0.0', 'b.0.1')).toBe('a.0.0,b.0.1');
  });

  it('weighs a member by its stored record in UTF-8 bytes, and a group by its members, positions and 600 more', () => {
    expect(memberBytes({ b: 'é' })).toBe(Buffer.byteLength('{"b":"é"}') + 16);
    expect(memberBytes({ b: 'é' })).toBe(26);
    const g = group({ positions: '0.0.0,1.0.1' });
    expect(groupBytes(g)).toBe(600 + 4 * memberBytes({ b: 0 }) + 11);
    expect(groupBytes(group({ members: [] }))).toBe(600);
  });
});

describe('a group landing plan and the changes of a segment', () => {
  it('starts from what the group item says', () => {
    const g = group({ landed: [1], positions: '1.0.4', version: 3 });
    const plan = new GroupLandingPlan(g, [0, 2], { due: T0 + 60_000, landing: 2, queued: true });
    expect(plan.id).toBe(G);
    expect(plan.version).toBe(3);
    expect(plan.landed).toEqual([1]);
    expect(plan.positions).toBe('1.0.4');
    expect([...plan.toLand]).toEqual([0, 2]);
    expect(plan.storedBytes()).toBe(groupBytes(g));
    // A copy: the plan's landed list moves on without touching the group's.
    plan.landed.push(9);
    expect(g.landed).toEqual([1]);
  });

  it('one change per group in a segment; positions are the offsets from the base; the plan moves on only on commit', () => {
    const next = { due: T0 + 60_000, landing: 2, queued: true };
    const plan = new GroupLandingPlan(group(), [0, 1, 2, 3], next);
    const other = new GroupLandingPlan(group({ id: 'dl-a-0000000000000000', version: 7 }), [0], undefined);
    // A message of its own first (offset 10), two members of `plan` (11, 12), one of `other` (13).
    const first = groupLandings([message(0), memberPending(plan, 0), memberPending(plan, 1), memberPending(other, 0)], 2, 10, 5555);
    expect(first.changes).toEqual([
      { topicKey: 't@e1', id: G, version: 1, group: { landing: 1, landed: [0, 1], positions: '0.2.b,1.2.c', complete: false, expiresAt: 5555 } },
      { topicKey: 't@e1', id: 'dl-a-0000000000000000', version: 7, group: { landing: 1, landed: [0], positions: '0.2.d', complete: true, expiresAt: 5555 } },
    ]);
    expect(plan.version).toBe(1);
    expect([...plan.toLand]).toEqual([0, 1, 2, 3]);
    first.commit();
    expect(plan.version).toBe(2);
    expect(plan.landed).toEqual([0, 1]);
    expect(plan.positions).toBe('0.2.b,1.2.c');
    expect([...plan.toLand]).toEqual([2, 3]);
    expect(other.version).toBe(8);
    expect(other.toLand.size).toBe(0);
    // The rest in the next segment (another partition): complete, and a repeat moves on.
    const second = groupLandings([memberPending(plan, 3), memberPending(plan, 2)], 3, 0, 6666);
    expect(second.changes).toEqual([
      {
        topicKey: 't@e1',
        id: G,
        version: 2,
        group: { landing: 1, landed: [0, 1, 3, 2], positions: '0.2.b,1.2.c,3.3.0,2.3.1', complete: true, next, expiresAt: 6666 },
      },
    ]);
    second.commit();
    expect(plan.toLand.size).toBe(0);
    expect(plan.version).toBe(3);
  });

  it('a segment of messages of their own changes no group', () => {
    const out = groupLandings([message(0), message(1, { record: { b: 1, i: 'p' } })], 0, 0, 1);
    expect(out.changes).toEqual([]);
    out.commit();
  });
});

describe('what a landing costs a segment’s transaction', () => {
  it('a group costs its item and its lookup record once per segment, with its stored bytes; a message its id and pending record', () => {
    const plan = new GroupLandingPlan(group(), [0, 1], undefined);
    expect(landingCost(memberPending(plan, 0), new Set())).toEqual({ actions: 2, bytes: groupBytes(group()) });
    expect(landingCost(memberPending(plan, 1), new Set([plan]))).toEqual({ actions: 0, bytes: 0 });
    const landing = { topicKey: 't@e1', id: 'p', version: 1 };
    expect(landingCost(message(0, { record: { b: 0, i: 'p' }, landing }), new Set([plan]))).toEqual({ actions: 2, bytes: 0 });
    expect(landingCost(message(0, { record: { b: 0, i: 'p' } }), new Set())).toEqual({ actions: 1, bytes: 0 });
    expect(landingCost(message(0, { landing }), new Set())).toEqual({ actions: 1, bytes: 0 });
    expect(landingCost(message(0), new Set())).toEqual({ actions: 0, bytes: 0 });
  });

  it('the members of one group fill a segment without counting against its 99 actions', () => {
    const plan = new GroupLandingPlan(group({ members: Array.from({ length: 500 }, () => ({ record: { b: 1 } })) }), [], undefined);
    const chunks = chunkForSegments(Array.from({ length: 500 }, (_, i) => memberPending(plan, i)));
    expect(chunks.map((c) => c.length)).toEqual([500]);
  });

  it('49 groups fit one transaction (98 actions besides the segment); the 50th starts the next segment', () => {
    const plans = Array.from({ length: 50 }, (_, i) => new GroupLandingPlan(group({ id: `g${i}` }), [0], undefined));
    const list = plans.map((plan, i) => memberPending(plan, 0, i));
    expect(chunkForSegments(list.slice(0, 49)).map((c) => c.length)).toEqual([49]);
    expect(chunkForSegments(list).map((c) => c.length)).toEqual([49, 1]);
    expect(LIMITS.maxIdsPerSegment).toBe(99);
  });

  it('groups’ stored bytes fill a transaction up to MAX_GROUP_BYTES_PER_TRANSACTION exactly (3 MiB)', () => {
    expect(MAX_GROUP_BYTES_PER_TRANSACTION).toBe(3 * 1024 * 1024);
    // Groups that store much (cancelled members, positions of members landed before) but land little here.
    const weighing = (bytes: number, id: string) => {
      const base = group({ id, members: [{ record: { b: 1 } }] });
      return new GroupLandingPlan({ ...base, positions: 'x'.repeat(bytes - groupBytes(base)) }, [0], undefined);
    };
    const third = MAX_GROUP_BYTES_PER_TRANSACTION / 4;
    const fits = [weighing(third, 'a'), weighing(third, 'b'), weighing(third, 'c'), weighing(third, 'd')];
    expect(fits.map((p) => p.storedBytes())).toEqual([third, third, third, third]);
    expect(chunkForSegments(fits.map((p, i) => memberPending(p, 0, i))).map((c) => c.length)).toEqual([4]);
    const over = [weighing(third, 'a'), weighing(third, 'b'), weighing(third, 'c'), weighing(third + 1, 'd')];
    expect(chunkForSegments(over.map((p, i) => memberPending(p, 0, i))).map((c) => c.length)).toEqual([3, 1]);
  });
});
