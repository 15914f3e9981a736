import type { Request, RequestHandler, Response } from 'express';
import { AikbError } from '@aikb/core';
import type { SessionVerifier, TokenClaims } from '@aikb/core/auth';
import { checkOptions } from '@aikb/core/options';

/** The fixed actor recorded for changes made with the shared admin token. */
export const ADMIN_TOKEN_ACTOR = 'admin-token';

/** Which credential opened a request, set by {@link adminGuard} and {@link requireUser} on `res.locals.credential`. */
export type Credential = 'admin-token' | 'user-token';

/**
 * The verified user of a request, set by {@link requireUser} (and by `adminGuard` for a user
 * token) on `res.locals.user`. Its `roles` are the user's current roles.
 */
export function currentUser(res: Response): TokenClaims | undefined {
  return res.locals.user as TokenClaims | undefined;
}

/**
 * Who is acting, for audit trails: the user id for a user token, `admin-token` for the shared
 * admin token, `undefined` before a guard ran.
 */
export function currentActor(res: Response): string | undefined {
  const credential = res.locals.credential as Credential | undefined;
  if (credential === 'admin-token') return ADMIN_TOKEN_ACTOR;
  if (credential === 'user-token') return currentUser(res)?.userId;
  return undefined;
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
 * user still exists, is enabled and has not changed credentials or roles since it was issued; sets
 * `res.locals.user` ({@link TokenClaims}, with the current roles). Missing, invalid or revoked →
 * 401 problem+json; user store unreachable → 503 (fails closed).
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function requireUser(options: RequireUserOptions): RequestHandler {
  checkOptions('requireUser', options).object('sessions', 'a SessionVerifier (createSessionVerifier)', true, ['verify', 'invalidate']);
  const { sessions } = options;
  return async (req, res, next) => {
    const token = bearer(req.get('authorization'));
    if (!token) {
      next(new AikbError('UNAUTHENTICATED', 'this endpoint expects the header Authorization: Bearer <token> (get a token from POST /auth/login)'));
      return;
    }
    res.locals.user = await sessions.verify(token);
    res.locals.credential = 'user-token' satisfies Credential;
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
  return (_req, res, next) => {
    const user = currentUser(res);
    if (!user) next(new AikbError('UNAUTHENTICATED', 'this endpoint expects the header Authorization: Bearer <token>'));
    else if (!user.roles.includes(role)) next(new AikbError('PERMISSION_DENIED', `this endpoint needs the ${role} role`));
    else next();
  };
}
