import { SignJWT, jwtVerify } from 'jose';
import { systemClock, type Clock } from '../clock';
import { AikbError } from '../errors';
import { checkOptions } from '../options';
import type { User } from './auth';

/** The claims of a verified user token. */
export interface TokenClaims {
  /** The user id (`sub`). */
  readonly userId: string;
  /** The roles at issue time. Authorize with the user's current roles (`SessionVerifier`), not these. */
  readonly roles: readonly string[];
  /** The user's {@link User.tokenGeneration} when the token was issued (claim `gen`; 0 when absent). */
  readonly tokenGeneration: number;
  /** Expiry, in milliseconds since the epoch (the JWT's `exp` claim × 1000: a whole second). */
  readonly expiresAtMs: number;
}

/** An issued token. */
export interface IssuedToken {
  readonly token: string;
  /**
   * Seconds until it expires: seconds, as OAuth 2.0's `expires_in` (RFC 6749) and the JWT `exp`
   * claim (RFC 7519, whole seconds) count them.
   */
  readonly expiresInSeconds: number;
}

/**
 * Signs and verifies user tokens (HS256 JWTs carrying the user id, roles and token generation).
 * `verify` checks the signature and expiry only: to refuse the tokens of a user who has since been
 * deleted, disabled, demoted or given a new password, verify through `createSessionVerifier`.
 */
export interface TokenService {
  /** Issues a token for `user`; a missing `tokenGeneration` is taken as 0. */
  issue(user: Pick<User, 'id' | 'roles'> & { readonly tokenGeneration?: number }): Promise<IssuedToken>;
  /** @throws {AikbError} `UNAUTHENTICATED` for a token that is malformed, forged, expired or from another issuer */
  verify(token: string): Promise<TokenClaims>;
}

/** {@link createTokenService} options. */
export interface TokenServiceOptions {
  /** The HMAC secret: at least 32 bytes (a string is taken as UTF-8). */
  secret: string | Uint8Array;
  /**
   * Token lifetime, in whole seconds: JWT times (`iat`, `exp`, RFC 7519 NumericDate) have a
   * resolution of one second, so a lifetime in milliseconds would only be rounded.
   * @default 3600
   */
  expiresInSeconds?: number;
  /**
   * `iss` claim, checked on verify.
   * @default 'aikb'
   */
  issuer?: string;
  /**
   * The wall clock tokens are issued and checked against (epoch milliseconds: `iat` and `exp`
   * must mean the same thing to every instance).
   * @default systemClock
   */
  clock?: Clock;
}

/**
 * Creates a {@link TokenService} with `jose`.
 *
 * @throws {TypeError} naming the option when the secret is short or the lifetime invalid
 * @example
 * ```ts
 * const tokens = createTokenService({ secret: process.env.AUTH_JWT_SECRET! })
 * const { token } = await tokens.issue(user)
 * const claims = await tokens.verify(token)   // { userId, roles, tokenGeneration, expiresAtMs }
 * ```
 */
export function createTokenService(options: TokenServiceOptions): TokenService {
  const check = checkOptions('createTokenService', options);
  check.number('expiresInSeconds', { min: 1, integer: true });
  check.string('issuer');
  check.clock();
  const secret = typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret;
  if (!(secret instanceof Uint8Array) || secret.length < 32) throw new TypeError('createTokenService: secret must be at least 32 bytes');
  const expiresIn = options.expiresInSeconds ?? 3600;
  const issuer = options.issuer ?? 'aikb';
  const clock = options.clock ?? systemClock;
  const now = () => clock.now();
  return {
    async issue(user) {
      const issuedAt = Math.floor(now() / 1000);
      const token = await new SignJWT({ roles: [...user.roles], gen: user.tokenGeneration ?? 0 })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(user.id)
        .setIssuer(issuer)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + expiresIn)
        .sign(secret);
      return { token, expiresInSeconds: expiresIn };
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], issuer, currentDate: new Date(now()) });
        const { roles, gen = 0 } = payload;
        if (typeof payload.sub !== 'string' || !Array.isArray(roles) || !roles.every((r) => typeof r === 'string') || typeof payload.exp !== 'number') {
          throw new Error('missing claims');
        }
        if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) throw new Error('bad gen claim');
        return { userId: payload.sub, roles: roles, tokenGeneration: gen, expiresAtMs: payload.exp * 1000 };
      } catch (cause) {
        const expired = (cause as { code?: string }).code === 'ERR_JWT_EXPIRED';
        throw new AikbError('UNAUTHENTICATED', expired ? 'the token has expired; log in again' : 'the token is not valid', { cause });
      }
    },
  };
}
