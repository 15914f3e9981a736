/**
 * `@aikb/express`: thin Express middleware and routers over `@aikb/core`. HTTP mapping
 * (status codes, problem+json) lives here and nowhere in core.
 */

// errors as problem+json (RFC 9457)
export type { Problem } from './problem';
export { problemFromError, sendProblem, statusForCode } from './problem';
export type { ErrorHandlerOptions } from './error-handler';
export { errorHandler, notFound } from './error-handler';

// health
export type { HealthRouterOptions } from './health';
export { healthRouter } from './health';

// feature flags: admin API and metrics
export type { JsonBodyOptions } from './json-body';
export { jsonBody } from './json-body';
export type { FeatureFlagsRouterOptions } from './feature-flags-router';
export { featureFlagsRouter } from './feature-flags-router';
export type { CacheRouterOptions } from './cache-router';
export { cacheRouter } from './cache-router';
export type { FeatureFlagMetricsOptions } from './flag-metrics';
export { registerFeatureFlagMetrics } from './flag-metrics';
