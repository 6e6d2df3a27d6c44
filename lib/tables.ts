/**
 * The DynamoDB tables of Sluice, declared once. The CDK stack builds them from this list and the
 * local runtime creates them on the emulator from the same list, so key schemas cannot drift.
 * `envVar` is how the table name reaches the Lambda code (functions/config.ts reads it).
 */
export type KeyType = 'S' | 'N';

export interface TableSpec {
  /** Logical id in the stack and suffix of the local table name. */
  readonly id: string;
  readonly envVar: string;
  readonly partitionKey: { readonly name: string; readonly type: KeyType };
  readonly sortKey?: { readonly name: string; readonly type: KeyType };
  /** Attribute holding an epoch-seconds expiry for DynamoDB TTL. */
  readonly ttlAttribute?: string;
  /** Whether a DynamoDB stream is enabled (push delivery reads the log's stream). */
  readonly stream?: 'NEW_IMAGE';
  /** Global secondary indexes (all attributes projected unless `keysOnly`). */
  readonly indexes?: readonly IndexSpec[];
  readonly purpose: string;
}

export interface IndexSpec {
  readonly name: string;
  readonly partitionKey: { readonly name: string; readonly type: KeyType };
  readonly sortKey?: { readonly name: string; readonly type: KeyType };
  readonly keysOnly?: boolean;
}

export const TABLES = [
  {
    id: 'Catalog',
    envVar: 'CATALOG_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    purpose: 'Topics (sk "topic") and consumer group settings (sk "group#<name>"), keyed by topic name.',
  },
  {
    id: 'Log',
    envVar: 'LOG_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'N' },
    // TTL deletes segments (free) a day after their retention; the retention pass keeps each partition's newest (docs/retention.md).
    ttlAttribute: 'exp',
    stream: 'NEW_IMAGE',
    purpose: 'Partition logs: one item per segment, pk "<topic>@<epoch>#<partition>", sk = base offset.',
  },
  {
    id: 'GroupState',
    envVar: 'GROUP_STATE_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    ttlAttribute: 'exp',
    purpose: 'Per-partition group progress, broadcast cursors and dead letters, pk "<topic>@<epoch>/<group>".',
  },
  {
    id: 'Dedup',
    envVar: 'DEDUP_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    ttlAttribute: 'exp',
    purpose: 'Producer-supplied message ids -> (partition, offset), for de-duplication and lookup.',
  },
  {
    id: 'Delays',
    envVar: 'DELAY_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    ttlAttribute: 'exp',
    indexes: [
      // Pending messages of a topic in due order (GET /v1/topics/{t}/delayed).
      { name: 'byTopic', partitionKey: { name: 'tk', type: 'S' }, sortKey: { name: 'ds', type: 'S' } },
      // Pending messages by due minute: "b#<minute>" waiting for the sweep, "q#<minute>" handed to the delay queue.
      { name: 'byBucket', partitionKey: { name: 'bk', type: 'S' }, sortKey: { name: 'ds', type: 'S' } },
    ],
    purpose: 'Pending delayed messages, pk "<topic>@<epoch>#<id>", and the delay sweep cursor (pk "sweep#cursor").',
  },
  {
    id: 'Transactions',
    envVar: 'TRANSACTIONS_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    ttlAttribute: 'exp',
    purpose: 'Transactions, pk = transaction id: state, prepared messages (until the decision), checks, decision and commit results.',
  },
  {
    id: 'Sessions',
    envVar: 'SESSIONS_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'N' },
    ttlAttribute: 'exp',
    purpose: 'Producer sessions, pk "<topic>@<epoch>#<session>": the head (sk -1: next sequence, version) and one record per request (sk = its first sequence: where its messages landed).',
  },
  {
    id: 'Secrets',
    envVar: 'SECRETS_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    purpose: 'Push signing secrets by group, pk "<topic>@<epoch>/<group>", and the transaction check-back secret (pk "#transactions/check-back"): only the functions that sign or hand them out may read them.',
  },
  {
    id: 'ApiKeys',
    envVar: 'API_KEYS_TABLE',
    partitionKey: { name: 'pk', type: 'S' },
    purpose: 'API keys, by SHA-256 hash of the key (the key itself is never stored); used when the stack is deployed with auth=apiKey.',
  },
] as const satisfies readonly TableSpec[];

export type TableId = (typeof TABLES)[number]['id'];
