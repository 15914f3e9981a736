import { expect, it } from 'vitest';
import { type AikbError, RateLimitedError, isAikbError } from '../errors';
import type { LoginRateLimiter } from './auth';
import type { LoginRateLimiterOptions } from './rate-limiter';

/** The limits the contract sets; unset ones take the defaults the contract assumes (10 consecutive failures, 50 per account, 15-minute blocks). */
export type LoginRateLimiterContractLimits = Pick<LoginRateLimiterOptions, 'maxConsecutiveFailures' | 'maxAttemptsPerIpPerDay' | 'maxFailuresPerAccount'>;

/**
 * The behaviour every {@link LoginRateLimiter} must have, whatever keeps its counters (memory,
 * Redis). Call inside a `describe`; `make` returns a limiter with fresh counters each time.
 */
export function describeLoginRateLimiterContract(make: (limits: LoginRateLimiterContractLimits) => LoginRateLimiter): void {
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
