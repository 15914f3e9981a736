/**
 * A cached value with when it was stored. Entries are kept after they expire or are invalidated,
 * so a caller can still serve the last known value when its source is down (stale-if-error).
 */
import type { Clock } from '../clock';

export interface CacheEntry<V> {
  readonly key: string;
  readonly value: V;
  /** When the value was stored: a reading of the cache's clock, in milliseconds. */
  readonly storedAtMs: number;
  /** When the value stops being fresh: `storedAtMs + ttlMs`, or earlier once invalidated. */
  readonly expiresAtMs: number;
}

/** One key of {@link TtlCacheStats}. */
export interface CacheKeyStats {
  /** Milliseconds since the value was stored. */
  readonly ageMs: number;
  /** Expired or invalidated, kept as a fallback. */
  readonly stale: boolean;
}

/** {@link TtlCache.stats}: the cache as a whole and per key, as plain JSON. */
export interface TtlCacheStats {
  readonly size: number;
  /** Entries that are expired or invalidated but kept as a fallback. */
  readonly stale: number;
  /** Milliseconds since the oldest entry was stored; `0` when the cache is empty. */
  readonly ageMs: number;
  /** The time to live, in milliseconds. */
  readonly ttlMs: number;
  readonly keys: Readonly<Record<string, CacheKeyStats>>;
}

/** {@link createTtlCache} options. */
export interface TtlCacheOptions {
  /**
   * How long a stored value stays fresh, in milliseconds.
   * @default 300000 (5 minutes)
   */
  ttlMs?: number;
  /**
   * Most entries kept; the least recently used go first.
   * @default 10000
   */
  maxEntries?: number;
  /**
   * The time source (only its `now` is read; the cache sets no timers). Inject a fake one to test
   * expiry without waiting.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Called with the key of every entry evicted to stay within `maxEntries`.
   * @default undefined
   */
  onEvict?: (key: string) => void;
}

/**
 * A bounded cache (lru-cache underneath) whose entries are fresh for a TTL and then kept as stale
 * fallbacks until evicted. Keys can be invalidated exactly or by glob (`feature_flags:*`): an
 * invalidated entry is no longer fresh but is still returned by {@link TtlCache.peek}.
 *
 * The read path does no I/O and allocates nothing.
 */
export interface TtlCache<V> {
  /** The entry under `key`, fresh or not; `undefined` when there is none. */
  peek(key: string): CacheEntry<V> | undefined;
  /** True when `entry` is neither expired nor invalidated now. */
  isFresh(entry: CacheEntry<V>): boolean;
  /** Stores `value` under `key`, fresh for the TTL. */
  set(key: string, value: V): CacheEntry<V>;
  /** Removes `key` entirely (no stale fallback). */
  delete(key: string): boolean;
  /**
   * Marks every key matching `pattern` (an exact key, or a glob where `*` matches any run of
   * characters and `?` one character) as no longer fresh.
   * @returns the keys it matched
   */
  invalidate(pattern: string): string[];
  /** Every key, most recently used first. */
  keys(): string[];
  /** The age of every entry and of the cache as a whole, now. */
  stats(): TtlCacheStats;
  /** The time to live, in milliseconds. */
  readonly ttlMs: number;
  readonly size: number;
}

/**
 * One invalidation, as published on an {@link InvalidationBus}. `version` orders messages about
 * the same key: a receiver applies a message only when it is newer than what it holds.
 */
export interface InvalidationMessage {
  /** An exact key (`feature_flags:priority_3_X`) or a glob (`feature_flags:priority_2_*`). */
  readonly key: string;
  /** The version of the change that caused it; `0` for an explicit invalidation (refresh unconditionally). */
  readonly version: number;
  /** The new value, when the publisher has it and it is small: receivers can skip a round trip to the store. */
  readonly value?: unknown;
  /** An id of the publishing instance. */
  readonly origin?: string;
}

/** Whether a bus is delivering messages now. */
export type InvalidationBusState = 'connected' | 'disconnected' | 'closed';

/**
 * Fans invalidations out to every instance. Implementations: in-process
 * ({@link createInProcessInvalidationBus}), Redis pub/sub and Postgres `LISTEN/NOTIFY`.
 *
 * Delivery is best effort: while a bus is `disconnected` messages may be lost, so a subscriber
 * must treat a return to `connected` as "I may have missed messages" and resynchronise.
 * A bus never throws into a subscriber, and `publish` rejects only with an `UnavailableError`.
 */
export interface InvalidationBus {
  /** Sends `message` to every subscriber, on every instance (this one included). */
  publish(message: InvalidationMessage): Promise<void>;
  /**
   * Calls `handler` for every message received.
   * @returns a function that unsubscribes
   */
  subscribe(handler: (message: InvalidationMessage) => void): () => void;
  /**
   * Calls `listener` on every change of {@link InvalidationBus.state}.
   * @returns a function that removes it
   */
  onStateChange(listener: (state: InvalidationBusState) => void): () => void;
  /** `connected` when messages are being delivered now. */
  readonly state: InvalidationBusState;
  /** Which implementation this is (`in-process`, `redis`, `postgres`), for status pages. */
  readonly kind: string;
  /** Stops delivering and releases connections the bus opened (never the caller's own). */
  close(): Promise<void>;
}
