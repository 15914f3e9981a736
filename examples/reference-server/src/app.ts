import express, { type Express } from 'express';
import { errorHandler, healthRouter, notFound, rejectNulInUrl } from '@aikb/express';
import type { ServerContext } from './context';
import { flagAdminRoutes } from './subsystems/flags';
import { sagaAdminRoutes } from './subsystems/saga';
import { version } from './version';

/**
 * Builds the Express app: the runbook's endpoints over the shared context. Order matters:
 * request-scoped middleware first, then public routes, admin routes (guarded), user routes, and
 * the 404 and problem+json error handlers last.
 */
export function createApp(ctx: ServerContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', ctx.config.trustProxy); // TRUST_PROXY; default: no proxy, req.ip is the TCP peer

  // 1. request-scoped middleware (tracing, request logs, HTTP metrics)
  const { observability } = ctx;
  app.use(observability.middleware);
  // Compensation failures found outside a request (recovery, retries) count in the error metrics.
  ctx.sagas.reportErrorsTo(observability.errors);
  // No path parameter or query value may carry a NUL (%00) to a store: 400 naming it.
  app.use(rejectNulInUrl());

  // Reads its own body, so even an oversized one is answered at the constant-time deadline.
  app.post('/auth/login', ctx.auth.login);

  // No global body parser: each route that takes a body parses its own, by the adapter's one rule
  // (`jsonBody` in @aikb/express: JSON — or curl's form label on the admin routes —, else 415;
  // 413 over the route's limit, gzip/deflate/br decoded within it; 400 for malformed or missing
  // JSON), after the admin guard, so an unauthenticated request never has its body read or inflated.

  // 2. public routes
  // Each under its own path, not in a router of their own mounted at `/`: every request would
  // walk into that router, and each layer walked costs every request.
  app.use('/api/health/pool-stats', observability.poolStats);
  app.use('/api/health', healthRouter({ registry: ctx.infra.health, version, tracing: true }));
  app.get('/metrics', observability.metricsHandler);

  // 3. admin routes under /api/admin, all behind the admin guard
  const admin = express.Router();
  // The admin token, or a user token with the admin role (`adminGuard` in @aikb/express).
  admin.use(ctx.auth.adminGuard);
  for (const [path, router] of flagAdminRoutes(ctx)) admin.use(path, router);
  admin.use(observability.adminRoutes);
  admin.use('/users', ctx.auth.usersRouter); // parses its own body (16 KiB at most)
  admin.use(sagaAdminRoutes(ctx));
  admin.use('/documents', ctx.search.adminRoutes); // parses its own body (5 MiB at most)
  admin.use('/search/indexes', ctx.search.indexRoutes);
  app.use('/api/admin', admin);

  // 4. user routes (a user token; the caller's principal comes from it, never from the body)
  // Uploads stream their multipart body to Drive, read only after requireUser (documents/routes.ts).
  app.use('/api', express.Router().use(['/search', '/documents'], ctx.auth.requireUser).use(ctx.documents.routes).use(ctx.search.userRoutes));

  // 5. nothing matched; every error as problem+json
  app.use(notFound());
  app.use(errorHandler({ logger: ctx.logger }));
  return app;
}
