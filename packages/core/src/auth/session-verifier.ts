import { createTtlCache, type InvalidationBus, type InvalidationMessage } from '../cache';
import { systemClock, type Clock } from '../clock';
import { AikbError, UnavailableError, isAikbError } from '../errors';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { Principal } from '../principal';
import type { UserRecord, UserStore } from './auth';
import type { TokenClaims, TokenService } from './tokens';

/** The cache-key prefix of a user's session state on the invalidation bus: `auth:users:<id>`. */
export const USER_KEY_PREFIX = 'auth:users:';

/** The invalidation-bus key of one user's session state. */
export function userInvalidationKey(userId: string): string {
  return USER_KEY_PREFIX + userId;
}

/**
 * What {@link SessionVerifier.verify} returns for a valid token: its claims, with `roles` replaced
 * by the user's current roles, and the {@link Principal} built from them — what HTTP adapters
 * hand to primitives that decide by caller.
 */
export interface VerifiedSession extends TokenClaims {
  /** The caller, `{ userId, roles }` with the user's current roles (frozen). */
  readonly principal: Principal;
}

/**
 * Verifies user tokens against the user's current state: the signature and expiry (by the
 * {@link TokenService}), then that the user still exists, is not disabled and has the token
 * generation the token was issued at. The claims it returns carry the user's **current** roles.
 *
 * Failure policy: fails closed. A revoked token is `UNAUTHENTICATED`; when the user store cannot
 * be reached the token is refused with `UNAVAILABLE` (an HTTP 503: the client should retry, not
 * log in again), never accepted on the strength of its signature alone.
 */
export interface SessionVerifier {
  /**
   * @returns the token's claims, with `roles` replaced by the user's current roles, and the
   *   {@link Principal} (`principal`) they make
   * @throws {AikbError} `UNAUTHENTICATED` for an invalid or expired token, or one revoked (user
   *   deleted or disabled, or token generation changed: "the token has been revoked; log in again");
   *   `UNAVAILABLE` when the user store cannot be reached
   */
  verify(token: string): Promise<VerifiedSession>;
  /**
   * Forgets the cached state of `userId` on this instance at once and publishes the invalidation on
   * the bus for the others. Never throws: a failed publish is logged (the cache TTL still bounds it).
   */
  invalidate(userId: string): Promise<void>;
  /** Counters since creation, for status pages. */
  stats(): SessionVerifierStats;
  /** Stops listening to the bus (does not close the bus: whoever created it closes it). */
  close(): void;
}

/** {@link SessionVerifier.stats}. */
export interface SessionVerifierStats {
  /** Users whose state is cached (fresh or not). */
  readonly cached: number;
  /** Lookups in the user store. */
  readonly lookups: number;
  /** Tokens refused because the user was deleted, disabled or the generation changed. */
  readonly revoked: number;
  /** Tokens refused because the user store could not be reached. */
  readonly unavailable: number;
}

/** {@link createSessionVerifier} options. */
export interface SessionVerifierOptions {
  /** Checks signatures and expiry. */
  tokens: TokenService;
  /** Where the current state of users is read (only `get` is used). */
  store: Pick<UserStore, 'get'>;
  /**
   * Fans invalidations out to every instance, so a change applies at once everywhere; without one,
   * a change reaches other instances within `cacheTtlMs`.
   * @default undefined
   */
  bus?: InvalidationBus;
  /**
   * How long a user's state is reused before the store is asked again, in milliseconds: the
   * longest a change can take to apply on an instance that missed the bus message. 0 asks the store
   * for every token.
   * @default 1000
   */
  cacheTtlMs?: number;
  /**
   * Most users whose state is cached; the least recently used go first.
   * @default 10000
   */
  maxEntries?: number;
  /**
   * The cache's time source. Inject a fake one to test expiry without waiting.
   * @default systemClock
   */
  clock?: Clock;
  /** @default noopLogger */
  logger?: Logger;
}

/** The part of a user a session depends on; `null` for a user that does not exist. */
type UserState = Pick<UserRecord, 'roles' | 'disabled' | 'tokenGeneration'> | null;

const revoked = () => new AikbError('UNAUTHENTICATED', 'the token has been revoked; log in again');

/**
 * Creates a {@link SessionVerifier}.
 *
 * @throws {TypeError} naming the option when `tokens`, `store`, `bus`, `cacheTtlMs`, `maxEntries`
 *   or `clock` is invalid
 * @example
 * ```ts
 * const sessions = createSessionVerifier({ tokens, store, bus })
 * const users = createUserDirectory({ store, hasher, onChange: (c) => sessions.invalidate(c.userId) })
 * app.use('/api/admin', adminGuard({ adminToken, sessions }))
 * ```
 */
export function createSessionVerifier(options: SessionVerifierOptions): SessionVerifier {
  const check = checkOptions('createSessionVerifier', options);
  check.object('tokens', 'a TokenService', true, ['verify']);
  check.object('store', 'a UserStore', true, ['get']);
  check.object('bus', 'an InvalidationBus', false, ['publish', 'subscribe', 'onStateChange']);
  check.number('cacheTtlMs', { min: 0, max: 60_000, integer: true });
  check.number('maxEntries', { min: 1, integer: true });
  check.clock();
  check.logger();
  const { tokens, store, bus } = options;
  const cacheTtlMs = options.cacheTtlMs ?? 1000;
  const maxEntries = options.maxEntries ?? 10_000;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? noopLogger;

  const cache = cacheTtlMs > 0 ? createTtlCache<UserState>({ ttlMs: cacheTtlMs, maxEntries, clock }) : undefined;
  /** One store lookup per user at a time, shared by every token of that user verified meanwhile. */
  const inFlight = new Map<string, Promise<UserState>>();
  /** Raised by every invalidation: a lookup that started before one must not fill the cache. */
  let epoch = 0;
  const counters = { lookups: 0, revoked: 0, unavailable: 0 };

  const forget = (pattern: string) => {
    epoch += 1;
    cache?.invalidate(pattern);
    if (!/[*?]/.test(pattern)) inFlight.delete(pattern);
    else inFlight.clear();
  };
  const onMessage = (message: InvalidationMessage) => {
    if (message.key.startsWith(USER_KEY_PREFIX) || /[*?]/.test(message.key)) forget(message.key);
  };
  const unsubscribe = bus
    ? [
        bus.subscribe(onMessage),
        // Back from a disconnection: messages may have been lost, so trust nothing cached.
        bus.onStateChange((state) => {
          if (state === 'connected') forget(`${USER_KEY_PREFIX}*`);
        }),
      ]
    : [];

  async function lookup(key: string, userId: string): Promise<UserState> {
    const started = epoch;
    counters.lookups += 1;
    const user = await store.get(userId);
    const state: UserState = user ? { roles: Object.freeze([...user.roles]), disabled: user.disabled, tokenGeneration: user.tokenGeneration } : null;
    if (cache && started === epoch) cache.set(key, state);
    return state;
  }

  function stateOf(userId: string): Promise<UserState> {
    const key = userInvalidationKey(userId);
    const entry = cache?.peek(key);
    if (entry && cache!.isFresh(entry)) return Promise.resolve(entry.value);
    const shared = inFlight.get(key);
    if (shared) return shared;
    const pending = lookup(key, userId);
    inFlight.set(key, pending);
    const done = () => {
      if (inFlight.get(key) === pending) inFlight.delete(key);
    };
    pending.then(done, done);
    return pending;
  }

  return {
    async verify(token) {
      const claims = await tokens.verify(token);
      let state: UserState;
      try {
        state = await stateOf(claims.userId);
      } catch (cause) {
        counters.unavailable += 1;
        logger.warn({ err: cause, userId: claims.userId }, 'session check: the user store is unavailable; refusing the token');
        throw new UnavailableError('cannot check the token against the user database right now; try again shortly', { cause });
      }
      if (state === null || state.disabled || state.tokenGeneration !== claims.tokenGeneration) {
        counters.revoked += 1;
        throw revoked();
      }
      const principal: Principal = Object.freeze({ userId: claims.userId, roles: state.roles });
      return { ...claims, roles: state.roles, principal };
    },
    async invalidate(userId) {
      const key = userInvalidationKey(userId);
      forget(key);
      if (!bus) return;
      try {
        await bus.publish({ key, version: 0 });
      } catch (error) {
        logger.warn(
          { err: error, userId },
          `session invalidation not published (${isAikbError(error) ? error.message : 'bus error'}); other instances apply it within ${cacheTtlMs} ms`,
        );
      }
    },
    stats: () => ({ cached: cache?.size ?? 0, ...counters }),
    close() {
      for (const off of unsubscribe.splice(0)) off();
    },
  };
}
