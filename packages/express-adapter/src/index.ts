/**
 * `@aikb/express`: thin Express middleware and routers over `@aikb/core`. HTTP mapping
 * (status codes, problem+json) lives here and nowhere in core.
 */

// the HTTP server
export type { ExpressServerOptions } from './server-options';
export { expressServerOptions } from './server-options';

// errors as problem+json (RFC 9457)
export type { Problem } from './problem';
export { problemFromError, sendProblem, statusForCode } from './problem';
export type { ErrorHandlerOptions } from './error-handler';
export { errorHandler, notFound } from './error-handler';

// health
export type { HealthRouterOptions } from './health';
export { healthRouter } from './health';

// feature flags: admin API
export type { JsonBodyOptions } from './json-body';
export { jsonBody } from './json-body';
export { rejectNulInUrl } from './storable-input';
export type { FeatureFlagsRouterOptions } from './feature-flags-router';
export { featureFlagsRouter, ROLLBACK_ACTOR_PREFIX } from './feature-flags-router';
export type { CacheRouterOptions } from './cache-router';
export { cacheRouter } from './cache-router';
// tracing, request logs, HTTP metrics (through an OpenTelemetry Meter)
export type { TracingOptions } from './tracing';
export { tracing } from './tracing';
export type { ChildLoggerFactory, RequestLoggingOptions } from './request-logging';
export { currentRequest, requestId, requestLogger, requestLogging } from './request-logging';
export type { HttpMetricsOptions } from './http-metrics';
export { httpMetrics, UNMATCHED_ROUTE } from './http-metrics';
export { leakHuntRouter, poolStatsRouter } from './pool-routers';
export type { LeakHuntRouterOptions } from './pool-routers';

// admin and monitoring endpoints
export { errorMetricsRouter, systemStatusRouter, tracesRouter } from './admin-routers';
// auth
export type { LoginHandlerOptions } from './login';
export { loginHandler } from './login';
export type { Credential, RequireUserOptions } from './user-auth';
export { ADMIN_TOKEN_ACTOR, currentActor, currentUser, getPrincipal, requestActor, requirePrincipal, requireRole, requireUser } from './user-auth';
export type { AdminGuardOptions } from './admin-guard';
export { adminGuard } from './admin-guard';
export type { UsersRouterOptions } from './users-router';
export { usersRouter } from './users-router';

// sagas
export type { SagaRouterOptions } from './saga-router';
export { sagaRouter } from './saga-router';
// search
export type { SearchAdminRouterOptions, SearchIndexAdminRouterOptions, SearchRouterOptions, SearchSwitch } from './search-router';
export { searchAdminRouter, searchIndexAdminRouter, searchRouter } from './search-router';
