import { timingSafeEqual } from 'node:crypto';
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

/** The most bytes of a token compared without their time depending on the token's length. */
const SECRET_BYTES = 256;

/**
 * A constant-time test of a presented token against `secret`: the presented one is copied into a
 * zeroed buffer of a fixed size (at least {@link SECRET_BYTES}, the secret's length when longer)
 * and compared whole with the secret padded the same way, then the lengths. Nothing the time
 * depends on is secret: not the secret's bytes, nor its length up to 256 bytes (a longer one sets
 * the buffer's size, and only that can show). (Hashing both sides does the same
 * job, but SHA-256 through OpenSSL 3 costs ≈ 2.6 µs a call here, on every admin request.)
 */
function secretMatcher(secret: string): (presented: string) => boolean {
  const length = Buffer.byteLength(secret);
  const size = Math.max(SECRET_BYTES, length);
  const expected = Buffer.alloc(size);
  expected.write(secret);
  const scratch = Buffer.alloc(size);
  return (presented) => {
    scratch.fill(0);
    scratch.write(presented);
    // Both operands are evaluated: the comparison always runs over the whole buffer.
    const same = timingSafeEqual(scratch, expected);
    return Buffer.byteLength(presented) === length && same;
  };
}

const JWT = /^[\w-]+\.[\w-]+\.[\w-]*$/;

/**
 * Guards admin endpoints: `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time: not
 * even the token's length leaks) or `Bearer <user token>` whose user has the
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
  const expected = options.adminToken ? secretMatcher(options.adminToken) : undefined;
  const role = options.role ?? 'admin';
  const expects = `admin endpoints expect the header Authorization: Bearer <ADMIN_TOKEN>${sessions ? ` or Bearer <user token with the ${role} role>` : ''}`;
  // Synchronous but for a user token: a promise per admin-token request costs every one of them
  // (the router awaits what a handler returns). What it throws reaches the error handler either way.
  return (req, _res, next) => {
    const credential = bearer(req.headers.authorization);
    if (credential === undefined) throw new AikbError('UNAUTHENTICATED', expects);
    if (credential === null) throw new AikbError('UNAUTHENTICATED', `the Authorization header must be "Bearer <ADMIN_TOKEN>"; ${expects}`);
    if (expected?.(credential)) {
      setIdentity(req, { credential: 'admin-token' });
      next();
      return;
    }
    if (sessions && JWT.test(credential)) {
      return sessions.verify(credential).then((session) => {
        if (!session.principal.roles.includes(role)) throw new AikbError('PERMISSION_DENIED', `the user does not have the ${role} role`);
        setIdentity(req, { credential: 'user-token', session });
        next();
      });
    }
    if (!expected) throw new AikbError('UNAUTHENTICATED', `ADMIN_TOKEN is not configured on this server: set it to use admin endpoints; ${expects}`);
    throw new AikbError('PERMISSION_DENIED', 'the bearer token is not the admin token');
  };
}
