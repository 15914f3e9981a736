/** True when `pattern` holds a glob character (`*` or `?`). */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/** A matcher for a glob where `*` matches any run of characters and `?` exactly one. */
export function globMatcher(pattern: string): (key: string) => boolean {
  if (!isGlob(pattern)) return (key) => key === pattern;
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  const regex = new RegExp(`^${source}$`, 's');
  return (key) => regex.test(key);
}
