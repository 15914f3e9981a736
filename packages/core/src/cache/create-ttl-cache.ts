import { LRUCache } from 'lru-cache';
import type { CacheAge, CacheInfo, TtlCache, TtlCacheOptions } from './cache';
import { globMatcher } from './internal/glob';

interface MutableEntry<V> {
  key: string;
  value: V;
  storedAt: number;
  expiresAt: number;
}

/**
 * Creates a {@link TtlCache}.
 *
 * @throws {TypeError} when `ttlSeconds`, `maxEntries` or `clock` is invalid (the message names it)
 *
 * @example
 * ```ts
 * const cache = createTtlCache<Flag>({ ttlSeconds: 300 })
 * cache.set('feature_flags:beta', flag)
 * cache.invalidate('feature_flags:*')      // ['feature_flags:beta']
 * cache.peek('feature_flags:beta')          // still there, but no longer fresh
 * ```
 */
export function createTtlCache<V>(options: TtlCacheOptions = {}): TtlCache<V> {
  const ttlSeconds = options.ttlSeconds ?? 300;
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new TypeError(`createTtlCache: ttlSeconds must be a positive number (got ${String(ttlSeconds)})`);
  }
  const maxEntries = options.maxEntries ?? 10_000;
  if (typeof maxEntries !== 'number' || !Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new TypeError(`createTtlCache: maxEntries must be a positive integer (got ${String(maxEntries)})`);
  }
  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw new TypeError('createTtlCache: clock must be a function returning milliseconds');
  const onEvict = options.onEvict;
  if (onEvict !== undefined && typeof onEvict !== 'function') throw new TypeError('createTtlCache: onEvict must be a function');
  const ttlMs = ttlSeconds * 1000;

  // lru-cache bounds the size and runs the TTL on the same clock; stale entries are kept (and
  // returned) so callers can fall back on them when their source is down.
  const lru = new LRUCache<string, MutableEntry<V>>({
    max: maxEntries,
    ttl: ttlMs,
    allowStale: true,
    noDeleteOnStaleGet: true,
    updateAgeOnGet: false,
    ttlAutopurge: false,
    perf: { now: clock },
    ...(onEvict ? { dispose: (_value: MutableEntry<V>, key: string, reason: string) => void (reason === 'evict' && onEvict(key)) } : {}),
  });

  const age = (entry: MutableEntry<V>, now: number): CacheAge => ({
    secondsSinceUpdate: Math.max(0, Math.floor((now - entry.storedAt) / 1000)),
    ttl: ttlSeconds,
  });

  return {
    ttlSeconds,
    get size() {
      return lru.size;
    },
    peek(key) {
      return lru.get(key);
    },
    isFresh(entry) {
      return clock() < entry.expiresAt;
    },
    set(key, value) {
      const storedAt = clock();
      const entry: MutableEntry<V> = { key, value, storedAt, expiresAt: storedAt + ttlMs };
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
      const now = clock();
      for (const entry of lru.values()) {
        if (!matches(entry.key)) continue;
        entry.expiresAt = Math.min(entry.expiresAt, now);
        matched.push(entry.key);
      }
      return matched;
    },
    keys() {
      return [...lru.keys()];
    },
    info(): CacheInfo {
      const now = clock();
      const keys: Record<string, CacheAge & { stale: boolean }> = {};
      let oldest: number | undefined;
      let stale = 0;
      for (const entry of lru.values()) {
        const fresh = now < entry.expiresAt;
        if (!fresh) stale++;
        keys[entry.key] = { ...age(entry, now), stale: !fresh };
        if (oldest === undefined || entry.storedAt < oldest) oldest = entry.storedAt;
      }
      return {
        secondsSinceUpdate: oldest === undefined ? 0 : Math.max(0, Math.floor((now - oldest) / 1000)),
        ttl: ttlSeconds,
        size: lru.size,
        stale,
        keys,
      };
    },
  } satisfies TtlCache<V>;
}


