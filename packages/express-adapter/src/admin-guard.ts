import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AikbError } from '@aikb/core';
import type { TokenService } from '@aikb/core/auth';
import { bearer } from './user-auth';

/** {@link adminGuard} options. */
export interface AdminGuardOptions {
  /** The shared admin token; unset: only user tokens with the role open admin endpoints. */
  adminToken?: string;
  /** Verifies user tokens; unset: only the admin token does. */
  tokens?: TokenService;
  /**
   * The role a user token needs.
   * @default 'admin'
   */
  role?: string;
}

const digest = (value: string) => createHash('sha256').update(value).digest();
const JWT = /^[\w-]+\.[\w-]+\.[\w-]*$/;

/**
 * Guards admin endpoints: `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time, both
 * sides hashed first so not even the length leaks) or `Bearer <user token>` whose user has the
 * admin role. 401 problem+json for a missing, malformed or invalid credential, 403 for a valid
 * one that is not allowed; the detail names the header it expects.
 */
export function adminGuard(options: AdminGuardOptions): RequestHandler {
  const expected = options.adminToken ? digest(options.adminToken) : undefined;
  const role = options.role ?? 'admin';
  const expects = `admin endpoints expect the header Authorization: Bearer <ADMIN_TOKEN>${options.tokens ? ` or Bearer <user token with the ${role} role>` : ''}`;
  return async (req, res, next) => {
    const credential = bearer(req.get('authorization'));
    if (credential === undefined) throw new AikbError('UNAUTHENTICATED', expects);
    if (credential === null) throw new AikbError('UNAUTHENTICATED', `the Authorization header must be "Bearer <ADMIN_TOKEN>"; ${expects}`);
    if (expected && timingSafeEqual(digest(credential), expected)) {
      next();
      return;
    }
    if (options.tokens && JWT.test(credential)) {
      const claims = await options.tokens.verify(credential);
      if (!claims.roles.includes(role)) throw new AikbError('PERMISSION_DENIED', `the user token does not carry the ${role} role`);
      res.locals.user = claims;
      next();
      return;
    }
    if (!expected) throw new AikbError('UNAUTHENTICATED', `ADMIN_TOKEN is not configured on this server: set it to use admin endpoints; ${expects}`);
    throw new AikbError('PERMISSION_DENIED', 'the bearer token is not the admin token');
  };
}
