import { hash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AikbError } from '@aikb/core';
import type { SessionVerifier } from '@aikb/core/auth';
import { setIdentity } from './internal/request-state';
import { bearer } from './user-auth';
import { checkOptions } from '@aikb/core/options';

/** {@link adminGuard} options. */
export interface AdminGuardOptions {
  /** The shared admin token; unset: only user tokens with the role open admin endpoints. */
  adminToken?: string;
  /**
   * Verifies user tokens against their user's current state (`createSessionVerifier`), so the
   * token of a user since deleted, disabled, demoted or given a new password opens nothing; unset:
   * only the admin token opens admin endpoints.
   */
  sessions?: SessionVerifier;
  /**
   * The role a user token needs.
   * @default 'admin'
   */
  role?: string;
}

// One-shot `crypto.hash` (Node.js ≥ 20.12): the guard runs on every admin request, and a Hash
// object per call costs more than the hashing itself.
const digest = (value: string): Buffer => hash('sha256', value, 'buffer');
const JWT = /^[\w-]+\.[\w-]+\.[\w-]*$/;

/**
 * Guards admin endpoints: `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time, both
 * sides hashed first so not even the length leaks) or `Bearer <user token>` whose user has the
 * admin role **now** (checked by the session verifier, not read from the token). 401 problem+json
 * for a missing, malformed, invalid or revoked credential, 403 for a valid one that is not
 * allowed, 503 when the user store cannot be reached to check a user token (fails closed); the
 * detail names the header it expects.
 *
 * Records which credential was used (`admin-token`, or `user-token` with its caller): read the
 * caller with `getPrincipal(req)` (`undefined` for the admin token, which is no user) and who
 * acted with `currentActor(res)` / `requestActor(req)` for audit trails.
 *
 * @throws {TypeError} when `sessions` is given but is not a session verifier
 */
export function adminGuard(options: AdminGuardOptions): RequestHandler {
  const check = checkOptions('adminGuard', options);
  check.object('sessions', 'a SessionVerifier (createSessionVerifier), not a bare TokenService', false, ['verify', 'invalidate']);
  check.string('adminToken', false, true);
  check.string('role');
  const { sessions } = options;
  const expected = options.adminToken ? digest(options.adminToken) : undefined;
  const role = options.role ?? 'admin';
  const expects = `admin endpoints expect the header Authorization: Bearer <ADMIN_TOKEN>${sessions ? ` or Bearer <user token with the ${role} role>` : ''}`;
  return async (req, _res, next) => {
    const credential = bearer(req.get('authorization'));
    if (credential === undefined) throw new AikbError('UNAUTHENTICATED', expects);
    if (credential === null) throw new AikbError('UNAUTHENTICATED', `the Authorization header must be "Bearer <ADMIN_TOKEN>"; ${expects}`);
    if (expected && timingSafeEqual(digest(credential), expected)) {
      setIdentity(req, { credential: 'admin-token' });
      next();
      return;
    }
    if (sessions && JWT.test(credential)) {
      const session = await sessions.verify(credential);
      if (!session.principal.roles.includes(role)) throw new AikbError('PERMISSION_DENIED', `the user does not have the ${role} role`);
      setIdentity(req, { credential: 'user-token', session });
      next();
      return;
    }
    if (!expected) throw new AikbError('UNAUTHENTICATED', `ADMIN_TOKEN is not configured on this server: set it to use admin endpoints; ${expects}`);
    throw new AikbError('PERMISSION_DENIED', 'the bearer token is not the admin token');
  };
}
