/** Limits and timing of delayed messages, each with the reason behind it. */
export const DELAY = {
  /** API.md: delays up to 2 years (730 days); further is refused, never truncated (QMQ truncated). */
  maxDelayMs: 63_072_000 * 1000,
  /** API.md: a repeating message lands at most 10,000 times, at least 1 s apart. */
  maxRepeatTimes: 10_000,
  /** Pending messages named by one delay-queue message (one topic, one due second): SQS bodies stay ~15 KB. */
  idsPerQueueMessage: 100,
  /**
   * A landing may run this much before its due time: it then waits out the rest, so nothing is visible
   * before it is due (SQS's delay has one-second granularity and a poller may receive a message early).
   */
  earlyLandingMs: 1000,
  /** A queued message not landed this long after its due time is overdue: the sweep queues it again. */
  overdueAfterMs: 10_000,
  /** Pending records outlive their due time by this much at most (DynamoDB TTL cleans up after deleted topics). */
  pendingTtlAfterDueSeconds: 30 * 24 * 3600,
} as const;

export const minuteOf = (ms: number) => Math.floor(ms / 60_000);
