import { LIMITS } from '../limits.js';

/**
 * When DynamoDB TTL may delete a segment (docs/retention.md, "TTL"). TTL deletes are free; the retention
 * pass's deletes are billed by item size, as much as writing the segment cost. So every segment is written
 * with `exp` and TTL takes it some time after, except the newest segment of a partition, which must stay
 * (the next append learns its offset from it): the retention pass removes `exp` from a partition's newest
 * segment before TTL could take it, and deletes such segments itself once a newer one exists.
 */

/**
 * A day after retention before TTL may delete a segment. Without it an active partition's newest segment
 * would need its `exp` removed (a write billed by the segment's size) on nearly every pass; with it only a
 * partition idle for retention + 12 hours does. Costs a day of storage: ~$0.006 per million 200-byte messages.
 */
export const SEGMENT_EXPIRY_GRACE_SECONDS = 24 * 3600;

/**
 * The retention pass removes `exp` from a newest segment that TTL could delete within 12 hours. The pass
 * runs every 5 minutes: 144 passes must all fail before TTL could take a partition's newest segment (and
 * TTL itself deletes expired items within days, not at once).
 */
export const TAIL_PROTECTION_SECONDS = 12 * 3600;

/** The `exp` (epoch seconds) of a segment produced at `producedAt` (epoch ms) into a topic kept `retentionHours`. */
export const segmentExpiry = (producedAt: number, retentionHours: number): number =>
  Math.ceil(producedAt / 1000) + retentionHours * 3600 + SEGMENT_EXPIRY_GRACE_SECONDS;

/**
 * The `exp` (epoch seconds) of what remembers where messages produced at `producedAt` went — producer ids,
 * delayed groups' lookup records, producer sessions: the dedup window (24 h), or the retention if longer.
 */
export const rememberedUntil = (producedAt: number, retentionHours: number): number =>
  Math.floor(producedAt / 1000) + Math.max(LIMITS.dedupWindowSeconds, retentionHours * 3600);
