/**
 * `@aikb/core/cache`: a TTL cache with exact and glob invalidation that keeps stale entries as a
 * fallback, and an `InvalidationBus` that fans invalidations out to every instance (in-process,
 * Redis pub/sub, Postgres `LISTEN/NOTIFY`).
 */
export type { CacheEntry, CacheKeyStats, InvalidationBus, InvalidationBusState, InvalidationMessage, TtlCache, TtlCacheOptions, TtlCacheStats } from './cache';
export { createTtlCache } from './create-ttl-cache';
export type { InProcessInvalidationBusOptions } from './in-process-bus';
export { createInProcessInvalidationBus } from './in-process-bus';
export type { RedisInvalidationBusOptions } from './redis-bus';
export { createRedisInvalidationBus } from './redis-bus';
export type { PostgresInvalidationBusOptions } from './postgres-bus';
export { createPostgresInvalidationBus } from './postgres-bus';
