import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AikbError } from '@aikb/core';
import type { ServerContext } from './context';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Guards everything under `/api/admin`: `Authorization: Bearer <ADMIN_TOKEN>`, compared in
 * constant time (both sides hashed first, so not even the length leaks).
 */
export function createAdminGuard(ctx: Pick<ServerContext, 'config'>): RequestHandler {
  const expected = ctx.config.adminToken === undefined ? undefined : digest(ctx.config.adminToken);
  return (req, _res, next) => {
    const header = req.get('authorization');
    if (!header) {
      next(new AikbError('UNAUTHENTICATED', 'admin endpoints expect the header Authorization: Bearer <ADMIN_TOKEN>'));
      return;
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      next(new AikbError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <ADMIN_TOKEN>"'));
      return;
    }
    if (!expected) {
      next(new AikbError('UNAUTHENTICATED', 'ADMIN_TOKEN is not configured on this server: set it to use admin endpoints'));
      return;
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      next(new AikbError('PERMISSION_DENIED', 'the bearer token is not the admin token'));
      return;
    }
    next();
  };
}
