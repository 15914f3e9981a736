import type { Meter } from '@opentelemetry/api';
import type { InvalidationBus, InvalidationBusState } from '../cache/cache';
import type { Clock } from '../clock';
import type { Logger } from '../logger';

/** A feature flag as stored. */
export interface Flag {
  /** Matches `^[a-z0-9][a-z0-9_.-]{0,127}$`. */
  readonly name: string;
  readonly enabled: boolean;
  /** An integer from 0 to 100. */
  readonly rolloutPercentage: number;
  readonly description: string;
  /** When the flag last changed, ISO 8601. */
  readonly lastUpdated: string;
  /** Increases with every change (strictly, across all flags of a store). */
  readonly version: number;
}

/** The fields of a flag a change can set. */
export interface FlagPatch {
  readonly enabled?: boolean;
  readonly rolloutPercentage?: number;
  readonly description?: string;
}

/** A whole flag definition, for creating or replacing one. */
export interface FlagDefinition {
  readonly enabled: boolean;
  readonly rolloutPercentage: number;
  /** @default '' */
  readonly description?: string;
}

/** The part of a flag an audit record shows before and after a change. */
export type FlagState = Pick<Flag, 'enabled' | 'rolloutPercentage' | 'description'>;

/** One audit record: who changed what, when. */
export interface FlagChange {
  readonly name: string;
  /** The version the change produced. */
  readonly version: number;
  /** `undefined` when the change created the flag. */
  readonly before: FlagState | undefined;
  readonly after: FlagState;
  /** Who made the change (`admin`, a user id, `seed`, ...). */
  readonly actor: string;
  /** ISO 8601. */
  readonly at: string;
}

/**
 * Where flags live. Implementations: {@link createMemoryFlagStore} and
 * {@link createPostgresFlagStore}. Every write records a {@link FlagChange} in the same
 * transaction. Inputs are validated by the client before they reach a store.
 */
export interface FlagStore {
  get(name: string): Promise<Flag | undefined>;
  /** Every flag, by name. */
  list(): Promise<Flag[]>;
  /** Creates the flag or replaces its definition. */
  put(name: string, definition: FlagDefinition, actor: string): Promise<{ flag: Flag; created: boolean }>;
  /** Applies `patch`; `undefined` when there is no such flag (nothing is written). */
  update(name: string, patch: FlagPatch, actor: string): Promise<Flag | undefined>;
  /** Creates the flag only if it does not exist; returns the flag as it is now. */
  ensure(name: string, definition: FlagDefinition, actor: string): Promise<Flag>;
  /** The audit trail of one flag, newest first. */
  history(name: string, options?: { limit?: number }): Promise<FlagChange[]>;
  /**
   * Applies `patch` to every named flag it would change, all of them or none (one transaction),
   * with one audit record each. Names it does not hold, and flags the patch would leave as they
   * are, are skipped: nothing is written for them.
   *
   * Optional so that existing stores keep working: without it, the client applies the patch one
   * flag at a time (each change durable on its own, the batch not atomic).
   * @returns the changes made, by name
   */
  updateMany?(names: readonly string[], patch: FlagPatch, actor: string): Promise<FlagChange[]>;
  /**
   * A cheap change marker: a number that changes (increases) with every committed write to any
   * flag, whatever order concurrent writes commit in. Clients poll it (about once a second) while
   * their invalidation bus is down and reload the flags only when it moved.
   *
   * Optional so that existing stores keep working: without it, a client whose bus is down reloads
   * every flag (`list`) on each poll instead.
   */
  changeMarker?(): Promise<number>;
}

/** What an evaluation was decided by. */
export type FlagReason =
  /** The flag is disabled. */
  | 'DISABLED'
  /** Rollout is 0% or 100%: the same answer for everyone. */
  | 'STATIC'
  /** The user's bucket decided. */
  | 'SPLIT'
  /** A partial rollout without a userId: a random draw. */
  | 'RANDOM'
  /** The flag is unknown (or not loaded yet): the caller's default. */
  | 'DEFAULT';

/** Who is asking: `userId` decides the rollout bucket. */
export interface EvaluationContext {
  readonly userId?: string;
}

/** A decision with its explanation (`FeatureFlagClient.evaluate`). */
export interface FlagEvaluation {
  readonly name: string;
  readonly value: boolean;
  readonly reason: FlagReason;
  /** The user's bucket (1–100) when a userId was given and the flag is known. */
  readonly bucket: number | undefined;
  readonly rolloutPercentage: number | undefined;
  /** The version of the flag the decision used. */
  readonly version: number | undefined;
  /** True when the cached flag is past its TTL, invalidated, or the bus is disconnected. */
  readonly stale: boolean;
  /** Milliseconds since the flag was loaded into this instance's cache. */
  readonly cacheAgeMs: number | undefined;
}

/**
 * How a change made through this instance reaches the others now ({@link FeatureFlagClient.propagation}).
 * - `ok`: the bus is connected and the last publish went out: other instances have it at once.
 * - `degraded`: the bus is disconnected, or a publish failed. The write is durable in the store;
 *   other instances poll the store's change marker while their bus is down (and this one retries
 *   the publish), so they converge within `convergesWithinMs`.
 * - `none`: no bus: other instances see a change when their cached copy expires.
 */
export interface FlagPropagation {
  /** The bus kind (`redis`, `postgres`, `in-process`), or `none`. */
  readonly bus: string;
  readonly status: 'ok' | 'degraded' | 'none';
  /**
   * The longest another instance should take to see a change made now, in milliseconds: `0`
   * when `ok`, two poll intervals when `degraded`, the cache TTL with no bus. (An instance that has
   * not noticed yet that its own bus is down, e.g. behind a silent network partition, can take
   * longer.)
   */
  readonly convergesWithinMs: number;
}

/** How old one cached flag is ({@link FlagClientStats.cache}). */
export interface FlagCacheEntryStats {
  /** Milliseconds since the flag was loaded into this instance's cache. */
  readonly ageMs: number;
  /** Past its TTL or invalidated: served as the last known value while it is reloaded. */
  readonly stale: boolean;
}

/**
 * {@link FeatureFlagClient.stats}: the client's own state, now, as plain JSON — for status pages
 * (`GET /api/admin/system/status`), the cache-info listing and metrics.
 */
export interface FlagClientStats {
  /** Flags held in the cache (flags the store does not have are not counted). */
  readonly flags: number;
  readonly cache: {
    /** Cache entries, including remembered misses. */
    readonly size: number;
    /** Entries past their TTL or invalidated, kept as fallbacks. */
    readonly staleEntries: number;
    /** Milliseconds since the oldest entry was loaded; `0` when empty. */
    readonly ageMs: number;
    readonly ttlMs: number;
    /** Evaluations answered from a fresh entry since the client started. */
    readonly hits: number;
    /** Evaluations that found no entry or a stale one (which starts a reload). */
    readonly misses: number;
    /** Every cached flag, by name. */
    readonly flags: Readonly<Record<string, FlagCacheEntryStats>>;
  };
  /** Per flag, evaluations since the client started (flags never evaluated are left out). */
  readonly evaluations: Readonly<Record<string, { readonly enabled: number; readonly disabled: number }>>;
  readonly bus: { readonly kind: string; readonly state: InvalidationBusState | 'none' };
  /** True while the bus is disconnected or the last refresh failed. */
  readonly stale: boolean;
  /** Whether changes reach other instances at once, or through polling (see {@link FlagPropagation}). */
  readonly propagation: FlagPropagation;
  /** True while this instance polls the store's change marker (its bus is down). */
  readonly polling: boolean;
  /** When the last full reload succeeded, ISO 8601. */
  readonly lastRefresh: string | undefined;
  readonly lastRefreshError: string | undefined;
}

/** {@link createFeatureFlagClient} options. */
export interface FeatureFlagClientOptions {
  /** Where flags live. */
  store: FlagStore;
  /**
   * Fans changes out to other instances. Without one, other instances see a change when their
   * cached copy expires (`cacheTtlMs`).
   * @default undefined (no fan-out)
   */
  bus?: InvalidationBus;
  /**
   * How long a flag is served from memory before it is reloaded, in milliseconds.
   * @default 300000 (5 minutes)
   */
  cacheTtlMs?: number;
  /**
   * Reads time for cache ages and expiry, and sets the polling timer (unref'd: it never keeps a
   * process alive). Inject a fake one (or use fake timers) to test expiry and polling.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Random numbers in [0, 1), for partial rollouts evaluated without a userId.
   * @default Math.random
   */
  random?: () => number;
  /**
   * While the bus is not `connected`, how often the store's change marker is polled so that changes
   * made through other instances still arrive; also how often a failed publish is retried. Polling
   * stops after one reconciling reload once the bus is back. In milliseconds.
   * @default 1000
   */
  pollIntervalMs?: number;
  /** @default noopLogger */
  logger?: Logger;
  /**
   * Where the client's metrics are recorded, read at collection time (evaluation only bumps plain
   * counters): the observable counters `aikb.feature_flag.evaluations` (`flag`, `result` =
   * `enabled` | `disabled`) and `aikb.cache.requests` (`cache` = `feature_flags`, `result` = `hit` |
   * `miss`), and the observable gauges `aikb.feature_flag.stale` (1 while flags may be stale) and
   * `aikb.feature_flag.propagation_degraded` (1 while changes reach other instances only by
   * polling). They stop reporting on `close()`.
   * @default metrics.getMeter('@aikb/core') from @opentelemetry/api (a no-op without an SDK)
   */
  meter?: Meter;
}

/**
 * Feature flags served from memory, kept in step with a {@link FlagStore} across instances.
 *
 * Failure policy: evaluation never throws and never waits. An unknown flag gives the caller's
 * default; a flag whose store is down when it expires keeps its last known value (marked stale)
 * instead of flipping users to the default. Writes go to the store first and fail with a typed
 * error (`ValidationError`, `NOT_FOUND`, `UNAVAILABLE`) having changed nothing. A write that
 * committed never fails because the bus is down: the publish is retried, other instances poll the
 * store's change marker while their bus is down, and {@link FeatureFlagClient.propagation} says so.
 */
export interface FeatureFlagClient {
  /** Loads every flag and starts listening to the bus. Resolves even when the store is down (then: stale). */
  start(): Promise<void>;
  /**
   * `enabled && bucket <= rolloutPercentage`, from memory, with no I/O. An expired flag is served
   * while it is reloaded in the background. Never throws.
   *
   * Without a `userId`, 0% and 100% are exact, and a partial rollout is a random draw per call
   * (`random() * 100 < rolloutPercentage`): pass a `userId` wherever a user should get the same
   * answer every time. A flag not loaded yet gives `defaultValue` and is loaded in the background.
   * @param defaultValue what an unknown flag gives (default `false`)
   */
  isEnabled(name: string, context?: EvaluationContext, defaultValue?: boolean): boolean;
  /** Like `isEnabled`, with the reason, bucket and cache age. Never throws. */
  evaluate(name: string, context?: EvaluationContext, defaultValue?: boolean): FlagEvaluation;
  /** The flag as the store has it now (also refreshing this instance's cached copy). */
  getFlag(name: string): Promise<Flag | undefined>;
  /** Every flag as the store has it now. */
  listFlags(): Promise<Flag[]>;
  /**
   * Changes a flag and publishes the change.
   * @throws {ValidationError} naming the bad field; nothing changes
   * @throws {NotFoundError} with `similar`: the flags whose names start with `name` (see `similarNames`)
   */
  updateFlag(name: string, patch: FlagPatch, options?: { actor?: string }): Promise<Flag>;
  /**
   * Creates or replaces a flag and publishes the change.
   * @throws {ValidationError} naming the bad field; nothing changes
   */
  putFlag(name: string, definition: FlagDefinition, options?: { actor?: string }): Promise<{ flag: Flag; created: boolean }>;
  /**
   * Applies `patch` to every flag whose name matches `pattern` (a name, or a glob where `*`
   * matches any run of characters and `?` one: `priority_*`) and publishes the changes. Flags
   * the patch would not change are left alone and not recorded; with a store that has
   * `updateMany` (both built-in stores do), the changes commit together or not at all. A flag
   * created while the call runs may be missed. This is the emergency rollback:
   * `updateFlags('priority_*', { rolloutPercentage: 0 })`.
   * @throws {ValidationError} naming `pattern` or the bad field of `patch`; nothing changes
   * @returns the audit records of the changes (each with the state `before` it), by name
   */
  updateFlags(pattern: string, patch: FlagPatch, options?: { actor?: string }): Promise<FlagChange[]>;
  /** Creates the flag if it does not exist yet (seeding); never overwrites. */
  ensureFlag(name: string, definition: FlagDefinition): Promise<Flag>;
  /** The audit trail, newest first. */
  history(name: string, options?: { limit?: number }): Promise<FlagChange[]>;
  /**
   * Invalidates cache keys (`feature_flags:<name>`, or globs such as `feature_flags:*`) here and,
   * through the bus, on every instance; the flags are reloaded at once.
   * @throws {ValidationError} for a key outside `feature_flags:` (field `keys[i]`)
   * @returns the keys that matched a cached flag on this instance
   */
  invalidate(keys: readonly string[]): Promise<string[]>;
  /** Reloads every flag from the store. Rejects when the store is down (cached values stay). */
  refresh(): Promise<void>;
  /**
   * Whether a change made through this instance reaches the others at once (`ok`), only through
   * polling (`degraded`: bus down or a publish failed; the write itself is durable), or at TTL
   * expiry (`none`: no bus). Read it right after a write to tell the caller.
   */
  propagation(): FlagPropagation;
  /** The client's state now (cache ages per flag, bus, propagation, counters), as plain JSON. */
  stats(): FlagClientStats;
  /**
   * Calls `listener` with the names of flags whose cached value changed (after a write, an
   * invalidation or a refresh here or on another instance).
   * @returns a function that removes it
   */
  onChange(listener: (names: readonly string[]) => void): () => void;
  /** Stops listening to the bus (does not close the bus or the store). */
  close(): Promise<void>;
}
