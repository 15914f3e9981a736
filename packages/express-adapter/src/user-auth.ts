import type { RequestHandler, Response } from 'express';
import { AikbError } from '@aikb/core';
import type { TokenClaims, TokenService } from '@aikb/core/auth';

/** The verified user of a request, set by {@link requireUser} on `res.locals.user`. */
export function currentUser(res: Response): TokenClaims | undefined {
  return res.locals.user as TokenClaims | undefined;
}

/** The bearer credential of an `Authorization` header; `undefined` when absent, `null` when malformed. */
export function bearer(header: string | undefined): string | undefined | null {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1]! : null;
}

/**
 * Requires `Authorization: Bearer <token>` with a valid user token (from the login endpoint);
 * sets `res.locals.user` ({@link TokenClaims}). Missing or invalid → 401 problem+json.
 */
export function requireUser(options: { tokens: TokenService }): RequestHandler {
  return async (req, res, next) => {
    const token = bearer(req.get('authorization'));
    if (!token) {
      next(new AikbError('UNAUTHENTICATED', 'this endpoint expects the header Authorization: Bearer <token> (get a token from POST /auth/login)'));
      return;
    }
    res.locals.user = await options.tokens.verify(token);
    next();
  };
}

/** After {@link requireUser}: 403 problem+json unless the user has `role`. */
export function requireRole(role: string): RequestHandler {
  return (_req, res, next) => {
    const user = currentUser(res);
    if (!user) next(new AikbError('UNAUTHENTICATED', 'this endpoint expects the header Authorization: Bearer <token>'));
    else if (!user.roles.includes(role)) next(new AikbError('PERMISSION_DENIED', `this endpoint needs the ${role} role`));
    else next();
  };
}
