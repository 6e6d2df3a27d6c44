import { createHash, randomBytes } from 'node:crypto';

/**
 * API keys for deployments that use them instead of IAM (SigV4). Only a SHA-256 hash of a key is stored;
 * the key is shown once, when it is created. A key is 32 random bytes, so a plain hash (no salt) is
 * enough: there is nothing to guess from a dictionary.
 */
export interface ApiKeyRecord {
  readonly keyHash: string;
  /** Short public id to name the key in lists and revocations: the first 12 hex digits of its hash. */
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly revokedAt?: number;
}

export interface ApiKeyStore {
  get(keyHash: string): Promise<ApiKeyRecord | undefined>;
  put(record: ApiKeyRecord): Promise<void>;
  list(): Promise<ApiKeyRecord[]>;
  markRevoked(keyHash: string, at: number): Promise<void>;
}

const KEY_PREFIX = 'slk_';

export const hashApiKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

export async function createApiKey(store: ApiKeyStore, name: string, now = Date.now()): Promise<{ key: string; record: ApiKeyRecord }> {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const keyHash = hashApiKey(key);
  const record: ApiKeyRecord = { keyHash, id: keyHash.slice(0, 12), name, createdAt: now };
  await store.put(record);
  return { key, record };
}

/** The key's record if the key is known and not revoked. */
export async function verifyApiKey(store: ApiKeyStore, key: string | undefined): Promise<ApiKeyRecord | undefined> {
  if (!key || !key.startsWith(KEY_PREFIX) || key.length > 100) return undefined;
  const record = await store.get(hashApiKey(key));
  return record && record.revokedAt === undefined ? record : undefined;
}

export async function revokeApiKey(store: ApiKeyStore, id: string, now = Date.now()): Promise<ApiKeyRecord | undefined> {
  const record = (await store.list()).find((r) => r.id === id);
  if (!record) return undefined;
  await store.markRevoked(record.keyHash, now);
  return { ...record, revokedAt: now };
}
