import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { RequestHandler, Response } from 'express';
import { AikbError, RateLimitedError, ValidationError, isAikbError } from '@aikb/core';
import type { ConstantTimeAuthenticator, TokenService } from '@aikb/core/auth';
import { setLoggedElsewhere } from './internal/request-state';
import { readJsonBody, type JsonBodyRule } from './json-body';
import { isUnstorable, unstorableError } from './storable-input';
import { checkOptions } from '@aikb/core/options';

/** {@link loginHandler} options. */
export interface LoginHandlerOptions {
  authenticator: ConstantTimeAuthenticator;
  tokens: TokenService;
  /**
   * Largest body kept, in bytes (as received and once decoded); a larger one is answered 413 at
   * the deadline.
   * @default 65536
   */
  maxBodyBytes?: number;
  /**
   * Largest body read at all before answering, in bytes (then the connection is closed).
   * @default 16777216
   */
  drainBodyBytes?: number;
  /**
   * The attempt's deadline counts from the request's arrival, so a busy event loop that reads the
   * body late does not push the answer out of the window. A body that takes longer than this to
   * arrive, in milliseconds, restarts the clock when it ends instead: a slow upload is the
   * client's own time (it reveals nothing), and the attempt keeps its full time for the work.
   * Must be below the authenticator's floor.
   * @default 100, or a fifth of the authenticator's floor when that is less
   */
  slowBodyMs?: number;
}

function credentialsFrom(value: unknown): { email: string; password: string } {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new ValidationError('body', 'expected a JSON object { "email": ..., "password": ... }');
  const { email, password } = value as Record<string, unknown>;
  if (email === undefined) throw new ValidationError('email', 'email is required');
  if (typeof email !== 'string') throw new ValidationError('email', 'email must be a string');
  if (isUnstorable(email)) throw unstorableError('email');
  if (password === undefined) throw new ValidationError('password', 'password is required');
  if (typeof password !== 'string') throw new ValidationError('password', 'password must be a string');
  return { email, password };
}

function setRateLimitHeaders(res: Response, error: RateLimitedError): void {
  const { limit, remaining, resetSeconds } = error;
  if (limit !== undefined) res.setHeader('RateLimit-Limit', String(limit));
  if (remaining !== undefined) res.setHeader('RateLimit-Remaining', String(remaining));
  if (resetSeconds !== undefined) res.setHeader('RateLimit-Reset', String(resetSeconds));
}

/**
 * `POST` `{ email, password }` → 200 `{ token, expiresIn }`, or a problem+json: 400 (bad body),
 * 401 (one identical body for an unknown email and a wrong password), 429 (rate limited, with
 * `Retry-After` and `RateLimit-*`), 503 (busy: `Retry-After`; or the store is down).
 *
 * The handler reads the body itself, by the package's one body rule (see `jsonBody`: JSON only —
 * here without the form-urlencoded allowance —, 415 for another `Content-Type`, gzip/deflate/br
 * decoded within `maxBodyBytes`, 413 over it, 400 for malformed or missing JSON), and begins the
 * attempt once it has been read — before parsing or validation, its clock counting from the
 * request's arrival (see {@link LoginHandlerOptions.slowBodyMs}) — so every answer, 400s, 413s
 * and 415s included, comes at the attempt's deadline. No `express.json()` is needed; behind one,
 * its `req.body` is used, but that parser's own refusals (its limit, its JSON errors) are then
 * answered by it, not at the deadline: mount the login route before any global body parser.
 *
 * A busy refusal (503 `resource-exhausted`) is answered by the handler itself and its request-log
 * line is written at `debug`: the authenticator logs refusals as one WARN line a second at most.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function loginHandler(options: LoginHandlerOptions): RequestHandler {
  const check = checkOptions('loginHandler', options);
  check.object('authenticator', 'a ConstantTimeAuthenticator', true, ['begin']);
  check.object('tokens', 'a TokenService', true, ['issue']);
  check.number('maxBodyBytes', { min: 1, integer: true });
  check.number('drainBodyBytes', { min: 1, integer: true });
  const { authenticator, tokens } = options;
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const drainBodyBytes = options.drainBodyBytes ?? 16 * 1024 * 1024;
  const slowBodyMs = options.slowBodyMs ?? Math.min(100, authenticator.floorMs / 5);
  if (typeof slowBodyMs !== 'number' || !Number.isFinite(slowBodyMs) || slowBodyMs < 0 || slowBodyMs >= authenticator.floorMs) {
    throw new TypeError(`loginHandler: slowBodyMs must be a number of milliseconds from 0 to below the authenticator's floor (got ${String(slowBodyMs)})`);
  }
  const rule: JsonBodyRule = { limit: maxBodyBytes, drainLimit: drainBodyBytes, required: true, allowFormUrlencoded: false };
  return async (req, res, next) => {
    const arrived = performance.now();
    const body = await readJsonBody(req, rule);
    const reading = performance.now() - arrived;
    const attempt = authenticator.begin({ elapsedMs: reading > slowBodyMs ? 0 : reading });
    res.setHeader('Cache-Control', 'no-store');
    try {
      if (!body.ok) {
        if (!body.drained) res.setHeader('Connection', 'close');
        return await attempt.reject(body.error);
      }
      let credentials: { email: string; password: string };
      try {
        credentials = credentialsFrom(body.value);
      } catch (error) {
        return await attempt.reject(error as AikbError);
      }
      // Yield once before the lookup and the hash: requests that arrived at the same moment get
      // parsed, and their arrival noted, before this one's work holds the event loop (a database
      // lookup on embedded PGlite runs on this thread). Without it, the sixth of six concurrent
      // logins began its clock ≈ 15 ms after it arrived, and answered that much late.
      await yieldToEventLoop();
      // The token is signed inside the padded time, so a success does no more work after the deadline.
      const result = await attempt.verify({ ...credentials, ip: req.ip }, (user) => tokens.issue(user));
      if (!result.ok) throw new AikbError('UNAUTHENTICATED', 'invalid email or password');
      res.json({ token: result.value.token, expiresIn: result.value.expiresInSeconds });
    } catch (error) {
      if (isAikbError(error, 'RATE_LIMITED')) setRateLimitHeaders(res, RateLimitedError.from(error));
      // Busy: an expected answer under load, logged by the authenticator as one rate-limited WARN
      // line, so neither the error handler nor the request log writes an error line per refusal.
      if (isAikbError(error, 'RESOURCE_EXHAUSTED')) setLoggedElsewhere(res);
      next(error);
    }
  };
}
