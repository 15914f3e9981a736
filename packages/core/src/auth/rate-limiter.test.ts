import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { describeWithRedis, hasRedisServer, useThrowawayRedis } from '@aikb/test-support';
import { AikbError, RateLimitedError, isAikbError } from '../errors';
import type { LoginRateLimiter } from './auth';
import { createLoginRateLimiter, type LoginRateLimiterOptions } from './rate-limiter';

function describeLoginRateLimiter(make: (options: LoginRateLimiterOptions) => LoginRateLimiter): void {
  const fail = async (limiter: LoginRateLimiter, email: string, ip: string, times: number) => {
    for (let i = 0; i < times; i++) {
      await limiter.check({ email, password: 'x', ip });
      await limiter.recordFailure({ email, password: 'x', ip });
    }
  };
  const blocked = async (limiter: LoginRateLimiter, email: string, ip: string) =>
    limiter.check({ email, password: 'x', ip }).then(
      () => undefined,
      (error: unknown) => {
        if (!isAikbError(error, 'RATE_LIMITED')) throw error;
        return error;
      },
    );

  it.each(['known@example.com', 'never-registered@example.com'])('blocks %s + IP for 15 minutes after 10 consecutive failures', async (email) => {
    const limiter = make({});
    await fail(limiter, email, '10.0.0.1', 9);
    expect(await blocked(limiter, email, '10.0.0.1')).toBeUndefined();
    await limiter.recordFailure({ email, password: 'x', ip: '10.0.0.1' });
    const error = (await blocked(limiter, email, '10.0.0.1')) as AikbError;
    expect(error).toBeDefined();
    expect(error.details).toMatchObject({ limit: 10, remaining: 0 });
    expect(error.details.retryAfterSeconds).toBeGreaterThan(890);
    expect(error.details.retryAfterSeconds).toBeLessThanOrEqual(900);
    // Typed: callers read the fields, not the details bag.
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ limit: 10, remaining: 0, resetSeconds: (error as RateLimitedError).retryAfterSeconds });
    // the case of the email as typed does not open a new counter; another IP or email does
    expect(await blocked(limiter, email.toUpperCase(), '10.0.0.1')).toBeDefined();
    expect(await blocked(limiter, email, '10.0.0.2')).toBeUndefined();
    expect(await blocked(limiter, `other-${email}`, '10.0.0.1')).toBeUndefined();
  });

  it('clears the consecutive failures on success', async () => {
    const limiter = make({ maxConsecutiveFailures: 3 });
    await fail(limiter, 'a@example.com', '10.0.0.3', 2);
    await limiter.recordSuccess({ email: 'a@example.com', password: 'x', ip: '10.0.0.3' });
    await fail(limiter, 'a@example.com', '10.0.0.3', 2);
    expect(await blocked(limiter, 'a@example.com', '10.0.0.3')).toBeUndefined();
  });

  it('limits attempts per IP per day, whatever the email', async () => {
    const limiter = make({ maxAttemptsPerIpPerDay: 5 });
    for (let i = 0; i < 5; i++) await limiter.check({ email: `user${i}@example.com`, password: 'x', ip: '10.0.0.4' });
    const error = (await blocked(limiter, 'user9@example.com', '10.0.0.4')) as AikbError;
    expect(error.details).toMatchObject({ limit: 5, remaining: 0 });
    expect(await blocked(limiter, 'user9@example.com', '10.0.0.5')).toBeUndefined();
  });

  it('gives an attempt refused as busy back to the per-IP budget (refund)', async () => {
    const limiter = make({ maxAttemptsPerIpPerDay: 2 });
    const c = { email: 'busy@example.com', password: 'x', ip: '10.0.0.6' };
    await limiter.check(c);
    await limiter.refund!(c);
    await limiter.check(c);
    await limiter.check(c);
    expect(await blocked(limiter, c.email, c.ip)).toBeDefined();
  });

  it.each(['known@example.com', 'never-registered@example.com'])(
    'blocks 500 guesses at %s spread over 50 addresses after 50 failures, for 15 minutes',
    async (email) => {
      const limiter = make({});
      let allowed = 0;
      let error: AikbError | undefined;
      for (let i = 0; i < 500 && !error; i++) {
        const ip = `10.3.${i % 50}.1`;
        error = await blocked(limiter, i % 2 ? email.toUpperCase() : email, ip);
        if (error) break;
        allowed++;
        await limiter.recordFailure({ email, password: 'x', ip });
      }
      expect(allowed).toBe(50);
      expect(error!.details).toMatchObject({ limit: 50, remaining: 0 });
      expect(error!.details.retryAfterSeconds).toBeGreaterThan(890);
      expect(error!.details.retryAfterSeconds).toBeLessThanOrEqual(900);
      // a fresh address is blocked too; another account is not
      expect(await blocked(limiter, email, '10.4.0.1')).toBeDefined();
      expect(await blocked(limiter, `other-${email}`, '10.4.0.1')).toBeUndefined();
    },
  );

  it('lets an address that logged into the account before through its block, so the owner is not locked out', async () => {
    const limiter = make({ maxFailuresPerAccount: 5 });
    const email = 'owner@example.com';
    await limiter.check({ email, password: 'x', ip: '10.5.0.1' });
    await limiter.recordSuccess({ email: 'Owner@Example.com', password: 'x', ip: '10.5.0.1' });
    for (let i = 0; i < 5; i++) await limiter.recordFailure({ email, password: 'x', ip: `10.6.0.${i}` });
    expect(await blocked(limiter, email, '10.6.0.99')).toBeDefined();
    expect(await blocked(limiter, email, '10.5.0.1')).toBeUndefined();
    // the owner's success does not lift the block for everyone else
    await limiter.recordSuccess({ email, password: 'x', ip: '10.5.0.1' });
    expect(await blocked(limiter, email, '10.6.0.99')).toBeDefined();
  });
}

describe('createLoginRateLimiter (memory)', () => {
  describeLoginRateLimiter((options) => createLoginRateLimiter({ ...options, keyPrefix: `t${randomBytes(4).toString('hex')}` }));

  it('rejects a limit that is not a positive integer, naming the option', () => {
    expect(() => createLoginRateLimiter({ maxConsecutiveFailures: 0 })).toThrow(/maxConsecutiveFailures/);
    expect(() => createLoginRateLimiter({ blockSeconds: 1.5 })).toThrow(/blockSeconds/);
    expect(() => createLoginRateLimiter({ maxFailuresPerAccount: 0 })).toThrow(/maxFailuresPerAccount/);
    expect(() => createLoginRateLimiter({ accountWindowSeconds: -1 })).toThrow(/accountWindowSeconds/);
    expect(() => createLoginRateLimiter({ accountBlockSeconds: 0.5 })).toThrow(/accountBlockSeconds/);
    expect(() => createLoginRateLimiter({ knownAddressDays: 30 })).toThrow(/knownAddressDays/);
    expect(() => createLoginRateLimiter({ redis: {} as Redis })).toThrow(/redis/);
    expect(() => createLoginRateLimiter({ redisTimeoutMs: 0 })).toThrow(/redisTimeoutMs/);
  });
});

describeWithRedis('createLoginRateLimiter', (url) => {
  const redis = url ? new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 }) : undefined;
  const prefix = `aikb-test:${randomBytes(6).toString('hex')}`;
  afterAll(async () => {
    if (!redis) return;
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  describeLoginRateLimiter((options) => createLoginRateLimiter({ ...options, redis, keyPrefix: `${prefix}:${randomBytes(4).toString('hex')}` }));

  it('shares the block between two limiters on the same Redis (two instances)', async () => {
    const keyPrefix = `${prefix}:shared`;
    const a = createLoginRateLimiter({ redis, keyPrefix, maxConsecutiveFailures: 2 });
    const b = createLoginRateLimiter({ redis, keyPrefix, maxConsecutiveFailures: 2 });
    await a.recordFailure({ email: 's@example.com', password: 'x', ip: '10.1.0.1' });
    await b.recordFailure({ email: 's@example.com', password: 'x', ip: '10.1.0.1' });
    await expect(a.check({ email: 's@example.com', password: 'x', ip: '10.1.0.1' })).rejects.toSatisfy((e) => isAikbError(e, 'RATE_LIMITED'));
    expect(await redis!.keys(`${keyPrefix}*`)).not.toHaveLength(0);
  });
});

describe.runIf(hasRedisServer())('createLoginRateLimiter when Redis dies', () => {
  const redisServer = useThrowawayRedis();

  it.each([
    ['a general-purpose client (offline queue, retries)', {}],
    ['the recommended dedicated connection', { commandTimeout: 100, enableOfflineQueue: false, maxRetriesPerRequest: 0 }],
  ])('keeps answering at once from in-process limits, with %s', async (_name, clientOptions) => {
    const redis = new Redis(redisServer().url, { ...clientOptions, retryStrategy: () => 200 });
    redis.on('error', () => {});
    try {
      if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
      const limiter = createLoginRateLimiter({ redis, keyPrefix: `dies-${randomBytes(4).toString('hex')}`, maxConsecutiveFailures: 3 });
      const c = { email: 'down@example.com', password: 'x', ip: '10.7.0.1' };
      await limiter.check(c);
      await limiter.recordFailure(c);
      await redisServer().kill();
      const slowest = { ms: 0 };
      const timed = async (work: () => Promise<unknown>) => {
        const start = performance.now();
        const result = await work().catch((error: unknown) => error);
        slowest.ms = Math.max(slowest.ms, performance.now() - start);
        return result;
      };
      // The insurance limiter counts from zero: three failures block the pair in this process.
      for (let i = 0; i < 3; i++) {
        expect(await timed(() => limiter.check(c))).toBeUndefined();
        expect(await timed(() => limiter.recordFailure(c))).toBeUndefined();
      }
      const error = await timed(() => limiter.check(c));
      expect(isAikbError(error, 'RATE_LIMITED')).toBe(true);
      expect(await timed(() => limiter.recordSuccess({ ...c, ip: '10.7.0.2' }))).toBeUndefined();
      expect(await timed(() => limiter.refund!(c))).toBeUndefined();
      // A loose bound (before: each call waited out the client's reconnection retries, seconds).
      expect(slowest.ms).toBeLessThan(500);
    } finally {
      redis.disconnect();
      await redisServer().start(); // up again for the next case (and the suite's own kill)
    }
  });
});
