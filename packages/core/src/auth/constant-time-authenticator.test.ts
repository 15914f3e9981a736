import { availableParallelism } from 'node:os';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRecordingLogger, createRecordingMeter } from '@aikb/test-support';
import { AikbError, isAikbError } from '../errors';
import { systemClock, type Clock } from '../clock';
import type { AttemptObservation, PasswordHasher, UserStore } from './auth';
import { createArgon2Hasher } from './argon2-hasher';
import { createConstantTimeAuthenticator } from './constant-time-authenticator';
import { createMemoryUserStore } from './memory-user-store';
import { createLoginRateLimiter } from './rate-limiter';

/**
 * A hasher whose verify takes `verifyMs` of fake time: the deadline logic is tested with fake
 * timers. The real argon2 hasher goes through the same authenticator at the end of this file.
 */
function fakeHasher(verifyMs = 30, actualMs = verifyMs): PasswordHasher & { verified: string[] } {
  const verified: string[] = [];
  return {
    algorithm: 'fake',
    parameters: { v: 1 },
    verifyCostMs: verifyMs,
    verified,
    async hash(password) {
      return `$fake$v=1$${Buffer.from(password).toString('base64')}`;
    },
    async verify(encoded, password) {
      verified.push(encoded);
      await new Promise((resolve) => setTimeout(resolve, actualMs));
      return encoded === `$fake$v=1$${Buffer.from(password).toString('base64')}`;
    },
    needsRehash: (encoded) => !encoded.startsWith('$fake$v=1$'),
    async calibrate() {
      return verifyMs;
    },
  };
}

/**
 * A hasher as a bad day makes it: each verify takes `stallMs` of wall time while `stalled()` (a
 * flood stalling the event loop), 30 ms otherwise, and its `verifyCostMs` follows a running
 * average of those wall times, as the hashers did before issue 8.
 */
function stallingHasher(stalled: () => boolean, stallMs: number): PasswordHasher {
  const base = fakeHasher(30);
  let average = 30;
  return {
    ...base,
    get verifyCostMs() {
      return average;
    },
    async verify(encoded, password) {
      const ms = stalled() ? stallMs : 30;
      await new Promise((resolve) => setTimeout(resolve, ms));
      average += (ms - average) * 0.1;
      return encoded === `$fake$v=1$${Buffer.from(password).toString('base64')}`;
    },
  };
}

const codeOf = (r: { error?: unknown }) => (r.error ? ((r.error as AikbError).code ?? 'error') : 'ok');

// Date.now under fake timers: deadlines read as exact fake-time instants.
const clock: Clock = systemClock;

async function seeded(hasher: PasswordHasher): Promise<UserStore> {
  const store = createMemoryUserStore();
  await store.create({ email: 'alice@example.com', passwordHash: await hasher.hash('right password'), roles: ['user'] });
  await store.create({ email: 'disabled@example.com', passwordHash: await hasher.hash('right password'), disabled: true });
  await store.create({ email: 'nopassword@example.com', passwordHash: null });
  return store;
}

/** Runs `work` and resolves with when (fake ms after `start`) it settled and how. */
async function timed<T>(work: Promise<T>): Promise<{ at: number; value?: T; error?: unknown }> {
  const start = Date.now();
  return work.then(
    (value) => ({ at: Date.now() - start, value }),
    (error: unknown) => ({ at: Date.now() - start, error }),
  );
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ConstantTimeAuthenticator', () => {
  describe('deadline', () => {
    it('answers every class of attempt at start + floor + jitter, whatever the outcome', async () => {
      const hasher = fakeHasher(30);
      const store = await seeded(hasher);
      const auth = createConstantTimeAuthenticator({ store, hasher, clock, random: () => 7 });
      const cases = [
        { email: 'nobody@example.com', password: 'whatever' }, // unknown email
        { email: 'alice@example.com', password: 'wrong password' },
        { email: 'alice@example.com', password: 'right password' },
        { email: 'ALICE@example.com', password: 'right password' },
        { email: 'disabled@example.com', password: 'right password' },
        { email: 'nopassword@example.com', password: 'anything' },
        { email: 'alice@example.com', password: '' }, // empty password: a wrong password like any other
        { email: '', password: '' },
        { email: 'alice@example.com', password: 'p'.repeat(1025) }, // too long: invalid
      ];
      const pending = cases.map((credentials) => timed(auth.begin().verify(credentials)));
      await vi.advanceTimersByTimeAsync(600);
      const results = await Promise.all(pending);
      expect(results.map((r) => r.at)).toEqual(cases.map(() => 507));
      expect(results.map((r) => (r.error ? (r.error as AikbError).code : r.value!.ok))).toEqual([
        false,
        false,
        true,
        true,
        false,
        false,
        false,
        false,
        'INVALID_ARGUMENT',
      ]);
    });

    it('runs onSuccess (issuing a token) inside the padded time, and only for a success', async () => {
      const hasher = fakeHasher(30);
      const store = await seeded(hasher);
      const auth = createConstantTimeAuthenticator({ store, hasher, clock, random: () => 0 });
      const issuedAt: number[] = [];
      const start = Date.now();
      const issue = async (user: { id: string }) => {
        issuedAt.push(Date.now() - start);
        await new Promise((resolve) => setTimeout(resolve, 40)); // slow signing still ends before the deadline
        return `token-for-${user.id}`;
      };
      const right = timed(auth.begin().verify({ email: 'alice@example.com', password: 'right password' }, issue));
      const wrong = timed(auth.begin().verify({ email: 'alice@example.com', password: 'wrong password' }, issue));
      await vi.advanceTimersByTimeAsync(600);
      const [ok, failed] = await Promise.all([right, wrong]);
      expect(ok.at).toBe(500);
      expect(failed.at).toBe(500);
      expect(ok.value).toMatchObject({ ok: true, value: expect.stringMatching(/^token-for-/) });
      expect(failed.value).toEqual({ ok: false });
      expect(issuedAt).toHaveLength(1);
      expect(issuedAt[0]).toBeLessThan(500);
    });

    it('answers a request rejected before any lookup at its deadline too', async () => {
      const hasher = fakeHasher();
      const auth = createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher, clock, random: () => -20 });
      const attempt = auth.begin();
      const pending = timed(attempt.reject(new AikbError('INVALID_ARGUMENT', 'bad body')));
      await vi.advanceTimersByTimeAsync(1000);
      const result = await pending;
      expect(result.at).toBe(480);
      expect(isAikbError(result.error, 'INVALID_ARGUMENT')).toBe(true);
    });

    it.each(['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as const)(
      'reports a request rejected with %s as outcome invalid',
      async (code) => {
        const outcomes: string[] = [];
        const auth = createConstantTimeAuthenticator({
          store: createMemoryUserStore(),
          hasher: fakeHasher(),
          clock,
          onAttempt: (o) => outcomes.push(o.outcome),
        });
        const pending = auth
          .begin()
          .reject(new AikbError(code, 'bad body'))
          .catch(() => undefined);
        await vi.advanceTimersByTimeAsync(1000);
        await pending;
        expect(outcomes).toEqual(['invalid']);
      },
    );

    it('draws the jitter uniformly from ±jitterMs with crypto.randomInt by default', async () => {
      const auth = createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), clock, jitterMs: 20 });
      const jitters = new Set<number>();
      for (let i = 0; i < 2000; i++) {
        const attempt = auth.begin();
        expect(attempt.deadlineMs - Date.now()).toBe(500 + attempt.jitterMs);
        jitters.add(attempt.jitterMs);
      }
      expect(Math.min(...jitters)).toBe(-20);
      expect(Math.max(...jitters)).toBe(20);
      expect(jitters.size).toBe(41);
    });

    it('asks random for an integer in [-jitterMs, jitterMs + 1)', () => {
      const random = vi.fn(() => 3);
      const auth = createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), clock, jitterMs: 15, random });
      expect(auth.begin().jitterMs).toBe(3);
      expect(random).toHaveBeenCalledWith(-15, 16);
    });

    it('waits with a timer: the event loop runs other work while an attempt is padded', async () => {
      const hasher = fakeHasher();
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0 });
      const pending = auth.authenticate({ email: 'alice@example.com', password: 'right password' });
      let ticks = 0;
      const interval = setInterval(() => ticks++, 10);
      await vi.advanceTimersByTimeAsync(500);
      clearInterval(interval);
      await pending;
      expect(ticks).toBe(50);
    });
  });

  describe('equal work', () => {
    it('verifies unknown, disabled and password-less users against a dummy hash made by the same hasher', async () => {
      const hasher = fakeHasher();
      const store = await seeded(hasher);
      const auth = createConstantTimeAuthenticator({ store, hasher, clock });
      const pending = Promise.all(
        ['nobody@example.com', 'disabled@example.com', 'nopassword@example.com'].map((email) => auth.authenticate({ email, password: 'right password' })),
      );
      await vi.advanceTimersByTimeAsync(600);
      expect((await pending).every((r) => !r.ok)).toBe(true);
      expect(hasher.verified).toHaveLength(3);
      const [dummy] = hasher.verified;
      expect(dummy).toMatch(/^\$fake\$v=1\$/);
      expect(hasher.verified).toEqual([dummy, dummy, dummy]);
    });

    it('with constant time off answers at natural speed but still verifies the dummy hash', async () => {
      const hasher = fakeHasher(30);
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, constantTime: () => false });
      const pending = timed(auth.authenticate({ email: 'nobody@example.com', password: 'x' }));
      await vi.advanceTimersByTimeAsync(100);
      const result = await pending;
      expect(result.at).toBe(30);
      expect(result.value).toEqual({ ok: false });
      expect(hasher.verified).toHaveLength(1);
    });

    it('reads the constant-time switch once per attempt', async () => {
      let on = true;
      const auth = createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), clock, constantTime: () => on });
      expect(auth.begin().constantTime).toBe(true);
      on = false;
      expect(auth.begin().constantTime).toBe(false);
    });
  });

  describe('failures', () => {
    it('pads a store error to the deadline and surfaces it as UNAVAILABLE', async () => {
      const hasher = fakeHasher();
      const store: UserStore = { ...createMemoryUserStore(), findByEmail: async () => Promise.reject(new Error('connection refused')) };
      const auth = createConstantTimeAuthenticator({ store, hasher, clock, random: () => 0 });
      const pending = timed(auth.authenticate({ email: 'alice@example.com', password: 'pw' }));
      await vi.advanceTimersByTimeAsync(600);
      const result = await pending;
      expect(result.at).toBe(500);
      expect(isAikbError(result.error, 'UNAVAILABLE')).toBe(true);
    });

    it('reports paddedToMs as exactly floor + jitter, whatever fractional time the clock reads', async () => {
      // performance.now()-style clocks read fractions; deadline − start then lost a ulp (54.999… for 55).
      const t0 = Date.now();
      const fractional: Clock = { ...clock, now: () => 1000.274 + (Date.now() - t0) };
      const hasher = fakeHasher(30);
      const store = await seeded(hasher);
      const observations: AttemptObservation[] = [];
      const auth = createConstantTimeAuthenticator({
        store,
        hasher,
        clock: fractional,
        floorMs: 60,
        jitterMs: 5,
        random: () => -5,
        onAttempt: (o) => observations.push(o),
      });
      const pending = auth.authenticate({ email: 'alice@example.com', password: 'wrong' });
      await vi.advanceTimersByTimeAsync(100);
      await pending;
      expect(observations[0]!.paddedToMs).toBe(55);
    });

    it('counts an overrun, warns and reports it, and answers as soon as the work ends', async () => {
      // The machine is slower than the hasher declared: a verify takes 630 ms instead of 30.
      const hasher = fakeHasher(30, 630);
      const slow = await seeded(hasher);
      const logger = createRecordingLogger();
      const observations: AttemptObservation[] = [];
      const auth = createConstantTimeAuthenticator({ store: slow, hasher, clock, random: () => 0, logger, onAttempt: (o) => observations.push(o) });
      const pending = timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' }));
      await vi.advanceTimersByTimeAsync(1000);
      expect((await pending).at).toBe(630);
      expect(auth.stats().overruns).toBe(1);
      expect(observations[0]).toMatchObject({ outcome: 'success', overrun: true, elapsedMs: 630, paddedToMs: 500 });
      expect(logger.lines.some((l) => l.level === 'warn' && /deadline overrun/.test(l.msg ?? ''))).toBe(true);
    });

    it('refuses at the deadline, with retryAfterSeconds, an attempt the hashing queue would push past it', async () => {
      const hasher = fakeHasher(200);
      const store = await seeded(hasher);
      const auth = createConstantTimeAuthenticator({ store, hasher, clock, random: () => 0, maxConcurrentHashes: 1 });
      const pending = Array.from({ length: 4 }, () => timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' })));
      await vi.advanceTimersByTimeAsync(1000);
      const results = await Promise.all(pending);
      expect(results.map((r) => r.at)).toEqual([500, 500, 500, 500]);
      expect(results.map((r) => (r.error ? (r.error as AikbError).code : 'ok'))).toEqual(['ok', 'ok', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED']);
      expect((results[2]!.error as AikbError).details).toMatchObject({ retryAfterSeconds: 1 });
      expect(auth.stats()).toMatchObject({ attempts: 4, refused: 2, overruns: 0, hashingInFlight: 0, hashingQueued: 0 });
    });

    it('keeps admissionMarginMs in hand: refuses a verify predicted to end inside the margin', async () => {
      const run = async (admissionMarginMs: number) => {
        const hasher = fakeHasher(240);
        const auth = createConstantTimeAuthenticator({
          store: await seeded(hasher),
          hasher,
          clock,
          random: () => 0,
          maxConcurrentHashes: 1,
          admissionMarginMs,
        });
        const pending = [1, 2].map(() => timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' })));
        await vi.advanceTimersByTimeAsync(1000);
        return (await Promise.all(pending)).map((r) => [r.at, r.error ? (r.error as AikbError).code : 'ok']);
      };
      // the second verify would end at 480 ms: inside a 25 ms margin before the 500 ms deadline
      expect(await run(25)).toEqual([
        [500, 'ok'],
        [500, 'RESOURCE_EXHAUSTED'],
      ]);
      expect(await run(0)).toEqual([
        [500, 'ok'],
        [500, 'ok'],
      ]);
    });

    it('surfaces a rate-limit refusal at the deadline without verifying anything', async () => {
      const hasher = fakeHasher();
      const rateLimiter = {
        check: async () => {
          throw new AikbError('RATE_LIMITED', 'blocked', { details: { retryAfterSeconds: 900 } });
        },
        recordFailure: async () => {},
        recordSuccess: async () => {},
      };
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0, rateLimiter });
      const pending = timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' }));
      await vi.advanceTimersByTimeAsync(600);
      const result = await pending;
      expect(result.at).toBe(500);
      expect(isAikbError(result.error, 'RATE_LIMITED')).toBe(true);
      expect(hasher.verified).toEqual([]);
    });

    it('never logs an email or a password', async () => {
      const hasher = fakeHasher();
      const logger = createRecordingLogger();
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, logger });
      const pending = Promise.all([
        auth.authenticate({ email: 'alice@example.com', password: 'right password' }),
        auth.authenticate({ email: 'secret-person@example.com', password: 'hunter2-secret' }),
      ]);
      await vi.advanceTimersByTimeAsync(600);
      await pending;
      const text = JSON.stringify(logger.lines);
      expect(logger.lines.filter((l) => l.level === 'debug')).toHaveLength(2);
      expect(text).toMatch(/paddedToMs/);
      for (const secret of ['alice', 'secret-person', 'right password', 'hunter2']) expect(text).not.toContain(secret);
    });
  });

  describe('admission control', () => {
    it.each([
      { burst: 100, stallMs: 600, slots: 8 },
      { burst: 1000, stallMs: 2000, slots: 2 },
      { burst: 3000, stallMs: 10_000, slots: 2 },
    ])(
      'accepts the right password at once on an idle authenticator after three bursts of $burst logins stalled to $stallMs ms',
      async ({ burst, stallMs, slots }) => {
        let stalled = true;
        const hasher = stallingHasher(() => stalled, stallMs);
        const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0, maxConcurrentHashes: slots });
        for (let round = 0; round < 3; round++) {
          const flood = Array.from({ length: burst }, (_, i) => timed(auth.authenticate({ email: `x${i}@example.com`, password: 'wrong' })));
          await vi.advanceTimersByTimeAsync(stallMs * 3 + 1000);
          await Promise.all(flood);
        }
        stalled = false;
        // Right after the burst and again after a pause: the idle server lets the owner in.
        for (const pause of [0, 60_000]) {
          await vi.advanceTimersByTimeAsync(pause);
          const right = timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' }));
          await vi.advanceTimersByTimeAsync(600);
          const result = await right;
          expect(result.at).toBe(500);
          expect(result.value).toMatchObject({ ok: true });
        }
      },
    );

    it('keeps its verify-cost estimate within 2× the calibrated cost, and draws it back to it when idle', async () => {
      let stalled = true;
      const hasher = fakeHasher(30);
      const slow = { ...hasher, verify: async (e: string, p: string) => (await new Promise((r) => setTimeout(r, stalled ? 5000 : 0)), hasher.verify(e, p)) };
      const auth = createConstantTimeAuthenticator({
        store: await seeded(hasher),
        hasher: slow,
        clock,
        random: () => 0,
        maxConcurrentHashes: 4,
        floorMs: 6000,
      });
      const pending = Array.from({ length: 40 }, () => auth.authenticate({ email: 'alice@example.com', password: 'wrong' }).catch(() => undefined));
      await vi.advanceTimersByTimeAsync(6100);
      stalled = false;
      const after = auth.stats().admissionCostMs;
      expect(after).toBeGreaterThan(30);
      expect(after).toBeLessThanOrEqual(60);
      await vi.advanceTimersByTimeAsync(30_000);
      await Promise.all(pending);
      expect(auth.stats().admissionCostMs).toBeLessThan(31);
    });

    it('admits a full queue again once the stall is over: concurrent logins within capacity are all answered', async () => {
      let stalled = true;
      const hasher = stallingHasher(() => stalled, 800);
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0, maxConcurrentHashes: 2 });
      const flood = Array.from({ length: 200 }, () => timed(auth.authenticate({ email: 'alice@example.com', password: 'wrong' })));
      await vi.advanceTimersByTimeAsync(5000);
      await Promise.all(flood);
      stalled = false;
      // Ten at once on two slots of 30 ms: five rounds, even at the 2× ceiling (300 ms) inside the 475 ms budget.
      const batch = Array.from({ length: 10 }, () => timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' })));
      await vi.advanceTimersByTimeAsync(600);
      expect((await Promise.all(batch)).map(codeOf)).toEqual(Array(10).fill('ok'));
    });

    it('refuses before any rate-limit check or user lookup', async () => {
      const hasher = fakeHasher(200);
      const base = await seeded(hasher);
      const lookups: string[] = [];
      const store: UserStore = { ...base, findByEmail: async (email) => (lookups.push(email), base.findByEmail(email)) };
      const checks: string[] = [];
      const rateLimiter = { check: async (c: { email: string }) => void checks.push(c.email), recordFailure: async () => {}, recordSuccess: async () => {} };
      const auth = createConstantTimeAuthenticator({ store, hasher, clock, random: () => 0, maxConcurrentHashes: 1, rateLimiter });
      const pending = Array.from({ length: 6 }, () => timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' })));
      await vi.advanceTimersByTimeAsync(1000);
      const results = await Promise.all(pending);
      expect(results.map(codeOf)).toEqual(['ok', 'ok', ...Array(4).fill('RESOURCE_EXHAUSTED')]);
      expect(results.map((r) => r.at)).toEqual(Array(6).fill(500));
      expect(lookups).toHaveLength(2);
      expect(checks).toHaveLength(2);
    });

    it("does not spend the caller's daily attempt budget on busy refusals", async () => {
      const hasher = fakeHasher(200);
      const rateLimiter = createLoginRateLimiter({ keyPrefix: `busy-${Math.random()}`, maxAttemptsPerIpPerDay: 3 });
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0, maxConcurrentHashes: 1, rateLimiter });
      const flood = Array.from({ length: 20 }, () => timed(auth.authenticate({ email: 'alice@example.com', password: 'wrong', ip: '10.9.0.1' })));
      await vi.advanceTimersByTimeAsync(1000);
      const codes = (await Promise.all(flood)).map(codeOf);
      expect(codes.filter((c) => c === 'RESOURCE_EXHAUSTED')).toHaveLength(18);
      expect(codes).not.toContain('RATE_LIMITED');
      // two of three spent: the third still gets through
      const third = timed(auth.authenticate({ email: 'alice@example.com', password: 'right password', ip: '10.9.0.1' }));
      await vi.advanceTimersByTimeAsync(1000);
      expect((await third).value).toMatchObject({ ok: true });
    });

    it('refunds the rate limiter when an admitted attempt is refused in the queue', async () => {
      // declared 100 ms, really 400: the second attempt, admitted, cannot start in time
      const hasher = fakeHasher(100, 400);
      const refunds: string[] = [];
      const rateLimiter = {
        check: async () => {},
        recordFailure: async () => {},
        recordSuccess: async () => {},
        refund: async (c: { email: string }) => void refunds.push(c.email),
      };
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0, maxConcurrentHashes: 1, rateLimiter });
      const pending = [1, 2].map(() => timed(auth.authenticate({ email: 'alice@example.com', password: 'right password' })));
      await vi.advanceTimersByTimeAsync(1000);
      const results = await Promise.all(pending);
      expect(results.map(codeOf)).toEqual(['ok', 'RESOURCE_EXHAUSTED']);
      expect(results.map((r) => r.at)).toEqual([500, 500]);
      expect(refunds).toEqual(['alice@example.com']);
    });

    it('logs a flood of refusals as one WARN line, then at most one a second counting the rest', async () => {
      const hasher = fakeHasher(200);
      const logger = createRecordingLogger();
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0, maxConcurrentHashes: 1, logger });
      const flood = Array.from({ length: 1000 }, () => auth.authenticate({ email: 'alice@example.com', password: 'wrong' }).catch(() => undefined));
      await vi.advanceTimersByTimeAsync(3000);
      await Promise.all(flood);
      const lines = logger.lines.filter((l) => /admission control/.test(l.msg ?? ''));
      expect(lines.map((l) => l.level)).toEqual(['warn', 'warn']);
      expect(lines.reduce((sum, l) => sum + (l.obj as { refused: number }).refused, 0)).toBe(auth.stats().refused);
      expect(auth.stats().refused).toBe(998);
      expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
    });

    it('defaults maxConcurrentHashes to the cores less one, leaving a core to the event loop', () => {
      const auth = createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), clock });
      expect(auth.maxConcurrentHashes).toBe(Math.max(1, availableParallelism() - 1));
    });
  });

  describe('metrics', () => {
    it('records login durations by outcome and constant_time, and overruns and refusals from 0, through its meter', async () => {
      const recording = createRecordingMeter();
      const hasher = fakeHasher(200);
      let padded = true;
      const auth = createConstantTimeAuthenticator({
        store: await seeded(hasher),
        hasher,
        clock,
        random: () => 0,
        maxConcurrentHashes: 1,
        meter: recording.meter,
        constantTime: () => padded,
      });
      const pending = Array.from({ length: 3 }, () => auth.authenticate({ email: 'alice@example.com', password: 'right password' }).catch(() => {}));
      await vi.advanceTimersByTimeAsync(1000);
      await Promise.all(pending);
      padded = false;
      const unpadded = auth.authenticate({ email: 'alice@example.com', password: 'wrong' });
      await vi.advanceTimersByTimeAsync(300);
      await unpadded;
      vi.useRealTimers(); // the metrics SDK collects with a timeout of its own
      const durations = await recording.points('aikb.auth.login.duration');
      expect(durations).toEqual(
        expect.arrayContaining([
          { attributes: { outcome: 'success', constant_time: true }, value: 2, sum: 1 },
          { attributes: { outcome: 'refused', constant_time: true }, value: 1, sum: 0.5 },
          { attributes: { outcome: 'failure', constant_time: false }, value: 1, sum: 0.2 },
        ]),
      );
      expect(await recording.total('aikb.auth.admission_refusals')).toBe(1);
      expect((await recording.points('aikb.auth.deadline_overruns')).map((p) => p.value)).toEqual([0]);
      await recording.shutdown();
    });

    it('counts an overrun', async () => {
      const recording = createRecordingMeter();
      const hasher = fakeHasher(30, 630);
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0, meter: recording.meter });
      const pending = auth.authenticate({ email: 'alice@example.com', password: 'right password' });
      await vi.advanceTimersByTimeAsync(1000);
      await pending;
      vi.useRealTimers();
      expect(await recording.total('aikb.auth.deadline_overruns')).toBe(1);
      await recording.shutdown();
    });

    it('rejects a meter that is not one, naming the option', () => {
      expect(() => createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), meter: {} as never })).toThrow(
        /meter must be an OpenTelemetry Meter/,
      );
    });
  });

  describe('begin', () => {
    it('fixes the deadline from the request arrival (elapsedMs ago), never from a time in the future', () => {
      const auth = createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), clock, random: () => 0 });
      const now = Date.now();
      expect(auth.begin({ elapsedMs: 120 }).deadlineMs).toBe(now + 380);
      expect(auth.begin({ elapsedMs: -5000 }).deadlineMs).toBe(now + 500);
      expect(auth.begin().deadlineMs).toBe(now + 500);
      expect(() => auth.begin({ elapsedMs: Number.NaN })).toThrow(/elapsedMs/);
    });

    it('answers at arrival + floor even when the body took a while to read', async () => {
      const hasher = fakeHasher();
      const auth = createConstantTimeAuthenticator({ store: await seeded(hasher), hasher, clock, random: () => 0 });
      const arrived = Date.now();
      await vi.advanceTimersByTimeAsync(70); // the body is read, the loop was busy
      const pending = timed(auth.begin({ elapsedMs: Date.now() - arrived }).verify({ email: 'alice@example.com', password: 'right password' }));
      await vi.advanceTimersByTimeAsync(600);
      expect((await pending).at).toBe(430);
    });
  });

  describe('options', () => {
    it('refuses a floor that is not above the hasher verify cost, naming floorMs', () => {
      expect(() => createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(510), floorMs: 500 })).toThrow(
        /floorMs \(500\).*verify cost/,
      );
      expect(() => createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(490), floorMs: 500, jitterMs: 20 })).toThrow(TypeError);
      expect(() => createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(510), floorMs: 1000 })).not.toThrow();
    });

    it.each([
      [{ floorMs: -1 }, /floorMs/],
      [{ jitterMs: 1.5 }, /jitterMs/],
      [{ jitterMs: 600 }, /jitterMs/],
      [{ maxConcurrentHashes: 0 }, /maxConcurrentHashes/],
      [{ admissionMarginMs: 490 }, /admissionMarginMs/],
      [{ constantTime: true as unknown as () => boolean }, /constantTime/],
    ])('rejects %j with a TypeError naming the option', (extra, message) => {
      expect(() => createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), ...extra })).toThrow(message);
    });

    it('settles an attempt only once', async () => {
      const auth = createConstantTimeAuthenticator({ store: createMemoryUserStore(), hasher: fakeHasher(), clock, constantTime: () => false });
      const attempt = auth.begin();
      const first = attempt.verify({ email: 'a@example.com', password: 'x' });
      await expect(attempt.verify({ email: 'a@example.com', password: 'x' })).rejects.toThrow(TypeError);
      await vi.advanceTimersByTimeAsync(100);
      await first;
    });
  });

  describe('rehash', () => {
    it('rehashes a password stored with old parameters after a successful login', async () => {
      const hasher = fakeHasher();
      const store = createMemoryUserStore();
      const user = await store.create({ email: 'old@example.com', passwordHash: '$fake$v=1$' + Buffer.from('pw-old-params').toString('base64') });
      const stale = { ...hasher, needsRehash: () => true, hash: async (p: string) => `$fake$v=1$${Buffer.from(p).toString('base64')}#new` };
      const auth = createConstantTimeAuthenticator({ store, hasher: stale, clock });
      const pending = auth.authenticate({ email: 'old@example.com', password: 'pw-old-params' });
      await vi.advanceTimersByTimeAsync(600);
      expect((await pending).ok).toBe(true);
      expect((await store.get(user.id))!.passwordHash).toMatch(/#new$/);
    });
  });
});

describe('ConstantTimeAuthenticator with the real argon2id hasher', () => {
  beforeEach(() => {
    vi.useRealTimers();
  });

  it('logs in with the right password and refuses a wrong one or an unknown email (no padding)', async () => {
    const hasher = createArgon2Hasher({ memoryCost: 1024, timeCost: 1 });
    const store = createMemoryUserStore();
    await store.create({ email: 'bob@example.com', passwordHash: await hasher.hash('bob password'), roles: ['admin'] });
    const auth = createConstantTimeAuthenticator({ store, hasher, constantTime: () => false });
    const ok = await auth.authenticate({ email: 'bob@example.com', password: 'bob password' });
    expect(ok).toMatchObject({ ok: true, user: { email: 'bob@example.com', roles: ['admin'] } });
    expect(ok.ok && 'passwordHash' in ok.user).toBe(false);
    expect(await auth.authenticate({ email: 'bob@example.com', password: 'not bob' })).toEqual({ ok: false });
    expect(await auth.authenticate({ email: 'carol@example.com', password: 'bob password' })).toEqual({ ok: false });
  });
});
