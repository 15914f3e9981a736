/**
 * `@aikb/core`: production-safety primitives for Node.js services.
 *
 * Each primitive is also its own entry point (`@aikb/core/db`, `@aikb/core/health`, ...): import
 * from there to load only that primitive's code and drivers.
 */

// errors
export type { AikbErrorCode, AikbErrorOptions, NotFoundErrorOptions, RateLimitedErrorOptions, SimilarNamesOptions } from './errors';
export { AikbError, NotFoundError, RateLimitedError, UnavailableError, ValidationError, isAikbError, similarNames } from './errors';

// logging
export type { Logger } from './logger';
export { noopLogger } from './logger';

// db
export type { Database, DatabaseOptions, Migration, MigrateResult, Queryable, VectorSupport } from './db';
export { checkDatabase, createDatabase, ensureVectorExtension, migrate } from './db';

// health
export type { ComponentHealth, ComponentStatus, HealthCheck, HealthRegistry, HealthReport, StatusRegistry, SubsystemStatus } from './health';
export { createHealthRegistry, createStatusRegistry } from './health';

// cache
export type { CacheAge, CacheInfo, InvalidationBus, InvalidationBusState, InvalidationMessage, TtlCache, TtlCacheOptions } from './cache';
export { createInProcessInvalidationBus, createPostgresInvalidationBus, createRedisInvalidationBus, createTtlCache } from './cache';

// feature flags
export type {
  EvaluationContext,
  FeatureFlagClient,
  FeatureFlagClientOptions,
  Flag,
  FlagCacheInfo,
  FlagChange,
  FlagClientStats,
  FlagClientStatus,
  FlagDefinition,
  FlagEvaluation,
  FlagPatch,
  FlagPropagation,
  FlagReason,
  FlagStore,
  FlagTimers,
} from './flags';
export { createFeatureFlagClient, createMemoryFlagStore, createPostgresFlagStore, flagStoreMigrations, rolloutBucket } from './flags';
// pool
export type { ConnectionLeak, LatencySummary, PoolListener, PoolMonitor, PoolMonitorOptions, PoolSnapshot, PoolStats } from './pool';
export { createPoolMonitor } from './pool';

// tracing
export type { FinishedSpan, SpanQuery, SpanRecord, SpanRecorder, SpanStore, SpanStoreOptions, WithSpanOptions } from './tracing';
export { createSpanStore, currentTraceId, currentTraceparent, errorType, parseTraceparent, recordError, withSpan } from './tracing';

// metrics
export type { EndpointErrors, ErrorMetrics, ErrorMetricsOptions, ErrorReport, ErrorWindow } from './metrics';
export { createErrorMetrics } from './metrics';
// auth
export type {
  AttemptObservation,
  AuthenticatorStats,
  BeginOptions,
  ConstantTimeAuthenticator,
  ConstantTimeAuthenticatorOptions,
  Credentials,
  LoginAttempt,
  LoginRateLimiter,
  LoginRateLimiterOptions,
  LoginResult,
  PasswordHasher,
  SessionVerifier,
  SessionVerifierOptions,
  TokenClaims,
  TokenService,
  User,
  UserChange,
  UserDirectory,
  UserRecord,
  UserStore,
} from './auth';
export {
  createArgon2Hasher,
  createConstantTimeAuthenticator,
  createLoginRateLimiter,
  createMemoryUserStore,
  createPostgresUserStore,
  createScryptHasher,
  createSessionVerifier,
  createTokenService,
  createUserDirectory,
  userStoreMigrations,
} from './auth';
