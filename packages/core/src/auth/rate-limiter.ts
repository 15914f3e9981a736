import { RLWrapperTimeouts, RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import { RateLimitedError } from '../errors';
import { checkOptions } from '../options';
import type { Credentials, LoginRateLimiter } from './auth';

/** {@link createLoginRateLimiter} options. */
export interface LoginRateLimiterOptions {
  /**
   * An ioredis client: limits are shared by every instance using it. Without one they are
   * per process (and reset on restart).
   *
   * While it is not ready, or a command fails or takes longer than {@link redisTimeoutMs}, every
   * limit falls back to an in-process one (the insurance limiter) for that call; the counts in
   * Redis resume when it is back. Give the limiter a connection of its own that fails fast, so
   * its commands neither queue behind other traffic nor pile up while Redis is away:
   * `redis.duplicate({ commandTimeout: 100, enableOfflineQueue: false, maxRetriesPerRequest: 0 })`.
   */
  redis?: Redis;
  /**
   * Longest wait for one Redis call before the in-process limits answer it instead, in
   * milliseconds. Bounds what an unreachable or hung Redis adds to a login, whatever the client's
   * own retry settings.
   * @default 100
   */
  redisTimeoutMs?: number;
  /**
   * Prefix of every key (in Redis: `<prefix>:fail:...`, `<prefix>:ip:...`, `<prefix>:acct:...`,
   * `<prefix>:known:...`).
   * @default 'aikb:login'
   */
  keyPrefix?: string;
  /**
   * Consecutive failures per email + IP before the pair is blocked.
   * @default 10
   */
  maxConsecutiveFailures?: number;
  /**
   * How long a blocked email + IP stays blocked, in milliseconds (rounded up to whole seconds:
   * the limits count in seconds).
   * @default 900000 (15 minutes)
   */
  blockMs?: number;
  /**
   * Attempts (successful or not) per IP per day. Attempts refused as busy are given back.
   * @default 1000
   */
  maxAttemptsPerIpPerDay?: number;
  /**
   * Failures per account (the email as typed, trimmed and case-folded, whether or not it exists)
   * from all addresses together, within {@link accountWindowMs}, before the account is
   * blocked for {@link accountBlockMs} — except from an address that has logged into it
   * before (see {@link knownAddressMs}), so the owner is not locked out by someone else's
   * guesses. Stops a guesser who spreads over many addresses (10 per address would otherwise
   * give 50 addresses 500 guesses per 15 minutes).
   * @default 50
   */
  maxFailuresPerAccount?: number;
  /**
   * The window of {@link maxFailuresPerAccount}, in milliseconds (rounded up to whole seconds),
   * counted from the first failure.
   * @default 3600000 (1 hour)
   */
  accountWindowMs?: number;
  /**
   * How long an account stays blocked to unknown addresses, in milliseconds (rounded up to whole
   * seconds).
   * @default 900000 (15 minutes)
   */
  accountBlockMs?: number;
  /**
   * How long an address that logged into an account stays exempt from that account's block, in
   * milliseconds (rounded up to whole seconds; each success renews it). At most 24 days
   * (2073600000): Node's timers, which expire in-process keys (the insurance limiter's too), hold
   * at most 24.8 days.
   * @default 1728000000 (20 days)
   */
  knownAddressMs?: number;
}

// Email as typed (case folded, so `A@x` and `a@x` share a counter), whether or not it exists.
const accountKey = ({ email }: Credentials) => email.trim().toLowerCase();
const ipKey = ({ ip }: Credentials) => ip ?? 'unknown';
const pairKey = (credentials: Credentials) => `${accountKey(credentials)}|${ipKey(credentials)}`;

function limited(limit: number, msBeforeNext: number, what: string): RateLimitedError {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new RateLimitedError(`too many login attempts ${what}; try again in ${retryAfterSeconds} s`, {
    retryAfterSeconds,
    limit,
    remaining: 0,
    resetSeconds: retryAfterSeconds,
  });
}

const DAY_MS = 24 * 3600 * 1000;
/** rate-limiter-flexible counts in whole seconds. */
const seconds = (ms: number) => Math.ceil(ms / 1000);

/**
 * Creates the login {@link LoginRateLimiter} on `rate-limiter-flexible`:
 * - consecutive failures per email-as-typed + IP (cleared by a success);
 * - failures per account from all addresses, blocking the account to every address that has
 *   never logged into it (OWASP Authentication Cheat Sheet, "Account Lockout", with the
 *   known-device exemption of OWASP's "Slow Down Online Guessing Attacks with Device Cookies",
 *   keyed by address);
 * - attempts per IP per day.
 *
 * Unknown and existing emails are counted the same way, so a block reveals nothing about which
 * emails exist.
 *
 * With Redis, the limits hold across instances; a Redis outage (not ready, a command failing or
 * timing out) falls back to per-process limits (an insurance limiter) rather than opening or
 * closing the door, as fast as the client fails (see {@link LoginRateLimiterOptions.redis}).
 *
 * @throws {TypeError} naming the option when a limit is not a positive integer
 */
export function createLoginRateLimiter(options: LoginRateLimiterOptions = {}): LoginRateLimiter {
  const check = checkOptions('createLoginRateLimiter', options, true);
  check.string('keyPrefix');
  for (const name of ['maxConsecutiveFailures', 'maxAttemptsPerIpPerDay', 'maxFailuresPerAccount'] as const) check.number(name, { min: 1, integer: true });
  for (const name of ['blockMs', 'accountWindowMs', 'accountBlockMs'] as const) check.number(name, { min: 1, integer: true });
  check.number('knownAddressMs', { min: 1, max: 24 * DAY_MS, integer: true });
  check.number('redisTimeoutMs', { min: 1, max: 60_000, integer: true });
  check.object('redis', 'an ioredis client', false, ['multi']);
  const keyPrefix = options.keyPrefix ?? 'aikb:login';
  const maxFailures = options.maxConsecutiveFailures ?? 10;
  const blockSeconds = seconds(options.blockMs ?? 900_000);
  const perDay = options.maxAttemptsPerIpPerDay ?? 1000;
  const perAccount = options.maxFailuresPerAccount ?? 50;
  const accountWindow = seconds(options.accountWindowMs ?? 3_600_000);
  const accountBlock = seconds(options.accountBlockMs ?? 900_000);
  const knownSeconds = seconds(options.knownAddressMs ?? 20 * DAY_MS);
  const redisTimeoutMs = options.redisTimeoutMs ?? 100;
  const redis = options.redis;

  const make = (suffix: string, points: number, duration: number): RateLimiterAbstract => {
    const base = { keyPrefix: `${keyPrefix}:${suffix}`, points, blockDuration: 0 };
    const memory = new RateLimiterMemory({ ...base, duration });
    if (!redis) return memory;
    const shared = new RateLimiterRedis({ ...base, duration, storeClient: redis, insuranceLimiter: memory, rejectIfRedisNotReady: true });
    return new RLWrapperTimeouts({ limiter: shared, timeoutMs: redisTimeoutMs, insuranceLimiter: memory });
  };
  // Failures are remembered for a day unless cleared; reaching the limit blocks for blockMs.
  const failures = make('fail', maxFailures, seconds(DAY_MS));
  const perIp = make('ip', perDay, seconds(DAY_MS));
  const accounts = make('acct', perAccount, accountWindow);
  const known = make('known', 1_000_000, knownSeconds);

  const isBlocked = (res: RateLimiterRes | null, limit: number) => res !== null && res.consumedPoints >= limit && res.msBeforeNext > 0;
  // Counts one failure; blocks the key for `seconds` when it reaches the limiter's points.
  const countFailure = async (limiter: RateLimiterAbstract, key: string, seconds: number) => {
    let remaining: number;
    try {
      remaining = (await limiter.consume(key)).remainingPoints;
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      remaining = 0;
    }
    if (remaining === 0) await limiter.block(key, seconds);
  };

  return {
    async check(credentials) {
      const [pair, account] = await Promise.all([failures.get(pairKey(credentials)), accounts.get(accountKey(credentials))]);
      if (isBlocked(pair, maxFailures)) throw limited(maxFailures, pair!.msBeforeNext, 'for this account from this address');
      // The owner's known addresses pass an account block; everyone else waits it out.
      if (isBlocked(account, perAccount) && !(await known.get(pairKey(credentials)))) {
        throw limited(perAccount, account!.msBeforeNext, 'for this account');
      }
      try {
        await perIp.consume(ipKey(credentials));
      } catch (error) {
        if (error instanceof RateLimiterRes) throw limited(perDay, error.msBeforeNext, 'from this address today');
        throw error;
      }
    },
    async recordFailure(credentials) {
      await Promise.all([countFailure(failures, pairKey(credentials), blockSeconds), countFailure(accounts, accountKey(credentials), accountBlock)]);
    },
    async recordSuccess(credentials) {
      await Promise.all([failures.delete(pairKey(credentials)), known.set(pairKey(credentials), 1, knownSeconds)]);
    },
    async refund(credentials) {
      await perIp.reward(ipKey(credentials));
    },
  };
}
