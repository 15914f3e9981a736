import { randomUUID } from 'node:crypto';
import type { BatchObservableCallback, Meter } from '@opentelemetry/api';
import type { CacheEntry, InvalidationMessage, TtlCache } from '../cache/cache';
import { createTtlCache } from '../cache/create-ttl-cache';
import { globMatcher, isGlob } from '../cache/internal/glob';
import { systemClock, unrefTimer } from '../clock';
import { NotFoundError, UnavailableError, ValidationError, isAikbError } from '../errors';
import { resolveMeter } from '../internal/meter';
import { noopLogger } from '../logger';
import { checkOptions } from '../options';
import { bucketsFor } from './bucket';
import type {
  EvaluationContext,
  FeatureFlagClient,
  FeatureFlagClientOptions,
  Flag,
  FlagChange,
  FlagClientStats,
  FlagDefinition,
  FlagEvaluation,
  FlagPatch,
  FlagPropagation,
  FlagReason,
} from './flags';
import { checkDefinition, checkName, checkPatch } from './internal/validate';

/** The cache-key prefix of every flag: `feature_flags:<name>`. */
export const FLAG_KEY_PREFIX = 'feature_flags:';
/** After a failed background load, the same flag is not retried for this long. */
const RETRY_AFTER_MS = 1000;
/** Failed publishes kept for retry, by key; beyond this they collapse into one `feature_flags:*`. */
const MAX_PENDING_PUBLISHES = 100;

/** Per flag name, for as long as the client lives: evaluation counts and the bucket function. */
interface Slot {
  enabled: number;
  disabled: number;
  readonly bucket: (userId: string) => number;
}

/** What the cache holds per flag: the flag (`null` when the store has none) and its slot. */
interface Cached {
  readonly flag: Flag | null;
  readonly slot: Slot;
}

function resolveOptions(options: FeatureFlagClientOptions) {
  const check = checkOptions('createFeatureFlagClient', options);
  check.object('store', 'a FlagStore', true, ['get', 'list']);
  check.object('bus', 'an InvalidationBus', false, ['publish', 'subscribe']);
  check.number('cacheTtlMs', { min: 0, exclusiveMin: true });
  check.clock();
  check.function('random');
  check.number('pollIntervalMs', { min: 10 });
  check.logger();
  return Object.freeze({
    store: options.store,
    bus: options.bus,
    cacheTtlMs: options.cacheTtlMs ?? 300_000,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    logger: options.logger ?? noopLogger,
    meter: resolveMeter('createFeatureFlagClient', options.meter),
  });
}

/**
 * Creates a {@link FeatureFlagClient}. Call `start()` before serving traffic, so that flags are
 * in memory when the first request evaluates them.
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 *
 * @example
 * ```ts
 * const flags = createFeatureFlagClient({ store: createPostgresFlagStore({ pool: db.pool }), bus: createRedisInvalidationBus({ redis }) })
 * await flags.start()
 * if (flags.isEnabled('priority_2_1_saga_pattern', { userId })) { ... }
 * await flags.updateFlag('priority_2_1_saga_pattern', { rolloutPercentage: 0 }, { actor: 'ops' })   // every instance, at once
 * ```
 */
export function createFeatureFlagClient(options: FeatureFlagClientOptions): FeatureFlagClient {
  const { store, bus, cacheTtlMs, clock, random, pollIntervalMs, logger, meter } = resolveOptions(options);
  const origin = randomUUID();
  const cache: TtlCache<Cached> = createTtlCache<Cached>({
    ttlMs: cacheTtlMs,
    clock,
    onEvict: (key) => entries.delete(key.slice(FLAG_KEY_PREFIX.length)),
  });
  // The hot path looks flags up by name here (the same entry objects the cache holds, so expiry and
  // invalidation show through), sparing a key concatenation and an LRU reorder per evaluation.
  const entries = new Map<string, CacheEntry<Cached>>();
  const slots = new Map<string, Slot>();
  const loading = new Map<string, Promise<void>>();
  const retryAt = new Map<string, number>();
  const changeListeners = new Set<(names: readonly string[]) => void>();
  let hits = 0;
  let misses = 0;
  let busDown = bus !== undefined && bus.state !== 'connected';
  let wasDisconnected = false;
  let lastRefresh: string | undefined;
  let lastRefreshError: string | undefined;
  let started = false;
  let closed = false;
  const unsubscribe: Array<() => void> = [];
  // Degraded propagation: publishes that failed (retried every poll), and the poll of the store's
  // change marker that runs while the bus is down.
  const pendingPublishes = new Map<string, InvalidationMessage>();
  let pollTimer: unknown;
  let polling = false;
  let pollAgain = false;
  let lastMarker: number | undefined;
  let reconcile = false;
  let pollFailing = false;

  const keyOf = (name: string) => FLAG_KEY_PREFIX + name;

  // Read at collection time: the hot path only bumps the plain counters above.
  const instruments = flagInstruments(meter);
  const observe: BatchObservableCallback = (result) => {
    for (const [flag, slot] of slots) {
      if (slot.enabled > 0) result.observe(instruments.evaluations, slot.enabled, { flag, result: 'enabled' });
      if (slot.disabled > 0) result.observe(instruments.evaluations, slot.disabled, { flag, result: 'disabled' });
    }
    if (hits > 0) result.observe(instruments.cacheRequests, hits, { cache: 'feature_flags', result: 'hit' });
    if (misses > 0) result.observe(instruments.cacheRequests, misses, { cache: 'feature_flags', result: 'miss' });
    result.observe(instruments.stale, busDown || lastRefreshError !== undefined ? 1 : 0);
    result.observe(instruments.degraded, propagation().status === 'degraded' ? 1 : 0);
  };
  const observed = Object.values(instruments);
  meter.addBatchObservableCallback(observe, observed);

  function slotFor(name: string): Slot {
    let slot = slots.get(name);
    if (!slot) slots.set(name, (slot = { enabled: 0, disabled: 0, bucket: bucketsFor(name) }));
    return slot;
  }

  function emitChange(names: string[]): void {
    if (names.length === 0) return;
    for (const listener of [...changeListeners]) {
      try {
        listener(names);
      } catch (error) {
        logger.error({ err: error }, 'feature flag change listener threw');
      }
    }
  }

  /**
   * Puts what the store returned into the cache unless the cache already holds a newer version:
   * a slow read or a late message can never roll a flag back.
   * @returns true when the cached value changed
   */
  function install(name: string, flag: Flag | null): boolean {
    const key = keyOf(name);
    const existing = cache.peek(key);
    const current = existing?.value.flag;
    if (current && (flag === null || flag.version < current.version)) return false;
    entries.set(name, cache.set(key, { flag, slot: slotFor(name) }));
    return existing === undefined ? flag !== null : current?.version !== flag?.version;
  }

  function load(name: string): Promise<void> {
    const pending = loading.get(name);
    if (pending) return pending;
    const promise = store
      .get(name)
      .then(
        (flag) => {
          retryAt.delete(name);
          if (install(name, flag ?? null)) emitChange([name]);
        },
        (error: unknown) => {
          retryAt.set(name, clock.now() + RETRY_AFTER_MS);
          lastRefreshError = (error as Error)?.message ?? String(error);
          logger.warn({ err: error, flag: name }, `feature flag ${name}: store unreachable, serving the last known value`);
        },
      )
      .finally(() => loading.delete(name));
    loading.set(name, promise);
    return promise;
  }

  /** Starts a background load of `name` unless one is running or it failed a moment ago. */
  function loadInBackground(name: string): void {
    if (closed || loading.has(name)) return;
    const at = retryAt.get(name);
    if (at !== undefined && clock.now() < at) return;
    if (!checkNameQuietly(name)) return;
    void load(name);
  }

  function decide(flag: Flag, userId: string | undefined): { value: boolean; reason: FlagReason; bucket: number | undefined } {
    const bucket = userId === undefined ? undefined : slotFor(flag.name).bucket(userId);
    if (!flag.enabled) return { value: false, reason: 'DISABLED', bucket };
    const percentage = flag.rolloutPercentage;
    if (percentage >= 100) return { value: true, reason: 'STATIC', bucket };
    if (percentage <= 0) return { value: false, reason: 'STATIC', bucket };
    if (bucket === undefined) return { value: random() * 100 < percentage, reason: 'RANDOM', bucket };
    return { value: bucket <= percentage, reason: 'SPLIT', bucket };
  }

  async function refresh(): Promise<void> {
    let flags: Flag[];
    try {
      flags = await store.list();
    } catch (error) {
      lastRefreshError = (error as Error)?.message ?? String(error);
      // The store's own text stays in `cause` (and the status report), never in a message a client may see.
      throw isAikbError(error) ? error : new UnavailableError('could not load feature flags: the flag store is unavailable', { cause: error });
    }
    const changed: string[] = [];
    for (const flag of flags) if (install(flag.name, flag)) changed.push(flag.name);
    lastRefresh = new Date(clock.now()).toISOString();
    lastRefreshError = undefined;
    emitChange(changed);
  }

  function refreshQuietly(why: string): Promise<void> {
    return refresh().catch((error: unknown) => {
      logger.warn({ err: error }, `feature flags: refresh after ${why} failed; serving cached values until the store is back`);
    });
  }

  function onMessage(message: InvalidationMessage): void {
    if (closed || !message.key.startsWith(FLAG_KEY_PREFIX)) return;
    if (isGlob(message.key)) {
      cache.invalidate(message.key);
      void refreshQuietly('an invalidation');
      return;
    }
    const name = message.key.slice(FLAG_KEY_PREFIX.length);
    const current = cache.peek(message.key)?.value.flag;
    if (message.version > 0 && current && message.version <= current.version) return; // old news
    const carried = message.value;
    if (message.version > 0 && isFlag(carried) && carried.name === name && carried.version === message.version) {
      if (install(name, carried)) emitChange([name]);
      return;
    }
    cache.invalidate(message.key);
    void load(name);
  }

  async function publish(key: string, version: number, value?: Flag): Promise<void> {
    if (!bus) return;
    const message: InvalidationMessage = { key, version, origin, ...(value ? { value } : {}) };
    try {
      await bus.publish(message);
      pendingPublishes.delete(key);
    } catch (error) {
      // The write is committed. Instances whose bus is down poll the store; for those whose bus
      // is up, the publish is retried every poll interval until it goes out.
      keepForRetry(message);
      logger.warn(
        { err: error, key },
        `feature flags: could not publish the invalidation of ${key}; retrying every ${pollIntervalMs} ms, and instances whose bus is down poll the store`,
      );
      schedulePoll();
    }
  }

  function keepForRetry(message: InvalidationMessage): void {
    const all = keyOf('*');
    if (pendingPublishes.has(all)) return; // already asking everyone to reload everything
    pendingPublishes.set(message.key, message);
    if (pendingPublishes.size > MAX_PENDING_PUBLISHES) {
      pendingPublishes.clear();
      pendingPublishes.set(all, { key: all, version: 0, origin });
    }
  }

  /** Polling runs while the bus is down, publishes wait for a retry, or a reconnect is not reconciled yet. */
  function degraded(): boolean {
    return busDown || reconcile || pendingPublishes.size > 0;
  }

  function schedulePoll(): void {
    if (closed || !started || pollTimer !== undefined || polling || !degraded()) return;
    pollTimer = clock.setTimeout(() => {
      pollTimer = undefined;
      void poll();
    }, pollIntervalMs);
    unrefTimer(pollTimer);
  }

  /** Polls now (or right after the round under way), not at the next interval. */
  function pollSoon(): void {
    if (!started || closed) return;
    if (polling) {
      pollAgain = true;
      return;
    }
    if (pollTimer !== undefined) clock.clearTimeout(pollTimer);
    pollTimer = undefined;
    void poll();
  }

  /**
   * One round of degraded propagation. While the bus is down: read the store's change marker and
   * reload every flag when it moved (the first round sets the baseline, so it reloads). Once the
   * bus is back: one reconciling reload (messages sent meanwhile were lost), and retries of failed
   * publishes. Everything goes through `install`, so nothing ever moves backwards.
   */
  async function poll(): Promise<void> {
    if (closed || polling) return;
    polling = true;
    try {
      if (busDown) {
        // Read the marker before the list: a write that lands in between moves the marker again,
        // so the next round reloads once more instead of missing it.
        const marker = store.changeMarker ? await store.changeMarker() : undefined;
        if (marker === undefined || marker !== lastMarker) {
          await refresh();
          lastMarker = marker;
        }
      } else if (reconcile) {
        await refresh();
        reconcile = false;
      }
      if (!busDown) {
        for (const message of [...pendingPublishes.values()]) {
          await bus!.publish(message);
          if (pendingPublishes.get(message.key) === message) pendingPublishes.delete(message.key);
        }
      }
      if (pollFailing) logger.info({}, 'feature flags: degraded propagation recovered');
      pollFailing = false;
    } catch (error) {
      if (!pollFailing) logger.warn({ err: error }, `feature flags: polling the store or republishing failed; retrying every ${pollIntervalMs} ms`);
      pollFailing = true;
    } finally {
      polling = false;
      if (pollAgain) {
        pollAgain = false;
        pollSoon();
      } else schedulePoll();
    }
  }

  function propagation(): FlagPropagation {
    if (!bus) return { bus: 'none', status: 'none', convergesWithinMs: cacheTtlMs };
    if (!degraded()) return { bus: bus.kind, status: 'ok', convergesWithinMs: 0 };
    // A poll interval for the others to notice, one more for a round trip that was already under way.
    return { bus: bus.kind, status: 'degraded', convergesWithinMs: 2 * pollIntervalMs };
  }

  async function writeThrough(flag: Flag): Promise<void> {
    if (install(flag.name, flag)) emitChange([flag.name]);
    await publish(keyOf(flag.name), flag.version, flag);
  }

  /** `updateFlags` over a store without `updateMany`: each change durable on its own. */
  async function updateOneByOne(names: readonly string[], patch: FlagPatch, actor: string): Promise<FlagChange[]> {
    const changes: FlagChange[] = [];
    for (const name of names) {
      const before = await store.get(name);
      if (!before || Object.entries(patch).every(([field, value]) => before[field as keyof FlagPatch] === value)) continue;
      const after = await store.update(name, patch, actor);
      if (!after) continue;
      const state = (f: Flag) => ({ enabled: f.enabled, rolloutPercentage: f.rolloutPercentage, description: f.description });
      changes.push({ name, version: after.version, before: state(before), after: state(after), actor, at: after.lastUpdated });
    }
    return changes;
  }

  async function storeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isAikbError(error)) throw error;
      throw new UnavailableError(`could not ${what}: the flag store is unavailable`, { cause: error });
    }
  }

  function evaluate(name: string, context?: EvaluationContext, defaultValue = false): FlagEvaluation {
    try {
      const entry = entries.get(name);
      if (entry === undefined) {
        misses++;
        loadInBackground(name);
        return unknown(name, defaultValue, true);
      }
      const now = clock.now();
      const fresh = now < entry.expiresAtMs;
      if (fresh) hits++;
      else {
        misses++;
        loadInBackground(name);
      }
      const flag = entry.value.flag;
      const cacheAgeMs = Math.max(0, now - entry.storedAtMs);
      if (flag === null) return { ...unknown(name, defaultValue, !fresh || busDown), cacheAgeMs };
      const userId = typeof context?.userId === 'string' ? context.userId : undefined;
      const { value, reason, bucket } = decide(flag, userId);
      if (value) entry.value.slot.enabled++;
      else entry.value.slot.disabled++;
      return { name, value, reason, bucket, rolloutPercentage: flag.rolloutPercentage, version: flag.version, stale: !fresh || busDown, cacheAgeMs };
    } catch (error) {
      logger.error({ err: error, flag: name }, 'feature flag evaluation failed; returning the default');
      return unknown(name, defaultValue, true);
    }
  }

  return {
    async start() {
      if (started) return;
      started = true;
      if (bus) {
        unsubscribe.push(bus.subscribe(onMessage));
        unsubscribe.push(
          bus.onStateChange((state) => {
            if (state === 'connected') {
              busDown = false;
              lastMarker = undefined;
              // Messages sent while we were away are lost: assume we missed some. One reconciling
              // reload (and the retry of failed publishes), then polling stops.
              if (wasDisconnected) reconcile = true;
              wasDisconnected = false;
            } else {
              busDown = true;
              wasDisconnected = true;
            }
            // At once, not a poll interval later: the first round while down sets the baseline.
            pollSoon();
          }),
        );
        busDown = bus.state !== 'connected';
        wasDisconnected = busDown;
      }
      if (busDown) await poll();
      else await refreshQuietly('start-up');
    },

    isEnabled(name, context, defaultValue = false) {
      // The hot path: one map lookup, one clock read, at most one hash; no I/O, no promise.
      try {
        const entry = entries.get(name);
        if (entry === undefined) {
          misses++;
          loadInBackground(name);
          return defaultValue;
        }
        if (clock.now() < entry.expiresAtMs) hits++;
        else {
          misses++;
          loadInBackground(name);
        }
        const flag = entry.value.flag;
        if (flag === null) return defaultValue;
        let value: boolean;
        if (!flag.enabled) value = false;
        else if (flag.rolloutPercentage >= 100) value = true;
        else if (flag.rolloutPercentage <= 0) value = false;
        else {
          const userId = context?.userId;
          value = typeof userId === 'string' ? entry.value.slot.bucket(userId) <= flag.rolloutPercentage : random() * 100 < flag.rolloutPercentage;
        }
        if (value) entry.value.slot.enabled++;
        else entry.value.slot.disabled++;
        return value;
      } catch (error) {
        logger.error({ err: error, flag: name }, 'feature flag evaluation failed; returning the default');
        return defaultValue;
      }
    },

    evaluate,

    async getFlag(name) {
      checkName(name);
      const flag = await storeCall('read the flag', () => store.get(name));
      // A fresh read is as good as a reload: keep it (never over a newer cached version).
      if (flag && install(name, flag)) emitChange([name]);
      return flag;
    },

    async listFlags() {
      return storeCall('list flags', () => store.list());
    },

    async updateFlag(name, patch: FlagPatch, { actor = 'api' } = {}) {
      checkName(name);
      const checked = checkPatch(patch);
      const flag = await storeCall('update the flag', () => store.update(name, checked, actor));
      if (!flag) {
        const names = (await storeCall('list flags', () => store.list())).map((f) => f.name);
        throw NotFoundError.named('flag', name, names, { hint: 'nothing was changed (create one with PUT)' });
      }
      await writeThrough(flag);
      return flag;
    },

    async putFlag(name, definition: FlagDefinition, { actor = 'api' } = {}) {
      checkName(name);
      const checked = checkDefinition(definition);
      const result = await storeCall('save the flag', () => store.put(name, checked, actor));
      await writeThrough(result.flag);
      return result;
    },

    async updateFlags(pattern, patch: FlagPatch, { actor = 'api' } = {}) {
      if (typeof pattern !== 'string' || !(isGlob(pattern) ? checkNameQuietly(pattern.replace(/[*?]/g, 'a')) : checkNameQuietly(pattern)))
        throw new ValidationError('pattern', 'pattern must be a flag name or a glob of one, such as "priority_*"');
      const checked = checkPatch(patch);
      const matches = globMatcher(pattern);
      const names = (await storeCall('list flags', () => store.list())).map((f) => f.name).filter(matches);
      if (names.length === 0) return [];
      const changes = await storeCall('update the flags', () =>
        store.updateMany ? store.updateMany(names, checked, actor) : updateOneByOne(names, checked, actor),
      );
      for (const change of changes) await writeThrough({ name: change.name, ...change.after, lastUpdated: change.at, version: change.version });
      return changes;
    },

    async ensureFlag(name, definition) {
      checkName(name);
      const checked = checkDefinition(definition);
      const flag = await storeCall('create the flag', () => store.ensure(name, checked, 'seed'));
      if (install(flag.name, flag)) emitChange([flag.name]);
      return flag;
    },

    async history(name, { limit = 100 } = {}) {
      checkName(name);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError('limit', 'limit must be an integer from 1 to 1000');
      return storeCall('read the history', () => store.history(name, { limit }));
    },

    async invalidate(keys) {
      const input: unknown = keys; // checked as untyped input: narrowing `keys` itself would make it any[]
      if (!Array.isArray(input) || keys.length === 0)
        throw new ValidationError('keys', 'keys must be a non-empty array of cache keys such as "feature_flags:name" or "feature_flags:*"');
      keys.forEach((key, i) => {
        if (typeof key !== 'string' || !key.startsWith(FLAG_KEY_PREFIX) || key.length === FLAG_KEY_PREFIX.length) {
          throw new ValidationError(`keys[${i}]`, `keys[${i}] must be a cache key starting with "${FLAG_KEY_PREFIX}" (e.g. "feature_flags:*")`);
        }
        const rest = key.slice(FLAG_KEY_PREFIX.length);
        if (!isGlob(rest) && !checkNameQuietly(rest)) throw new ValidationError(`keys[${i}]`, `keys[${i}] names no valid flag: ${rest}`);
      });
      const matched = new Set<string>();
      for (const key of keys) for (const hit of cache.invalidate(key)) matched.add(hit);
      await Promise.all(keys.map((key) => publish(key, 0)));
      if (keys.some(isGlob)) await refreshQuietly('an invalidation');
      else await Promise.all(keys.map((key) => load(key.slice(FLAG_KEY_PREFIX.length))));
      return [...matched].sort();
    },

    refresh,

    stats,

    propagation,

    onChange(listener) {
      if (typeof listener !== 'function') throw new TypeError('FeatureFlagClient.onChange: listener must be a function');
      changeListeners.add(listener);
      return () => void changeListeners.delete(listener);
    },

    async close() {
      closed = true;
      meter.removeBatchObservableCallback(observe, observed);
      if (pollTimer !== undefined) clock.clearTimeout(pollTimer);
      pollTimer = undefined;
      for (const stop of unsubscribe.splice(0)) stop();
      changeListeners.clear();
      await Promise.allSettled([...loading.values()]);
    },
  };

  function stats(): FlagClientStats {
    const cached = cache.stats();
    const cachedFlags: Record<string, { ageMs: number; stale: boolean }> = {};
    for (const [key, entry] of Object.entries(cached.keys)) {
      if (cache.peek(key)?.value.flag) cachedFlags[key.slice(FLAG_KEY_PREFIX.length)] = entry;
    }
    const evaluations: Record<string, { enabled: number; disabled: number }> = {};
    for (const [name, slot] of slots) if (slot.enabled + slot.disabled > 0) evaluations[name] = { enabled: slot.enabled, disabled: slot.disabled };
    return {
      flags: Object.keys(cachedFlags).length,
      cache: { size: cached.size, staleEntries: cached.stale, ageMs: cached.ageMs, ttlMs: cached.ttlMs, hits, misses, flags: cachedFlags },
      evaluations,
      bus: { kind: bus?.kind ?? 'none', state: bus?.state ?? 'none' },
      stale: busDown || lastRefreshError !== undefined,
      propagation: propagation(),
      polling: busDown,
      lastRefresh,
      lastRefreshError,
    };
  }
}

/** The client's instruments (see {@link FeatureFlagClientOptions.meter}). */
function flagInstruments(meter: Meter) {
  return {
    evaluations: meter.createObservableCounter('aikb.feature_flag.evaluations', {
      unit: '{evaluation}',
      description: 'Feature flag evaluations, by flag and result.',
    }),
    cacheRequests: meter.createObservableCounter('aikb.cache.requests', {
      unit: '{request}',
      description: 'Cache lookups, by cache and result (a miss is an absent, expired or invalidated entry).',
    }),
    stale: meter.createObservableGauge('aikb.feature_flag.stale', {
      description: '1 while feature flags may be stale (invalidation bus disconnected or flag store unreachable).',
    }),
    degraded: meter.createObservableGauge('aikb.feature_flag.propagation_degraded', {
      description: '1 while flag changes reach other instances only by polling the store (invalidation bus down or a publish failed).',
    }),
  };
}

function unknown(name: string, value: boolean, stale: boolean): FlagEvaluation {
  return { name, value, reason: 'DEFAULT', bucket: undefined, rolloutPercentage: undefined, version: undefined, stale, cacheAgeMs: undefined };
}

/** A flag carried by a bus message is installed only if it has the shape of one. */
function isFlag(value: unknown): value is Flag {
  const flag = value as Flag | null | undefined;
  return (
    typeof flag === 'object' &&
    flag !== null &&
    typeof flag.name === 'string' &&
    typeof flag.enabled === 'boolean' &&
    Number.isInteger(flag.rolloutPercentage) &&
    flag.rolloutPercentage >= 0 &&
    flag.rolloutPercentage <= 100 &&
    typeof flag.description === 'string' &&
    typeof flag.lastUpdated === 'string' &&
    Number.isSafeInteger(flag.version)
  );
}

function checkNameQuietly(name: string): boolean {
  try {
    checkName(name);
    return true;
  } catch {
    return false;
  }
}
