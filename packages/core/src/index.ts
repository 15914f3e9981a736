/**
 * `@aikb/core`: production-safety primitives for Node.js services.
 *
 * Each primitive is also its own entry point (`@aikb/core/db`, `@aikb/core/health`, ...): import
 * from there to load only that primitive's code and drivers. This root exports exactly the union
 * of those entry points, plus the errors and the logger every primitive shares
 * (`test/root-exports.test.ts` keeps the two in step).
 */

// errors
export type {
  AikbErrorCode,
  AikbErrorOptions,
  NotFoundErrorOptions,
  RateLimitedErrorOptions,
  SagaCompensationErrorOptions,
  SimilarNamesOptions,
  VectorProblem,
  VectorValidationErrorOptions,
} from './errors';
export {
  AikbError,
  NotFoundError,
  RateLimitedError,
  SagaCompensationError,
  UnavailableError,
  ValidationError,
  VectorValidationError,
  isAikbError,
  similarNames,
} from './errors';

// logging
export type { Logger } from './logger';
export { noopLogger } from './logger';

// time
export type { Clock } from './clock';
export { monotonicClock, systemClock, unrefTimer } from './clock';

// callers
export type { Principal } from './principal';

// db
export type {
  CheckDatabaseOptions,
  Database,
  DatabaseCheck,
  DatabaseOptions,
  EmbeddedDatabaseOptions,
  IsolationLevel,
  Migration,
  MigrateOptions,
  MigrateResult,
  PostgresDatabaseOptions,
  Queryable,
  TransactionOptions,
  TranslatePgErrorOptions,
  VectorSupport,
} from './db';
export {
  checkDatabase,
  createDatabase,
  ensureVectorExtension,
  isPgConnectionError,
  isPgRetryableError,
  migrate,
  translatePgError,
  withTransaction,
} from './db';

// health
export type {
  ComponentHealth,
  ComponentStatus,
  HealthCheck,
  HealthRegistry,
  HealthRegistryOptions,
  HealthReport,
  MeasuredComponentHealth,
  StatusProvider,
  StatusRegistry,
  SubsystemStatus,
} from './health';
export { createHealthRegistry, createStatusRegistry } from './health';

// cache
export type {
  CacheEntry,
  CacheKeyStats,
  InProcessInvalidationBusOptions,
  InvalidationBus,
  InvalidationBusState,
  InvalidationMessage,
  PostgresInvalidationBusOptions,
  RedisInvalidationBusOptions,
  TtlCache,
  TtlCacheOptions,
  TtlCacheStats,
} from './cache';
export { createInProcessInvalidationBus, createPostgresInvalidationBus, createRedisInvalidationBus, createTtlCache } from './cache';

// feature flags
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
  MemoryFlagStoreOptions,
  PostgresFlagStoreOptions,
} from './flags';
export { FLAG_KEY_PREFIX, createFeatureFlagClient, createMemoryFlagStore, createPostgresFlagStore, flagStoreMigrations, rolloutBucket } from './flags';

// pool
export type {
  ConnectionLeak,
  LatencySummary,
  LeakHuntState,
  MonitorablePool,
  PoolListener,
  PoolMonitor,
  PoolMonitorOptions,
  PoolStats,
  PoolUsage,
} from './pool';
export { createPoolMonitor } from './pool';

// tracing
export type { FinishedSpan, SpanQuery, SpanRecord, SpanRecorder, SpanScope, SpanStore, SpanStoreOptions, SpanStoreStats, WithSpanOptions } from './tracing';
export {
  ATTR_CONNECTIONS_USED,
  ATTR_LONGEST_HOLD_MS,
  createSpanStore,
  currentSpan,
  currentSpanContext,
  currentTraceId,
  currentTraceparent,
  errorType,
  formatTraceparent,
  generateSpanId,
  generateTraceId,
  isValidSpanId,
  isValidTraceId,
  parseTraceparent,
  recordError,
  scopeValue,
  startSpanScope,
  withSpan,
} from './tracing';

// metrics
export type { EndpointErrors, ErrorMetrics, ErrorMetricsOptions, ErrorReport, ErrorTypeCount, ErrorWindow, OutcomeError, RequestOutcome } from './metrics';
export { createErrorMetrics } from './metrics';

// auth
export type {
  AddUserInput,
  Argon2HasherOptions,
  AttemptObservation,
  AttemptOutcome,
  AuthenticatorStats,
  BeginOptions,
  ConstantTimeAuthenticator,
  ConstantTimeAuthenticatorOptions,
  Credentials,
  IssuedToken,
  LoginAttempt,
  LoginRateLimiter,
  LoginRateLimiterOptions,
  LoginResult,
  MemoryUserStoreOptions,
  NewUser,
  PasswordHasher,
  PostgresUserStoreOptions,
  ScryptHasherOptions,
  SessionVerifier,
  SessionVerifierOptions,
  SessionVerifierStats,
  TokenClaims,
  TokenService,
  TokenServiceOptions,
  UpdateUserInput,
  User,
  UserChange,
  UserChangeOptions,
  UserDirectory,
  UserDirectoryOptions,
  UserPatch,
  UserRecord,
  UserStore,
  VerifiedSession,
} from './auth';
export {
  MAX_PASSWORD_LENGTH,
  MAX_POLICY_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  USER_KEY_PREFIX,
  createArgon2Hasher,
  createConstantTimeAuthenticator,
  createLoginRateLimiter,
  createMemoryUserStore,
  createPostgresUserStore,
  createScryptHasher,
  createSessionVerifier,
  createTokenService,
  createUserDirectory,
  isUserId,
  userInvalidationKey,
  userStoreMigrations,
} from './auth';

// sagas
export type {
  FinishStep,
  JsonValue,
  NewSaga,
  PostgresSagaLogOptions,
  SagaCompensationContext,
  SagaDefinition,
  SagaDefinitionOptions,
  SagaErrorInfo,
  SagaLease,
  SagaListQuery,
  SagaLog,
  SagaOutcome,
  SagaPage,
  SagaPhase,
  SagaRecord,
  SagaRecoveryPolicy,
  SagaRecoveryResult,
  SagaRetryPolicy,
  SagaRunner,
  SagaRunnerOptions,
  SagaRunnerStats,
  SagaRunOptions,
  SagaState,
  SagaStepContext,
  SagaStepDefinition,
  SagaStepOptions,
  SagaStepRecord,
  SagaStepStatus,
  SagaSummary,
  SagaTransition,
  StartStep,
  StepStarted,
} from './saga';
export { SAGA_STATES, createMemorySagaLog, createPostgresSagaLog, createSagaRunner, defineSaga, sagaLogMigrations } from './saga';
// search
export type {
  AclEntry,
  ChunkOptions,
  DocumentInput,
  DocumentPage,
  DocumentSummary,
  Embedder,
  HashingEmbedderOptions,
  IndexResult,
  OpenAiEmbedderOptions,
  PostgresSearchStoreOptions,
  PrincipalIndex,
  SearchFiltering,
  SearchLeg,
  SearchMode,
  SearchRequest,
  SearchResponse,
  SearchResult,
  SearchStats,
  SearchStore,
  SearchStrategy,
  TunePrincipalIndexesOptions,
  TunePrincipalIndexesResult,
} from './search';
export {
  MAX_VECTOR_ELEMENT,
  PUBLIC_PRINCIPAL,
  chunkText,
  createHashingEmbedder,
  createOpenAiEmbedder,
  createPostgresSearchStore,
  searchStoreMigrations,
  validateVector,
} from './search';

// drive
export type {
  DriveBody,
  DriveEntry,
  DriveListOptions,
  DriveObject,
  DrivePage,
  DrivePutOptions,
  DrivePutResult,
  DriveStats,
  DriveStore,
  FsDriveStoreOptions,
  MemoryDriveStoreOptions,
} from './drive';
export { MAX_DRIVE_KEY_LENGTH, MAX_DRIVE_KEY_SEGMENT_LENGTH, MAX_DRIVE_LIST_LIMIT, createFsDriveStore, createMemoryDriveStore } from './drive';
