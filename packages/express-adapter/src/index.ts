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

// auth
export type { LoginHandlerOptions } from './login';
export { loginHandler } from './login';
export { currentUser, requireRole, requireUser } from './user-auth';
export type { AdminGuardOptions } from './admin-guard';
export { adminGuard } from './admin-guard';
export { usersRouter } from './users-router';
