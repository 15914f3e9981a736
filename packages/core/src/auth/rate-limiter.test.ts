import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { describeWithRedis } from '@aikb/test-support';
import { AikbError, isAikbError } from '../errors';
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
}

describe('createLoginRateLimiter (memory)', () => {
  describeLoginRateLimiter((options) => createLoginRateLimiter({ ...options, keyPrefix: `t${randomBytes(4).toString('hex')}` }));

  it('rejects a limit that is not a positive integer, naming the option', () => {
    expect(() => createLoginRateLimiter({ maxConsecutiveFailures: 0 })).toThrow(/maxConsecutiveFailures/);
    expect(() => createLoginRateLimiter({ blockSeconds: 1.5 })).toThrow(/blockSeconds/);
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
