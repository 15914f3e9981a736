import type { Request, RequestHandler, Response } from 'express';
import { AikbError, type Principal } from '@aikb/core';
import type { SessionVerifier, TokenClaims } from '@aikb/core/auth';
import { checkOptions } from '@aikb/core/options';
import { identityOf, setIdentity } from './internal/request-state';

/** The fixed actor recorded for changes made with the shared admin token. */
export const ADMIN_TOKEN_ACTOR = 'admin-token';

/** Which credential opened a request, recorded by {@link adminGuard} and {@link requireUser}; read with {@link currentActor}. */
export type Credential = 'admin-token' | 'user-token';

/**
 * The verified caller of a request — `{ userId, roles }` with the user's current roles — once
 * {@link requireUser} or `adminGuard` accepted a user token; `undefined` otherwise (no guard ran,
 * or the shared admin token, which is no user). The only way to read who is calling: guards keep
 * it off `req` and `res.locals`, where any middleware could write one.
 *
 * @example
 * ```ts
 * router.get('/me', requireUser({ sessions }), (req, res) => res.json(getPrincipal(req)))
 * ```
 */
export function getPrincipal(req: Request): Principal | undefined {
  const identity = identityOf(req);
  return identity?.credential === 'user-token' ? identity.session.principal : undefined;
}

/**
 * {@link getPrincipal}, for handlers that act on behalf of a user (`search({ principal:
 * requirePrincipal(req), ... })`).
 *
 * @throws {AikbError} `UNAUTHENTICATED` (a 401 problem+json) when no user token was verified for
 *   this request: mount {@link requireUser} in front
 */
export function requirePrincipal(req: Request): Principal {
  const principal = getPrincipal(req);
  if (!principal)
    throw new AikbError('UNAUTHENTICATED', 'this endpoint acts for a signed-in user: send Authorization: Bearer <token> (get a token from POST /auth/login)');
  return principal;
}

/**
 * The verified token claims of a request's user (with the current roles).
 *
 * @deprecated read the caller with {@link getPrincipal}`(req)`; this returns the claims a guard
 *   verified, no longer from `res.locals.user` (guards do not set it any more)
 */
export function currentUser(res: Response): TokenClaims | undefined {
  const identity = res.req ? identityOf(res.req) : undefined;
  return identity?.credential === 'user-token' ? identity.session : undefined;
}

/**
 * Who is acting, for audit trails: the user id for a user token, `admin-token` for the shared
 * admin token, `undefined` before a guard ran.
 */
export function currentActor(res: Response): string | undefined {
  const identity = res.req ? identityOf(res.req) : undefined;
  if (identity?.credential === 'admin-token') return ADMIN_TOKEN_ACTOR;
  return identity?.session.principal.userId;
}

/** {@link currentActor} of a request, for options such as `featureFlagsRouter({ actor: requestActor })`. */
export function requestActor(req: Request): string {
  return (req.res && currentActor(req.res)) ?? 'unknown';
}

/** The bearer credential of an `Authorization` header; `undefined` when absent, `null` when malformed. */
export function bearer(header: string | undefined): string | undefined | null {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1]! : null;
}

/** {@link requireUser} options. */
export interface RequireUserOptions {
  /** Checks each token against its user's current state (`createSessionVerifier` in `@aikb/core/auth`). */
  sessions: SessionVerifier;
}

/**
 * Requires `Authorization: Bearer <token>` with a valid user token (from the login endpoint) whose
 * user still exists, is enabled and has not changed credentials or roles since it was issued, and
 * records the caller for {@link getPrincipal} / {@link requirePrincipal} (with the current roles).
 * Missing, invalid or revoked → 401 problem+json; user store unreachable → 503 (fails closed).
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function requireUser(options: RequireUserOptions): RequestHandler {
  checkOptions('requireUser', options).object('sessions', 'a SessionVerifier (createSessionVerifier)', true, ['verify', 'invalidate']);
  const { sessions } = options;
  return async (req, res, next) => {
    const token = bearer(req.headers.authorization);
    if (!token) {
      next(new AikbError('UNAUTHENTICATED', 'this endpoint expects the header Authorization: Bearer <token> (get a token from POST /auth/login)'));
      return;
    }
    const session = await sessions.verify(token);
    setIdentity(req, { credential: 'user-token', session });
    next();
  };
}

/**
 * After {@link requireUser}: 403 problem+json unless the user has `role`.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function requireRole(role: string): RequestHandler {
  checkOptions('requireRole', { role }).string('role', true);
  return (req, _res, next) => {
    const user = getPrincipal(req);
    if (!user) next(new AikbError('UNAUTHENTICATED', 'this endpoint expects the header Authorization: Bearer <token>'));
    else if (!user.roles.includes(role)) next(new AikbError('PERMISSION_DENIED', `this endpoint needs the ${role} role`));
    else next();
  };
}
