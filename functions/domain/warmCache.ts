/**
 * What a warm handler may keep between invocations: a value per key, trusted for `ttlMs` after it was
 * read. Only lookups that succeed are kept (a missing topic is asked again next time).
 */
export function warmCache<T>(ttlMs: number) {
  const entries = new Map<string, { value: T; until: number }>();
  return async (key: string, load: () => Promise<T>): Promise<T> => {
    const now = Date.now();
    const hit = entries.get(key);
    if (hit && hit.until > now) return hit.value;
    const value = await load();
    entries.set(key, { value, until: now + ttlMs });
    return value;
  };
}
