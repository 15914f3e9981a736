import { LRUCache } from 'lru-cache';
import { systemClock } from '../clock';
import { checkOptions } from '../options';
import type { CacheKeyStats, TtlCache, TtlCacheOptions, TtlCacheStats } from './cache';
import { globMatcher } from './internal/glob';

interface MutableEntry<V> {
  key: string;
  value: V;
  storedAtMs: number;
  expiresAtMs: number;
}

/**
 * Creates a {@link TtlCache}.
 *
 * @throws {TypeError} when `ttlMs`, `maxEntries`, `clock` or `onEvict` is invalid (the message names it)
 *
 * @example
 * ```ts
 * const cache = createTtlCache<Flag>({ ttlMs: 300_000 })
 * cache.set('feature_flags:beta', flag)
 * cache.invalidate('feature_flags:*')      // ['feature_flags:beta']
 * cache.peek('feature_flags:beta')          // still there, but no longer fresh
 * ```
 */
export function createTtlCache<V>(options: TtlCacheOptions = {}): TtlCache<V> {
  const check = checkOptions('createTtlCache', options, true);
  check.number('ttlMs', { min: 0, exclusiveMin: true });
  check.number('maxEntries', { min: 1, integer: true });
  check.clock();
  check.function('onEvict');
  const ttlMs = options.ttlMs ?? 300_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const clock = options.clock ?? systemClock;
  const now = () => clock.now();
  const onEvict = options.onEvict;

  // lru-cache bounds the size and runs the TTL on the same clock; stale entries are kept (and
  // returned) so callers can fall back on them when their source is down.
  const lru = new LRUCache<string, MutableEntry<V>>({
    max: maxEntries,
    ttl: ttlMs,
    allowStale: true,
    noDeleteOnStaleGet: true,
    updateAgeOnGet: false,
    ttlAutopurge: false,
    perf: { now },
    ...(onEvict ? { dispose: (_value: MutableEntry<V>, key: string, reason: string) => void (reason === 'evict' && onEvict(key)) } : {}),
  });

  return {
    ttlMs,
    get size() {
      return lru.size;
    },
    peek(key) {
      return lru.get(key);
    },
    isFresh(entry) {
      return now() < entry.expiresAtMs;
    },
    set(key, value) {
      const storedAtMs = now();
      const entry: MutableEntry<V> = { key, value, storedAtMs, expiresAtMs: storedAtMs + ttlMs };
      lru.set(key, entry);
      return entry;
    },
    delete(key) {
      return lru.delete(key);
    },
    invalidate(pattern) {
      if (typeof pattern !== 'string' || pattern.length === 0) throw new TypeError('TtlCache.invalidate: pattern must be a non-empty string');
      const matches = globMatcher(pattern);
      const matched: string[] = [];
      const at = now();
      for (const entry of lru.values()) {
        if (!matches(entry.key)) continue;
        entry.expiresAtMs = Math.min(entry.expiresAtMs, at);
        matched.push(entry.key);
      }
      return matched;
    },
    keys() {
      return [...lru.keys()];
    },
    stats(): TtlCacheStats {
      const at = now();
      const keys: Record<string, CacheKeyStats> = {};
      let oldest: number | undefined;
      let stale = 0;
      for (const entry of lru.values()) {
        const fresh = at < entry.expiresAtMs;
        if (!fresh) stale++;
        keys[entry.key] = { ageMs: Math.max(0, at - entry.storedAtMs), stale: !fresh };
        if (oldest === undefined || entry.storedAtMs < oldest) oldest = entry.storedAtMs;
      }
      return { size: lru.size, stale, ageMs: oldest === undefined ? 0 : Math.max(0, at - oldest), ttlMs, keys };
    },
  } satisfies TtlCache<V>;
}
