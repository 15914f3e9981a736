import { randomBytes, randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Meter } from '@opentelemetry/api';
import { monotonicClock, unrefTimer, type Clock } from '../clock';
import { type AikbError, UnavailableError, ValidationError, isAikbError } from '../errors';
import { resolveMeter } from '../internal/meter';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import { createArgon2Hasher } from './argon2-hasher';
import type {
  AttemptObservation,
  AttemptOutcome,
  ConstantTimeAuthenticator,
  ConstantTimeAuthenticatorOptions,
  Credentials,
  BeginOptions,
  LoginAttempt,
  LoginResult,
  User,
  UserRecord,
} from './auth';
import { AdmissionCost } from './internal/cost';
import { HashGate } from './internal/hash-gate';

/** Longest password the authenticator verifies; longer ones are rejected (at the deadline). */
export const MAX_PASSWORD_LENGTH = 1024;
const MAX_EMAIL_LENGTH = 320;
/** Login-duration bucket bounds as multiples of the floor: dense around the deadline, where answers land. */
const FLOOR_MULTIPLES = [0.05, 0.1, 0.2, 0.5, 0.9, 0.96, 0.98, 1, 1.02, 1.04, 1.1, 1.5, 2, 5];

/** The authenticator's instruments (see {@link ConstantTimeAuthenticatorOptions.meter}). */
function authInstruments(meter: Meter, floorMs: number) {
  const attempts = { unit: '{attempt}' };
  const instruments = {
    duration: meter.createHistogram('aikb.auth.login.duration', {
      unit: 's',
      description: 'Time from reading a login body to answering it, by outcome.',
      advice: { explicitBucketBoundaries: FLOOR_MULTIPLES.map((m) => Math.round(m * floorMs * 1000) / 1e6) },
    }),
    overruns: meter.createCounter('aikb.auth.deadline_overruns', {
      ...attempts,
      description: 'Login attempts whose work ended after their constant-time deadline (a timing signal).',
    }),
    refusals: meter.createCounter('aikb.auth.admission_refusals', {
      ...attempts,
      description: 'Login attempts refused by admission control (hashing capacity), answered 503 at the deadline.',
    }),
  };
  // Reported from the start: an alert on the rate of overruns needs the zero before the first one.
  instruments.overruns.add(0);
  instruments.refusals.add(0);
  return instruments;
}

function outcomeOf(error: unknown): AttemptOutcome {
  if (!isAikbError(error)) return 'unavailable';
  switch (error.code) {
    // The request itself: a bad field, or a body too large or of another type (the HTTP adapter rejects those through the attempt).
    case 'INVALID_ARGUMENT':
    case 'PAYLOAD_TOO_LARGE':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 'invalid';
    case 'RATE_LIMITED':
      return 'rate_limited';
    case 'RESOURCE_EXHAUSTED':
      return 'refused';
    default:
      return 'unavailable';
  }
}

// Types and lengths only: an empty email or password is not malformed, it is wrong, and takes the
// same path as any other wrong credential (lookup, dummy verify, 401).
function checkCredentials(credentials: Credentials): void {
  if (typeof credentials?.email !== 'string') throw new ValidationError('email', 'email must be a string');
  if (credentials.email.length > MAX_EMAIL_LENGTH) throw new ValidationError('email', `email must be at most ${MAX_EMAIL_LENGTH} characters`);
  if (typeof credentials.password !== 'string') throw new ValidationError('password', 'password must be a string');
  if (credentials.password.length > MAX_PASSWORD_LENGTH) throw new ValidationError('password', `password must be at most ${MAX_PASSWORD_LENGTH} characters`);
}

/**
 * One WARN line for the first admission refusal, then at most one per second counting the
 * refusals in between: a flood of thousands of refused logins must not become thousands of lines.
 */
function refusalLog(clock: Clock, logger: Logger): (info: { maxConcurrentHashes: number; costMs: number }) => void {
  let open = false;
  let count = 0;
  const close = () => {
    if (count === 0) {
      open = false;
      return;
    }
    logger.warn({ refused: count, windowMs: 1000 }, `login admission control: ${count} more login${count === 1 ? '' : 's'} refused (busy) in the last second`);
    count = 0;
    unrefTimer(clock.setTimeout(close, 1000));
  };
  return ({ maxConcurrentHashes, costMs }) => {
    if (open) {
      count++;
      return;
    }
    open = true;
    logger.warn(
      { refused: 1, maxConcurrentHashes, verifyCostMs: Math.round(costMs * 10) / 10 },
      'login admission control: refusing logins (busy: the hashing queue is full); further refusals are counted, at most one line per second',
    );
    unrefTimer(clock.setTimeout(close, 1000));
  };
}

/**
 * Creates a {@link ConstantTimeAuthenticator}.
 *
 * Every attempt's deadline is fixed when it begins: `start + floorMs + jitter`, jitter drawn
 * uniformly from `±jitterMs`. Whatever happens in between — unknown email (verified against a
 * dummy hash with the same parameters), disabled user, account without a password, wrong or right
 * password, rate limit, store error, admission refusal — the answer is given at that deadline by a
 * timer (the event loop stays free). The floor is the defence: it hides the work's duration
 * entirely as long as the work ends before it. Jitter is not a defence (it averages away over many
 * samples); it only keeps answers from looking machine-exact.
 *
 * Work that ends after the deadline is an overrun: counted, reported to `onAttempt` and logged
 * as a warning, because operators must see a timing signal.
 *
 * Failure policy: fails closed. A store or rate-limiter outage is an `UnavailableError`
 * (answered at the deadline), never a success.
 *
 * @throws {TypeError} naming the option, when an option is invalid or `floorMs - jitterMs` is not above the hasher's verify cost
 * @example
 * ```ts
 * const auth = createConstantTimeAuthenticator({ store, floorMs: 500, jitterMs: 20 })
 * const attempt = auth.begin({ elapsedMs })   // the time since the request arrived
 * const result = await attempt.verify({ email, password, ip })   // resolves ≈ 500 ± 20 ms later
 * ```
 */
export function createConstantTimeAuthenticator(options: ConstantTimeAuthenticatorOptions): ConstantTimeAuthenticator {
  const name = 'createConstantTimeAuthenticator';
  const checks = checkOptions(name, options);
  checks.object('store', 'a UserStore', true, ['findByEmail']);
  checks.object('hasher', 'a PasswordHasher', false, ['hash', 'verify', 'needsRehash']);
  checks.number('floorMs', { min: 0, exclusiveMin: true, max: 60_000 });
  checks.number('jitterMs', { min: 0, integer: true });
  checks.number('maxConcurrentHashes', { min: 1, integer: true });
  checks.number('admissionMarginMs', { min: 0 });
  checks.function('constantTime');
  checks.function('onAttempt');
  checks.function('random');
  checks.object('rateLimiter', 'a LoginRateLimiter', false, ['check', 'recordFailure', 'recordSuccess']);
  checks.clock();
  checks.logger();
  const store = options.store;
  const floorMs = options.floorMs ?? 500;
  const jitterMs = options.jitterMs ?? 20;
  if (jitterMs >= floorMs) throw new TypeError(`${name}: jitterMs must be below floorMs (got ${jitterMs})`);
  const maxConcurrentHashes = options.maxConcurrentHashes ?? Math.max(1, availableParallelism() - 1);
  const admissionMarginMs = options.admissionMarginMs ?? 25;
  if (admissionMarginMs >= floorMs - jitterMs) throw new TypeError(`${name}: admissionMarginMs must be below floorMs - jitterMs (got ${admissionMarginMs})`);
  const hasher = options.hasher ?? createArgon2Hasher();
  if (!(floorMs - jitterMs > hasher.verifyCostMs)) {
    throw new TypeError(
      `${name}: floorMs (${floorMs}) minus jitterMs (${jitterMs}) must be above the hasher's verify cost (${hasher.algorithm}: ${Math.round(hasher.verifyCostMs)} ms); raise floorMs or lower the hasher's cost`,
    );
  }
  const constantTime = options.constantTime ?? (() => true);
  const clock = options.clock ?? monotonicClock;
  const random = options.random ?? randomInt;
  const logger = options.logger ?? noopLogger;
  const rateLimiter = options.rateLimiter;
  const instruments = authInstruments(resolveMeter(name, options.meter), floorMs);
  const gate = new HashGate(maxConcurrentHashes, clock);
  // Anchored on the cost the hasher reports now (checked against the floor above): a later
  // calibrate() may lower it, nothing raises it. A hasher that still reports a running average of
  // wall time (the contract before issue 8) cannot drag admission up with a flood's stalls.
  const calibratedCostMs = hasher.verifyCostMs;
  const cost = new AdmissionCost({ baseline: () => Math.min(hasher.verifyCostMs, calibratedCostMs), now: () => clock.now() });
  const refusals = refusalLog(clock, logger);

  // Unknown users are verified against this, made with the same hasher and parameters.
  const dummyHash = hasher.hash(randomBytes(24).toString('base64url'));
  dummyHash.catch(() => {}); // reported by the attempt that awaits it

  let attempts = 0;
  let overruns = 0;
  let refused = 0;

  // Node's timers have millisecond granularity against a cached loop time and may fire up to
  // 1 ms early: wait again until the deadline has really passed (never a busy loop).
  const wait = async (until: number) => {
    for (let ms = until - clock.now(); ms > 0; ms = until - clock.now()) {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, Math.ceil(ms)));
    }
  };

  async function check<T>(
    credentials: Credentials,
    deadline: number | undefined,
    onSuccess: ((user: User) => T | Promise<T>) | undefined,
  ): Promise<LoginResult<T>> {
    checkCredentials(credentials);
    const dummy = await dummyHash.catch((cause: unknown) => {
      throw new UnavailableError('the password hasher is not working', { cause });
    });
    // Admission first, synchronously: a refused attempt touches neither the rate limiter (so it
    // spends none of the caller's budget) nor the store, and costs only its deadline timer.
    const admissionDeadline = deadline === undefined ? undefined : deadline - admissionMarginMs;
    const ticket = gate.admit(cost.value, admissionDeadline);
    try {
      if (rateLimiter) {
        try {
          await rateLimiter.check(credentials);
        } catch (error) {
          if (isAikbError(error, 'RATE_LIMITED')) throw error;
          throw new UnavailableError('the login rate limiter is unavailable', { cause: error });
        }
      }
      let record: UserRecord | undefined;
      try {
        record = await store.findByEmail(credentials.email);
      } catch (cause) {
        throw new UnavailableError('the user store is unavailable', { cause });
      }
      // No user, a disabled one, or one without a password: the same verify, against the dummy.
      const usable = record !== undefined && !record.disabled && typeof record.passwordHash === 'string' && record.passwordHash.length > 0;
      const target = usable ? record!.passwordHash! : dummy;
      try {
        await ticket.start(cost.value);
      } catch (error) {
        // Refused in the queue after the rate limiter counted it: a busy refusal costs no budget.
        await rateLimiter
          ?.refund?.(credentials)
          .catch((cause: unknown) => logger.warn({ err: cause }, 'login rate limiter: could not refund a refused attempt'));
        throw error;
      }
      const started = clock.now();
      const matches = await hasher.verify(target, credentials.password);
      cost.record(clock.now() - started);
      ticket.release();
      if (!(usable && matches && credentials.password.length > 0)) {
        await rateLimiter?.recordFailure(credentials).catch((error: unknown) => logger.warn({ err: error }, 'login rate limiter: could not record a failure'));
        return { ok: false };
      }
      const { passwordHash, ...user } = record!;
      await rateLimiter?.recordSuccess(credentials).catch((error: unknown) => logger.warn({ err: error }, 'login rate limiter: could not clear failures'));
      if (hasher.needsRehash(passwordHash!)) {
        // Off the answer's path: the new hash is stored after the response.
        void hasher
          .hash(credentials.password)
          .then((upgraded) => store.update(user.id, { passwordHash: upgraded, revokeTokens: false }, { actor: 'rehash' }))
          .then(
            () => logger.info({ userId: user.id, algorithm: hasher.algorithm }, 'password hash upgraded to current parameters'),
            (error: unknown) => logger.warn({ err: error, userId: user.id }, 'password hash upgrade failed'),
          );
      }
      return { ok: true, user, value: (onSuccess ? await onSuccess(user) : undefined) as T };
    } finally {
      ticket.release();
    }
  }

  function begin(beginOptions?: BeginOptions): LoginAttempt {
    const elapsedMs = beginOptions?.elapsedMs ?? 0;
    if (typeof elapsedMs !== 'number' || !Number.isFinite(elapsedMs))
      throw new TypeError(`begin: elapsedMs must be a finite number of milliseconds (got ${elapsedMs})`);
    const start = clock.now() - Math.max(0, elapsedMs);
    const padded = constantTime() !== false;
    const jitter = padded && jitterMs > 0 ? random(-jitterMs, jitterMs + 1) : 0;
    const deadline = padded ? start + floorMs + jitter : start;
    let used = false;

    async function settle<T>(work: () => Promise<T>): Promise<T> {
      if (used) throw new TypeError('LoginAttempt: an attempt can be settled only once; call begin() for each login');
      used = true;
      attempts++;
      let result: { value: T } | undefined;
      let failure: unknown;
      let outcome: AttemptOutcome;
      try {
        result = { value: await work() };
        outcome = (result.value as LoginResult | undefined)?.ok ? 'success' : 'failure';
      } catch (error) {
        failure = error;
        outcome = outcomeOf(error);
      }
      const finished = clock.now();
      const overrun = padded && finished > deadline;
      if (overrun) overruns++;
      if (outcome === 'refused') {
        refused++;
        refusals({ maxConcurrentHashes, costMs: cost.value });
      }
      await wait(deadline);
      const observation: AttemptObservation = {
        outcome,
        constantTime: padded,
        elapsedMs: finished - start,
        totalMs: clock.now() - start,
        paddedToMs: padded ? floorMs + jitter : 0,
        jitterMs: jitter,
        overrun,
      };
      if (overrun) {
        logger.warn(
          { elapsedMs: Math.round(observation.elapsedMs), paddedToMs: observation.paddedToMs, outcome },
          `constant-time auth deadline overrun: work took ${Math.round(observation.elapsedMs)} ms, past the ${observation.paddedToMs} ms deadline (timing signal)`,
        );
      }
      logger.debug(
        { outcome, constantTime: padded, elapsedMs: Math.round(observation.elapsedMs * 10) / 10, paddedToMs: observation.paddedToMs, jitterMs: jitter },
        padded ? `constant-time auth attempt: padded to ${observation.paddedToMs} ms (jitter ${jitter} ms)` : 'auth attempt: constant-time padding off',
      );
      try {
        instruments.duration.record(observation.totalMs / 1000, { outcome, constant_time: padded });
        if (overrun) instruments.overruns.add(1);
        if (outcome === 'refused') instruments.refusals.add(1);
      } catch (error) {
        logger.warn({ err: error }, 'the authenticator could not record its metrics');
      }
      try {
        options.onAttempt?.(observation);
      } catch (error) {
        logger.warn({ err: error }, 'onAttempt observer threw');
      }
      if (result) return result.value;
      if (isAikbError(failure)) throw failure;
      throw new UnavailableError('login failed unexpectedly', { cause: failure });
    }

    return {
      constantTime: padded,
      jitterMs: jitter,
      deadlineMs: deadline,
      verify: <T>(credentials: Credentials, onSuccess?: (user: User) => T | Promise<T>) =>
        settle(() => check(credentials, padded ? deadline : undefined, onSuccess)),
      reject: (error: AikbError) =>
        settle<never>(() => {
          throw error;
        }),
    };
  }

  return {
    floorMs,
    jitterMs,
    maxConcurrentHashes,
    hasher,
    begin,
    authenticate: (credentials) => begin().verify(credentials),
    stats: () => ({
      attempts,
      overruns,
      refused,
      hashingInFlight: gate.inFlight,
      hashingQueued: gate.queued,
      hashingAdmitted: gate.reserved,
      admissionCostMs: Math.round(cost.value * 10) / 10,
    }),
  };
}
