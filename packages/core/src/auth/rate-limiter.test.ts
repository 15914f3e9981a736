import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { describeWithRedis, hasRedisServer, useThrowawayRedis } from '@aikb/test-support';
import { isAikbError } from '../errors';
import { describeLoginRateLimiterContract } from './login-rate-limiter.contract';
import { createLoginRateLimiter } from './rate-limiter';

describe('createLoginRateLimiter (memory)', () => {
  describeLoginRateLimiterContract((options) => createLoginRateLimiter({ ...options, keyPrefix: `t${randomBytes(4).toString('hex')}` }));

  it('rejects a limit that is not a positive integer, naming the option', () => {
    expect(() => createLoginRateLimiter({ maxConsecutiveFailures: 0 })).toThrow(/maxConsecutiveFailures/);
    expect(() => createLoginRateLimiter({ blockMs: 1.5 })).toThrow(/blockMs/);
    expect(() => createLoginRateLimiter({ maxFailuresPerAccount: 0 })).toThrow(/maxFailuresPerAccount/);
    expect(() => createLoginRateLimiter({ accountWindowMs: -1 })).toThrow(/accountWindowMs/);
    expect(() => createLoginRateLimiter({ accountBlockMs: 0.5 })).toThrow(/accountBlockMs/);
    expect(() => createLoginRateLimiter({ knownAddressMs: 30 * 24 * 3600_000 })).toThrow(/knownAddressMs/);
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
  describeLoginRateLimiterContract((options) => createLoginRateLimiter({ ...options, redis, keyPrefix: `${prefix}:${randomBytes(4).toString('hex')}` }));

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
