/** Limits and timing of delayed messages, each with the reason behind it. */
export const DELAY = {
  /** API.md: delays up to 2 years (730 days); further is refused, never truncated (QMQ truncated). */
  maxDelayMs: 63_072_000 * 1000,
  /** API.md: a repeating message lands at most 10,000 times, at least 1 s apart. */
  maxRepeatTimes: 10_000,
  /** Pending items named by one delay-queue message (one topic, one due second): SQS bodies stay ~15 KB. */
  idsPerQueueMessage: 100,
  /**
   * Messages one delay-queue message names at most, counting each member of a group. A landing holds its
   * poller (a Lambda event source's concurrent batch) while it waits for the due time, so a burst's queue
   * messages must be few enough for the first receives to take them all: 10,000 due together are 5 queue
   * messages, landed side by side (with 500 each, 20 queue messages met 5 pollers, and the last were
   * received only after the first landings ended, ~0.5 s after the due time). Small enough that a landing
   * is a few segments (2,000 messages of 200 bytes are two 300 KB segments).
   */
  messagesPerQueueMessage: 2000,
  /**
   * A group's members' bytes at most (DynamoDB's item limit is 400 KB; a group also fits one segment,
   * 300 KB): a request's messages due together are split into groups at this size.
   */
  maxGroupBytes: 160 * 1024,
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
