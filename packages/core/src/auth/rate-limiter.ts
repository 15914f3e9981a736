import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { AikbError } from '../errors';
import type { Credentials, LoginRateLimiter } from './auth';

/** {@link createLoginRateLimiter} options. */
export interface LoginRateLimiterOptions {
  /**
   * An ioredis client: limits are shared by every instance using it. Without one they are
   * per process (and reset on restart).
   */
  redis?: Redis;
  /**
   * Prefix of every key (in Redis: `<prefix>:fail:...`, `<prefix>:ip:...`).
   * @default 'aikb:login'
   */
  keyPrefix?: string;
  /**
   * Consecutive failures per email + IP before the pair is blocked.
   * @default 10
   */
  maxConsecutiveFailures?: number;
  /**
   * How long a blocked email + IP stays blocked, in seconds.
   * @default 900 (15 minutes)
   */
  blockSeconds?: number;
  /**
   * Attempts (successful or not) per IP per day.
   * @default 1000
   */
  maxAttemptsPerIpPerDay?: number;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`createLoginRateLimiter: ${name} must be a positive integer (got ${value})`);
  return value;
}

// Email as typed (case folded, so `A@x` and `a@x` share a counter), whether or not it exists.
const pairKey = ({ email, ip }: Credentials) => `${email.trim().toLowerCase()}|${ip ?? 'unknown'}`;

function limited(limit: number, msBeforeNext: number, what: string): AikbError {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new AikbError('RATE_LIMITED', `too many login attempts ${what}; try again in ${retryAfterSeconds} s`, {
    details: { retryAfterSeconds, limit, remaining: 0, resetSeconds: retryAfterSeconds },
  });
}

/**
 * Creates the login {@link LoginRateLimiter} on `rate-limiter-flexible`: consecutive failures per
 * email-as-typed + IP (cleared by a success), and attempts per IP per day. Unknown and existing
 * emails are counted the same way, so a block reveals nothing about which emails exist.
 *
 * With Redis, the limits hold across instances; a Redis outage falls back to per-process limits
 * (an insurance limiter) rather than opening or closing the door.
 *
 * @throws {TypeError} naming the option when a limit is not a positive integer
 */
export function createLoginRateLimiter(options: LoginRateLimiterOptions = {}): LoginRateLimiter {
  const keyPrefix = options.keyPrefix ?? 'aikb:login';
  if (typeof keyPrefix !== 'string' || keyPrefix.length === 0) throw new TypeError('createLoginRateLimiter: keyPrefix must be a non-empty string');
  const maxFailures = positive('maxConsecutiveFailures', options.maxConsecutiveFailures, 10);
  const blockSeconds = positive('blockSeconds', options.blockSeconds, 900);
  const perDay = positive('maxAttemptsPerIpPerDay', options.maxAttemptsPerIpPerDay, 1000);

  const make = (suffix: string, points: number, duration: number, blockDuration: number): RateLimiterAbstract => {
    const base = { keyPrefix: `${keyPrefix}:${suffix}`, points, duration, blockDuration };
    const memory = new RateLimiterMemory(base);
    return options.redis ? new RateLimiterRedis({ ...base, storeClient: options.redis, insuranceLimiter: memory }) : memory;
  };
  // Failures are remembered for a day unless cleared; reaching the limit blocks for blockSeconds.
  const failures = make('fail', maxFailures, 24 * 3600, 0);
  const perIp = make('ip', perDay, 24 * 3600, 0);

  return {
    async check(credentials) {
      const pair = await failures.get(pairKey(credentials));
      if (pair && pair.consumedPoints >= maxFailures && pair.msBeforeNext > 0) throw limited(maxFailures, pair.msBeforeNext, 'for this account from this address');
      try {
        await perIp.consume(credentials.ip ?? 'unknown');
      } catch (error) {
        if (error instanceof RateLimiterRes) throw limited(perDay, error.msBeforeNext, 'from this address today');
        throw error;
      }
    },
    async recordFailure(credentials) {
      const key = pairKey(credentials);
      let remaining: number;
      try {
        remaining = (await failures.consume(key)).remainingPoints;
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
        remaining = 0;
      }
      if (remaining === 0) await failures.block(key, blockSeconds);
    },
    async recordSuccess(credentials) {
      await failures.delete(pairKey(credentials));
    },
  };
}
