import type { Meter } from '@opentelemetry/api';
import type { Clock } from '../clock';
import type { AikbError } from '../errors';
import type { Logger } from '../logger';

/**
 * Hashes and verifies passwords, stored as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`)
 * so that parameters travel with each hash and can be raised later.
 */
export interface PasswordHasher {
  /** Short name for logs and status (`argon2id`, `scrypt`). */
  readonly algorithm: string;
  /** The parameters new hashes are made with, for status pages. */
  readonly parameters: Readonly<Record<string, number>>;
  /**
   * What one {@link verify} costs on this machine, in milliseconds: declared from the parameters
   * at creation, replaced by {@link calibrate}'s measurement. It does not follow the verifies of
   * live traffic (their wall time includes queueing and event-loop stalls): the authenticator keeps
   * its own bounded running estimate for admission control, anchored on this value.
   */
  readonly verifyCostMs: number;
  /** Hashes `password` with a fresh random salt. */
  hash(password: string): Promise<string>;
  /**
   * True when `password` matches `encoded`. A malformed or foreign hash is `false`, never a throw,
   * and costs a dummy verify so it takes as long as a real one.
   */
  verify(encoded: string, password: string): Promise<boolean>;
  /** True when `encoded` was made with other parameters (or another algorithm) than new hashes. */
  needsRehash(encoded: string): boolean;
  /** Measures a few verifies on this machine and updates {@link verifyCostMs}. */
  calibrate(samples?: number): Promise<number>;
}

/** A user as everyone may see it: no password hash. */
export interface User {
  readonly id: string;
  /** As entered at creation; unique regardless of case. */
  readonly email: string;
  readonly roles: readonly string[];
  /** A disabled user cannot log in; the login takes the same path and time as a wrong password. */
  readonly disabled: boolean;
  /**
   * The user's token generation: a counter the store raises whenever a change must end the
   * user's sessions (email, password, roles, disabled). A token carries the generation it was
   * issued at and is refused once it no longer matches (see `createSessionVerifier`).
   */
  readonly tokenGeneration: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A user with its password hash, as the authenticator reads it. */
export interface UserRecord extends User {
  /** PHC string, or `null` for an account that has no usable password. */
  readonly passwordHash: string | null;
}

/** What {@link UserStore.create} takes. */
export interface NewUser {
  readonly email: string;
  readonly passwordHash: string | null;
  readonly roles?: readonly string[];
  readonly disabled?: boolean;
}

/** What {@link UserStore.update} may change. */
export interface UserPatch {
  readonly email?: string;
  readonly passwordHash?: string | null;
  readonly roles?: readonly string[];
  readonly disabled?: boolean;
  /**
   * Whether this change raises {@link User.tokenGeneration}, which revokes every token issued
   * before it. Pass `false` only for changes that leave the user's credentials and rights as they
   * were (re-hashing the same password with new parameters).
   * @default true when the patch sets `email`, `passwordHash`, `roles` or `disabled`
   */
  readonly revokeTokens?: boolean;
}

/** Who made a change, for the audit trail of {@link UserStore}. */
export interface UserChangeOptions {
  /**
   * The acting user's id, or a fixed name for another credential (`admin-token`, `cli`).
   * @default 'system'
   */
  readonly actor?: string;
}

/** One entry of a user's audit trail: who changed what, when. Never holds a password or hash. */
export interface UserChange {
  readonly userId: string;
  readonly action: 'create' | 'update' | 'delete';
  readonly actor: string;
  /** The fields the change set (`email`, `password`, `roles`, `disabled`); empty for a delete. */
  readonly fields: readonly string[];
  /** The user's public state after the change; `undefined` for a delete. */
  readonly after: { readonly email: string; readonly roles: readonly string[]; readonly disabled: boolean } | undefined;
  readonly at: Date;
}

/**
 * Where users live. A missing user is `undefined`, not a throw. Emails are unique
 * case-insensitively: a duplicate is an `AikbError` `ALREADY_EXISTS`; an unreachable backend an
 * `UnavailableError`.
 */
export interface UserStore {
  findByEmail(email: string): Promise<UserRecord | undefined>;
  get(id: string): Promise<UserRecord | undefined>;
  /** Every user, oldest first. */
  list(): Promise<User[]>;
  /** Creates the user (token generation 0) and records the change in its audit trail. */
  create(user: NewUser, options?: UserChangeOptions): Promise<User>;
  /**
   * Applies `patch`, raises the token generation as {@link UserPatch.revokeTokens} says, and
   * records the change in the audit trail, atomically.
   * @returns the updated user, or `undefined` when there is none with this id
   */
  update(id: string, patch: UserPatch, options?: UserChangeOptions): Promise<User | undefined>;
  /** Deletes the user (its audit trail stays). @returns whether a user was deleted */
  delete(id: string, options?: UserChangeOptions): Promise<boolean>;
  /**
   * The audit trail of one user id, newest first, deleted users included.
   * @param limit at most this many entries (1..1000, default 50)
   */
  history(id: string, limit?: number): Promise<UserChange[]>;
}

/** The credentials of one login attempt, exactly as the client sent them. */
export interface Credentials {
  readonly email: string;
  readonly password: string;
  /** The client's address, for per-IP rate limits. */
  readonly ip?: string;
}

/**
 * The outcome of a login attempt that was answered (refusals are thrown). `value` is what the
 * attempt's `onSuccess` produced (a session token, say), inside the padded time.
 */
export type LoginResult<T = undefined> = { readonly ok: true; readonly user: User; readonly value: T } | { readonly ok: false };

/**
 * How an attempt ended, as reported to {@link ConstantTimeAuthenticatorOptions.onAttempt}. `invalid`: the
 * request itself was refused (a bad field, or a body too large or of another type).
 */
export type AttemptOutcome = 'success' | 'failure' | 'invalid' | 'rate_limited' | 'refused' | 'unavailable';

/** One attempt, measured. Never carries the email or the password. */
export interface AttemptObservation {
  readonly outcome: AttemptOutcome;
  /** Whether the answer was padded to a deadline. */
  readonly constantTime: boolean;
  /** Time spent working (lookup, rate limits, hashing), in milliseconds. */
  readonly elapsedMs: number;
  /** Time from start to answer, in milliseconds (≈ floor + jitter when constant-time). */
  readonly totalMs: number;
  /** The deadline relative to the start (floor + jitter), in milliseconds; 0 when not padded. */
  readonly paddedToMs: number;
  /** The jitter drawn for this attempt, in milliseconds. */
  readonly jitterMs: number;
  /** The work finished after the deadline. */
  readonly overrun: boolean;
}

/** Counters since creation, for status pages. */
export interface AuthenticatorStats {
  readonly attempts: number;
  readonly overruns: number;
  readonly refused: number;
  readonly hashingInFlight: number;
  readonly hashingQueued: number;
  /** Attempts admitted that are still checking rate limits or looking the user up. */
  readonly hashingAdmitted: number;
  /**
   * The verify cost admission control predicts with, in milliseconds: a running average of
   * measured verifies, kept within [½, 2] × the hasher's calibrated cost (its `verifyCostMs` when
   * the authenticator was created, or lower after a new calibration) and drawn back to it
   * (half-life 5 s) when no verifies run.
   */
  readonly admissionCostMs: number;
}

/**
 * Per-attempt checks that may refuse before any password is verified. The authenticator runs them
 * inside the attempt's deadline, so a refusal is answered at the same time as anything else.
 */
export interface LoginRateLimiter {
  /**
   * Counts the attempt and throws a `RateLimitedError` (`RATE_LIMITED`, with `retryAfterSeconds`,
   * `limit`, `remaining`, `resetSeconds`) when this email + IP, this account (to an address
   * that never logged into it) or this IP is blocked.
   */
  check(credentials: Credentials): Promise<void>;
  /** A wrong password (or unknown email): counts towards the consecutive-failure and per-account blocks. */
  recordFailure(credentials: Credentials): Promise<void>;
  /** A successful login: clears the consecutive failures of this email + IP and remembers the address as known to the account. */
  recordSuccess(credentials: Credentials): Promise<void>;
  /**
   * Gives back what {@link check} counted for an attempt that was then refused as busy
   * (`RESOURCE_EXHAUSTED`) before its password was verified: a refusal must not spend the
   * caller's attempt budget. Optional.
   */
  refund?(credentials: Credentials): Promise<void>;
}

/** {@link createConstantTimeAuthenticator} options. */
export interface ConstantTimeAuthenticatorOptions {
  /** Where users are looked up. */
  store: UserStore;
  /**
   * Verifies passwords. Calibrate it (`await hasher.calibrate()`) before creating the
   * authenticator: its `verifyCostMs` then is the anchor of admission control's estimate.
   * @default createArgon2Hasher()
   */
  hasher?: PasswordHasher;
  /**
   * Every padded attempt is answered at `start + floorMs + jitter`. Must be above the hasher's
   * {@link PasswordHasher.verifyCostMs}.
   * @default 500
   */
  floorMs?: number;
  /**
   * Jitter is drawn uniformly from `[-jitterMs, +jitterMs]` per attempt. Must be below `floorMs`.
   * @default 20
   */
  jitterMs?: number;
  /**
   * Asked once per attempt, at its start: pad to the deadline or answer at natural speed. Wire it
   * to a feature flag. Dummy hashing and timing-safe comparison stay on either way.
   * @default () => true
   */
  constantTime?: () => boolean;
  /**
   * How many verifies may run at once; further attempts queue, and one that would miss its
   * deadline in the queue is refused (`RESOURCE_EXHAUSTED`).
   *
   * The default leaves one core to the event loop: with every core hashing, the loop that fires
   * the deadline timers and writes the answers competes with the hashing threads and answers come
   * late (measured: 20–70 ms past the window on 2 cores). The price is hashing throughput: on
   * 2 cores, half of it. Set it to the number of cores on a machine that does nothing but logins
   * and can tolerate late answers under load.
   * @default Math.max(1, os.availableParallelism() - 1)
   */
  maxConcurrentHashes?: number;
  /**
   * Admission control keeps this much time in hand: an attempt that finds every hashing slot
   * taken and whose verify is predicted to end less than `admissionMarginMs` before its deadline
   * is refused, absorbing scheduling noise. Admission is decided before any other work of the
   * attempt (rate limits, user lookup), so a refusal costs neither a store query nor any of the
   * caller's rate-limit budget. An attempt that finds a slot free is always admitted.
   *
   * The prediction uses the authenticator's own estimate of one verify (see
   * {@link AuthenticatorStats.admissionCostMs}), bounded by the hasher's calibrated cost, so no
   * burst can leave it refusing an idle server's logins.
   * @default 25
   */
  admissionMarginMs?: number;
  /** Optional rate limits, checked inside the deadline. */
  rateLimiter?: LoginRateLimiter;
  /** Called once per attempt, after it is answered. Must not throw. */
  onAttempt?: (observation: AttemptObservation) => void;
  /**
   * Where attempts are measured: the histogram `aikb.auth.login.duration` (seconds from start to
   * answer, by `outcome` and `constant_time`; buckets packed around the floor: 0.05 to 5 × `floorMs`,
   * 0.96, 0.98, 1, 1.02, 1.04 × `floorMs` among them) and the counters `aikb.auth.deadline_overruns`
   * (work ended after the deadline: a timing signal) and `aikb.auth.admission_refusals` (refused for
   * hashing capacity), both reported from 0.
   * @default metrics.getMeter('@aikb/core') from @opentelemetry/api (a no-op without an SDK)
   */
  meter?: Meter;
  /**
   * Reads time for deadlines and sets the timers that answer at them. A monotonic default: a
   * wall-clock step (NTP) must not move a deadline.
   * @default monotonicClock (`performance.now()` and the global timers)
   */
  clock?: Clock;
  /**
   * Draws an integer uniformly from `[min, max)`.
   * @default crypto.randomInt
   */
  random?: (min: number, max: number) => number;
  /** @default noopLogger */
  logger?: Logger;
}

/** {@link ConstantTimeAuthenticator.begin} options. */
export interface BeginOptions {
  /**
   * How long the attempt has already been running, in milliseconds: the time since the request
   * arrived, so a busy event loop reading bodies late does not push the answer past the window.
   * Negative counts as 0. One so long that the deadline has passed makes the attempt an overrun:
   * callers bound it (the Express `loginHandler` restarts the clock for a body that took long to
   * arrive).
   * @default 0
   */
  elapsedMs?: number;
}

/** One login attempt: its deadline is fixed when it is begun. */
export interface LoginAttempt {
  /** Whether this attempt is padded. */
  readonly constantTime: boolean;
  /** The jitter drawn for this attempt, in milliseconds. */
  readonly jitterMs: number;
  /** The `clock.now()` reading at which the answer is due; equal to the start when not padded. */
  readonly deadlineMs: number;
  /**
   * Checks the credentials and resolves at the deadline. Throws (at the deadline too) an
   * `AikbError` `RATE_LIMITED`, `RESOURCE_EXHAUSTED` (admission control, with
   * `retryAfterSeconds`) or `UNAVAILABLE` (the store failed).
   *
   * @param onSuccess work that only a successful login does (issuing a token): it runs before
   *   the deadline, so it adds nothing to the time of a successful answer alone
   */
  verify<T = undefined>(credentials: Credentials, onSuccess?: (user: User) => T | Promise<T>): Promise<LoginResult<T>>;
  /** Throws `error` at the deadline: for requests rejected before any lookup (bad input). */
  reject(error: AikbError): Promise<never>;
}

/**
 * Answers every login at the same time whatever its outcome, so timing reveals neither whether an
 * email exists nor whether a password was close.
 */
export interface ConstantTimeAuthenticator {
  /** The resolved floor, in milliseconds. */
  readonly floorMs: number;
  /** The resolved jitter bound, in milliseconds. */
  readonly jitterMs: number;
  /** The resolved hashing concurrency. */
  readonly maxConcurrentHashes: number;
  readonly hasher: PasswordHasher;
  /**
   * Starts an attempt: its deadline is `start + floorMs + jitter`, where the start is now, or
   * `elapsedMs` ago: pass the time since the request arrived (before its body was read).
   */
  begin(options?: BeginOptions): LoginAttempt;
  /** Convenience: `begin()` then `verify(credentials)`. */
  authenticate(credentials: Credentials): Promise<LoginResult>;
  stats(): AuthenticatorStats;
}
