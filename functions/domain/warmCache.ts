/**
 * What a warm handler may keep between invocations: a value per key, trusted for `ttlMs` after it was
 * read. Only lookups that succeed are kept (a missing topic is asked again next time). A caller that
 * knows the kept value is too old for it (`usable` says no: e.g. a topic that does not have a partition
 * yet, read before a growth) reads it again at once.
 */
export function warmCache<T>(ttlMs: number) {
  const entries = new Map<string, { value: T; until: number }>();
  return async (key: string, load: () => Promise<T>, usable: (value: T) => boolean = () => true): Promise<T> => {
    const now = Date.now();
    const hit = entries.get(key);
    if (hit && hit.until > now && usable(hit.value)) return hit.value;
    const value = await load();
    entries.set(key, { value, until: now + ttlMs });
    return value;
  };
}
