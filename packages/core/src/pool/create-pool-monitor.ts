import type { Attributes, BatchObservableCallback, Meter } from '@opentelemetry/api';
import type { PoolClient } from 'pg';
import { monotonicClock, unrefTimer } from '../clock';
import { resolveMeter } from '../internal/meter';
import { activeScope, type RequestScope } from '../internal/request-scope';
import { noopLogger } from '../logger';
import { checkObject, checkOptions } from '../options';
import { LatencyHistogram } from './internal/histogram';
import type { ConnectionLeak, LeakHuntState, MonitorablePool, PoolListener, PoolMonitor, PoolMonitorOptions, PoolStats, PoolUsage } from './pool';

const DEFAULT_LEAK_HUNT_MS = 15 * 60_000;
/** Seconds buckets for connection wait and use times: 0.1 ms to 10 s. */
const SECONDS_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// Shared by every copy of core in the process (ESM and CJS builds side by side).
const MONITORED_KEY = Symbol.for('aikb.core.monitored-pools');
const monitoredPools: WeakSet<object> = ((globalThis as Record<symbol, unknown>)[MONITORED_KEY] ??= new WeakSet()) as WeakSet<object>;

/** One lent connection. Checkouts form a doubly linked list: O(1) in and out, no hashing. */
interface Checkout {
  readonly acquiredAt: number;
  readonly site: { stack?: string } | undefined;
  readonly scope: RequestScope | undefined;
  reported: boolean;
  prev: Checkout | undefined;
  next: Checkout | undefined;
  linked: boolean;
}

type ConnectCallback = (error: Error | undefined, client: PoolClient | undefined, done: PoolClient['release']) => void;

/**
 * Starts monitoring `pool` in place: its `connect` is wrapped (and `query`, which goes through
 * it), so every subsystem that already holds the pool is measured without changing its code.
 *
 * @throws {TypeError} when an option is invalid (the message names it) or the pool is already monitored
 *
 * @example
 * ```ts
 * const monitor = createPoolMonitor(db.pool, { leakDetectionThresholdMs: 30_000, logger })
 * monitor.stats()   // { activeConnections: 8, availableConnections: 2, queuedRequests: 0, maxConnections: 10, utilizationPercent: 80, idleConnections: 2, waitTimeMs: {...}, ... }
 * ```
 */
export function createPoolMonitor(pool: MonitorablePool, options: PoolMonitorOptions = {}): PoolMonitor {
  checkObject('createPoolMonitor', 'pool', pool, 'a pg.Pool', ['connect']);
  const target = pool;
  if (monitoredPools.has(target)) throw new TypeError('createPoolMonitor: this pool is already monitored');
  const check = checkOptions('createPoolMonitor', options, true);
  for (const option of ['leakDetectionThresholdMs', 'leakCheckIntervalMs', 'maxLeakHuntMs'] as const) check.number(option, { min: 0 });
  check.boolean('captureStacks');
  check.clock();
  check.logger();
  check.string('name');
  const thresholdMs = options.leakDetectionThresholdMs ?? 60_000;
  const intervalMs = options.leakCheckIntervalMs ?? Math.max(100, Math.min(5000, thresholdMs / 2));
  const captureStacks = options.captureStacks ?? false;
  const maxLeakHuntMs = options.maxLeakHuntMs ?? 24 * 60 * 60_000;
  const clock = options.clock ?? monotonicClock;
  const now = () => clock.now();
  const logger = options.logger ?? noopLogger;
  const name = options.name ?? 'default';
  const meter = resolveMeter('createPoolMonitor', options.meter);

  const waitTime = new LatencyHistogram();
  const holdTime = new LatencyHistogram();
  let head: Checkout | undefined;
  function* outstanding(): Generator<Checkout> {
    for (let checkout = head; checkout; checkout = checkout.next) yield checkout;
  }
  let listeners: PoolListener[] = [];
  let leaksDetected = 0;
  const instruments = poolInstruments(meter);
  const poolAttributes: Attributes = { 'pool.name': name };
  // Metrics are recorded inside connect and release: a meter that throws must not cost a connection.
  function record(histogram: 'waitTime' | 'useTime', ms: number): void {
    try {
      instruments[histogram].record(ms / 1000, poolAttributes);
    } catch (error) {
      logger.error({ err: error, pool: name }, 'the pool monitor could not record a metric; ignored');
    }
  }
  /** Checkouts started before this clock reading capture their stack (a leak hunt runs). */
  let huntUntil = Number.NEGATIVE_INFINITY;

  // Listeners run inside connect and release: one that throws must not keep a connection from
  // its caller or from the pool.
  function notify<E extends keyof PoolListener>(event: E, value: Parameters<NonNullable<PoolListener[E]>>[0]): void {
    for (const listener of listeners) {
      try {
        (listener[event] as ((v: typeof value) => void) | undefined)?.(value);
      } catch (error) {
        logger.error({ err: error, pool: name, event }, `a pool monitor listener threw on ${event}; ignored`);
      }
    }
  }

  function release(checkout: Checkout): void {
    if (!checkout.linked) return;
    checkout.linked = false;
    if (checkout.prev) checkout.prev.next = checkout.next;
    else head = checkout.next;
    if (checkout.next) checkout.next.prev = checkout.prev;
    const heldMs = now() - checkout.acquiredAt;
    holdTime.record(heldMs);
    for (let scope = checkout.scope; scope; scope = scope.parent) if (heldMs > scope.longestHoldMs) scope.longestHoldMs = heldMs;
    if (checkout.reported) logger.info({ pool: name, heldMs: Math.round(heldMs) }, 'a connection reported as leaked was released');
    record('useTime', heldMs);
    notify('released', heldMs);
  }

  function track(client: PoolClient, startedAt: number, scope: RequestScope | undefined, site: Checkout['site']): PoolClient['release'] {
    const acquiredAt = now();
    const waitMs = acquiredAt - startedAt;
    waitTime.record(waitMs);
    for (let s = scope; s; s = s.parent) s.connectionsUsed++;
    const checkout: Checkout = { acquiredAt, site, scope, reported: false, prev: undefined, next: head, linked: true };
    if (head) head.prev = checkout;
    head = checkout;
    // pg-pool gives each checkout a fresh release function; wrap this one only.
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(client) below
    const poolRelease = client.release;
    // Assigned, not declared: a named closure per checkout would cost a defineProperty under keepNames builds.
    client.release = (error?: Error | boolean) => {
      release(checkout);
      return poolRelease.call(client, error);
    };
    record('waitTime', waitMs);
    notify('acquired', waitMs);
    // eslint-disable-next-line @typescript-eslint/unbound-method -- the arrow function assigned just above
    return client.release;
  }

  const originalConnect = pool.connect;
  function monitoredConnect(this: MonitorablePool, callback?: ConnectCallback): unknown {
    const startedAt = now();
    const scope = activeScope();
    let site: Checkout['site'];
    // One comparison per checkout when no hunt runs: the stack capture is what costs.
    if (thresholdMs > 0 && (captureStacks || startedAt < huntUntil)) {
      site = {};
      // Frames are collected now and formatted only if a leak is reported.
      Error.captureStackTrace(site, monitoredConnect);
    }
    if (typeof callback === 'function') {
      return (originalConnect as (cb: ConnectCallback) => void).call(this, (error, client, done) => {
        if (error || !client) return callback(error, client, done);
        callback(error, client, track(client, startedAt, scope, site));
      });
    }
    return (originalConnect as () => Promise<PoolClient>).call(this).then((client) => {
      track(client, startedAt, scope, site);
      return client;
    });
  }
  monitoredPools.add(target);
  (target as { connect: unknown }).connect = monitoredConnect;

  function checkLeaks(): ConnectionLeak[] {
    if (thresholdMs === 0) return [];
    const at = now();
    const found: ConnectionLeak[] = [];
    for (const checkout of outstanding()) {
      const heldMs = at - checkout.acquiredAt;
      if (checkout.reported || heldMs < thresholdMs) continue;
      checkout.reported = true;
      leaksDetected++;
      const leak: ConnectionLeak = {
        heldMs,
        stack: checkout.site?.stack?.replace(/^[^\n]*\n/, 'connection acquired at:\n'),
        traceId: checkout.scope?.traceId,
        spanId: checkout.scope?.spanId,
      };
      found.push(leak);
      const where = leak.traceId ? `acquired in trace ${leak.traceId} (span ${leak.spanId})` : 'acquired outside any span';
      const hint = leak.stack ? '' : '; start a leak hunt to record where connections are acquired';
      logger.warn(
        { pool: name, heldMs: Math.round(heldMs), thresholdMs, traceId: leak.traceId, spanId: leak.spanId, stack: leak.stack },
        `possible connection leak: a connection of pool ${name} has been held for ${Math.round(heldMs)} ms (leakDetectionThresholdMs ${thresholdMs}), ${where}${hint}`,
      );
      notify('leaked', leak);
    }
    return found;
  }

  // A chain of timeouts (a Clock has no interval), each unref'd: the check never keeps the process alive.
  let timer: unknown;
  let closed = false;
  function scheduleLeakCheck(): void {
    timer = clock.setTimeout(() => {
      if (closed) return;
      checkLeaks();
      scheduleLeakCheck();
    }, intervalMs);
    unrefTimer(timer);
  }
  if (thresholdMs > 0 && intervalMs > 0) scheduleLeakCheck();

  function usage(): PoolUsage {
    const maxConnections = pool.options?.max ?? 10;
    const activeConnections = Math.max(0, pool.totalCount - pool.idleCount);
    return {
      activeConnections,
      availableConnections: Math.max(0, maxConnections - activeConnections),
      // pg-pool queues a caller even when an idle connection is free, and hands that connection
      // over on the next tick: such a caller is not waiting for the pool. Only callers beyond the
      // idle connections are (so a health query in flight does not read as exhaustion).
      queuedRequests: Math.max(0, pool.waitingCount - pool.idleCount),
      maxConnections,
      utilizationPercent: Math.round((activeConnections / maxConnections) * 100),
    };
  }

  const observe: BatchObservableCallback = (result) => {
    const { activeConnections, maxConnections, queuedRequests } = usage();
    result.observe(instruments.usage, activeConnections, { ...poolAttributes, state: 'used' });
    result.observe(instruments.usage, pool.idleCount, { ...poolAttributes, state: 'idle' });
    result.observe(instruments.max, maxConnections, poolAttributes);
    result.observe(instruments.pending, queuedRequests, poolAttributes);
    result.observe(instruments.leaks, leaksDetected, poolAttributes);
  };
  const observed = [instruments.usage, instruments.max, instruments.pending, instruments.leaks];
  meter.addBatchObservableCallback(observe, observed);

  function leakHunt(): LeakHuntState {
    const remainingMs = Math.max(0, huntUntil - now());
    return { capturingStacks: thresholdMs > 0 && (captureStacks || remainingMs > 0), always: captureStacks && thresholdMs > 0, remainingMs };
  }

  return {
    name,
    stats(): PoolStats {
      const at = now();
      let overdue = 0;
      if (thresholdMs > 0) for (const checkout of outstanding()) if (at - checkout.acquiredAt >= thresholdMs) overdue++;
      return {
        ...usage(),
        idleConnections: pool.idleCount,
        waitTimeMs: waitTime.summary(),
        holdTimeMs: holdTime.summary(),
        leaks: { detected: leaksDetected, outstanding: overdue, thresholdMs },
        leakHunt: leakHunt(),
      };
    },
    startLeakHunt(durationMs = DEFAULT_LEAK_HUNT_MS) {
      if (typeof durationMs !== 'number' || !(durationMs > 0) || durationMs > maxLeakHuntMs) {
        throw new TypeError(`PoolMonitor.startLeakHunt: durationMs must be a number > 0 and ≤ ${maxLeakHuntMs} (got ${String(durationMs)})`);
      }
      if (thresholdMs > 0) {
        huntUntil = now() + durationMs;
        logger.info({ pool: name, durationMs }, `leak hunt started on pool ${name}: acquire stacks are captured for ${Math.round(durationMs / 1000)} s`);
      }
      return leakHunt();
    },
    stopLeakHunt() {
      if (huntUntil > now()) logger.info({ pool: name }, `leak hunt stopped on pool ${name}`);
      huntUntil = Number.NEGATIVE_INFINITY;
      return leakHunt();
    },
    leakHunt,
    checkLeaks,
    subscribe(listener) {
      if (listener === null || typeof listener !== 'object') throw new TypeError('PoolMonitor.subscribe: listener must be an object');
      listeners = [...listeners, listener];
      return () => {
        listeners = listeners.filter((l) => l !== listener);
      };
    },
    close() {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      meter.removeBatchObservableCallback(observe, observed);
      if (target.connect === monitoredConnect) {
        (target as { connect: unknown }).connect = originalConnect;
        monitoredPools.delete(target);
      }
    },
  };
}

/** The pool's instruments, named after the OpenTelemetry database-client semantic conventions. */
function poolInstruments(meter: Meter) {
  const seconds = (description: string) => ({ unit: 's', description, advice: { explicitBucketBoundaries: SECONDS_BUCKETS } });
  return {
    usage: meter.createObservableUpDownCounter('db.client.connections.usage', {
      unit: '{connection}',
      description: 'Connections of the pool: used (lent out) or idle (open, unused).',
    }),
    max: meter.createObservableUpDownCounter('db.client.connections.max', { unit: '{connection}', description: 'The most connections the pool may open.' }),
    pending: meter.createObservableUpDownCounter('db.client.connections.pending_requests', {
      unit: '{request}',
      description: 'Callers waiting for a connection (above 0: the pool is exhausted).',
    }),
    waitTime: meter.createHistogram('db.client.connections.wait_time', seconds('Time callers waited for a connection.')),
    useTime: meter.createHistogram('db.client.connections.use_time', seconds('Time a connection was held before release.')),
    leaks: meter.createObservableCounter('aikb.db.client.connection.leaks', {
      unit: '{connection}',
      description: 'Connections held longer than the leak-detection threshold.',
    }),
  };
}
