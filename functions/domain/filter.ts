/** Tag filters with QMQ semantics: a message without tags never matches a tag filter. */
export interface TagFilter {
  readonly any?: readonly string[];
  readonly all?: readonly string[];
}

export interface GroupFilter {
  readonly tags?: TagFilter;
}

export function matchesFilter(filter: GroupFilter | undefined, tags: readonly string[] | undefined): boolean {
  const tagFilter = filter?.tags;
  if (!tagFilter) return true;
  if (!tags || tags.length === 0) return false;
  if (tagFilter.any && !tagFilter.any.some((t) => tags.includes(t))) return false;
  if (tagFilter.all && !tagFilter.all.every((t) => tags.includes(t))) return false;
  return true;
}
