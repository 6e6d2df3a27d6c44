/**
 * Limits of the broker, each with the AWS limit or design reason behind it.
 */
export const LIMITS = {
  /** Topic and group names (API.md). */
  namePattern: /^[A-Za-z0-9_.-]{1,128}$/,
  /** A pull visits every partition of a topic when idle, so partitions bound idle pull cost. */
  maxPartitions: 64,
  defaultPartitions: 4,
  /** 1 hour .. 30 days; retention is carried out by DynamoDB TTL on segments. */
  minRetentionHours: 1,
  maxRetentionHours: 720,
  defaultRetentionHours: 72,
  /** Messages per produce request (API.md). */
  maxMessagesPerProduce: 500,
  /** One encoded message (body + key + tags + headers), as SQS's 256 KiB. */
  maxMessageBytes: 256 * 1024,
  /** A whole request body: well under Lambda's 6 MB synchronous payload limit. */
  maxRequestBytes: 1024 * 1024,
  /** A segment item stays well under DynamoDB's 400 KB item limit. */
  maxSegmentBytes: 300 * 1024,
  /** TransactWriteItems takes 100 actions: one segment put plus up to 99 producer-id records. */
  maxIdsPerSegment: 99,
  maxTags: 10,
  maxTagLength: 128,
  maxHeaders: 32,
  maxHeaderNameLength: 128,
  maxHeaderValueLength: 4096,
  maxKeyLength: 256,
  maxIdLength: 128,
  /** Producer session names (docs/sessions.md): a client-chosen id, such as a UUID. */
  sessionPattern: /^[A-Za-z0-9_.:-]{1,128}$/,
  /** Producer ids are remembered at least this long (API.md says 24 h at least). */
  dedupWindowSeconds: 24 * 3600,
  /** In-flight window per partition and group (offsets between the ack floor and the dispatch point); DDMQ uses 1024. */
  maxInFlightPerPartition: 1024,
  maxPull: 100,
  maxWaitSeconds: 20,
  /** SQS's visibility limit is 12 hours; so is ours. */
  maxVisibilitySeconds: 43200,
  defaultVisibilitySeconds: 30,
  defaultMaxDeliveries: 16,
  maxMaxDeliveries: 1000,
  maxRetryAfterSeconds: 43200,
  /** Default nack backoff: 1 s, 2 s, 4 s … capped here. */
  maxBackoffSeconds: 300,
  maxReceiptsPerCall: 100,
  /** Dead letters a single pull moves at most (each is a transactional put; TransactWriteItems caps 4 MB). */
  maxDeadLettersPerPull: 10,
  /** Dead-lettered offsets a partition's progress remembers, so late acks of them answer `stale`. */
  maxDeadMarks: 256,
  /**
   * Bytes of messages one reply carries at most: Lambda's synchronous response limit is 6 MB
   * (6,291,556 bytes) for the whole JSON; the rest is headroom for field names, receipts and escaping.
   */
  maxReplyMessageBytes: 5 * 1024 * 1024,
  deadLetterRetentionSeconds: 14 * 24 * 3600,
  maxBrowse: 1000,
  maxConsumerIdLength: 128,
  /**
   * Levels a message body may nest arrays and objects (a flat object is 1). JSON.stringify overflows the
   * stack near 4,000 levels (a 500 that retrying cannot fix), and consumers' decoders refuse far less:
   * Python's json and Jackson stop near 1,000. Real payloads stay within 100 by a wide margin.
   */
  maxNestingDepth: 100,
} as const;
