import type { RequestHandler } from 'express';
import type { ServerContext } from './context';

/**
 * Guards everything under `/api/admin`: `Authorization: Bearer <ADMIN_TOKEN>` (compared in
 * constant time) or `Bearer <user token>` with the admin role. See `adminGuard` in `@aikb/express`.
 */
export function createAdminGuard(ctx: Pick<ServerContext, 'auth'>): RequestHandler {
  return ctx.auth.adminGuard;
}
