/**
 * `@aikb/core/flags`: feature flags served from memory with no I/O on the hot path, kept in step
 * across instances through an `InvalidationBus`, stored in Postgres (or memory) with an audit
 * trail, and rolled out by Unleash-compatible murmur3 buckets.
 */
export type {
  EvaluationContext,
  FeatureFlagClient,
  FeatureFlagClientOptions,
  Flag,
  FlagCacheEntryStats,
  FlagChange,
  FlagClientStats,
  FlagDefinition,
  FlagEvaluation,
  FlagPatch,
  FlagPropagation,
  FlagReason,
  FlagState,
  FlagStore,
} from './flags';
export { createFeatureFlagClient, FLAG_KEY_PREFIX } from './create-feature-flag-client';
export { rolloutBucket } from './bucket';
export type { MemoryFlagStoreOptions } from './memory-flag-store';
export { createMemoryFlagStore } from './memory-flag-store';
export type { PostgresFlagStoreOptions } from './postgres-flag-store';
export { createPostgresFlagStore, flagStoreMigrations } from './postgres-flag-store';
