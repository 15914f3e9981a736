import type { Meter } from '@opentelemetry/api';
import type { Pool } from 'pg';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { LatencySummary } from './internal/histogram';

export type { LatencySummary };

/** What a monitor needs from a pool: a `pg.Pool` (served by a PostgreSQL server or by PGlite). */
export type MonitorablePool = Pick<Pool, 'connect' | 'totalCount' | 'idleCount' | 'waitingCount'> & {
  readonly options: { readonly max?: number | undefined };
};

/** The runbook's five figures (`GET /api/health/pool-stats`), the first members of {@link PoolStats}. */
export interface PoolUsage {
  /** Connections lent out (and being opened). */
  readonly activeConnections: number;
  /** `maxConnections − activeConnections`. */
  readonly availableConnections: number;
  /** Callers waiting for a connection: above 0, the pool is exhausted. */
  readonly queuedRequests: number;
  readonly maxConnections: number;
  /** `activeConnections / maxConnections`, as a whole percentage. */
  readonly utilizationPercent: number;
}

/**
 * {@link PoolMonitor.stats}: the pool's state now ({@link PoolUsage}, the runbook's five figures)
 * plus wait/hold-time distributions and leak counters since the monitor started, as plain JSON.
 */
export interface PoolStats extends PoolUsage {
  /** Open connections waiting in the pool, unused. */
  readonly idleConnections: number;
  /** How long callers waited for a connection (every figure in milliseconds). */
  readonly waitTimeMs: LatencySummary;
  /** How long connections were held before release (every figure in milliseconds). */
  readonly holdTimeMs: LatencySummary;
  readonly leaks: {
    /** Connections ever reported as held past the threshold. */
    readonly detected: number;
    /** Connections held past the threshold right now. */
    readonly outstanding: number;
    /** `0` when leak detection is off. */
    readonly thresholdMs: number;
  };
  /** Whether acquire stacks are captured now (see {@link PoolMonitor.startLeakHunt}). */
  readonly leakHunt: LeakHuntState;
}

/**
 * Whether the monitor records where connections are acquired. Stacks cost a capture per checkout,
 * so they are recorded only while a leak hunt runs (or always, with `captureStacks`).
 */
export interface LeakHuntState {
  /** Checkouts record their acquiring stack now (`false` when leak detection is off). */
  readonly capturingStacks: boolean;
  /** Set by the `captureStacks` option: stacks are captured for the monitor's whole life. */
  readonly always: boolean;
  /** Milliseconds left of the hunt started with {@link PoolMonitor.startLeakHunt}; `0` when none runs. */
  readonly remainingMs: number;
}

/** A connection held longer than the leak-detection threshold. */
export interface ConnectionLeak {
  readonly heldMs: number;
  /** Where the connection was acquired (`undefined` unless it was acquired during a leak hunt or with `captureStacks`). */
  readonly stack: string | undefined;
  /** The trace that acquired it, when it was acquired inside a span. */
  readonly traceId: string | undefined;
  /** The span (innermost) that acquired it, when it was acquired inside a span. */
  readonly spanId: string | undefined;
}

/**
 * Callbacks for every checkout; each is optional. They run inside the pool's `connect` and
 * `release`: an error thrown by one is caught and logged (`logger.error`), never passed to the
 * caller, and the connection is still handed out or returned.
 */
export interface PoolListener {
  acquired?(waitMs: number): void;
  released?(holdMs: number): void;
  leaked?(leak: ConnectionLeak): void;
}

/** {@link createPoolMonitor} options. */
export interface PoolMonitorOptions {
  /**
   * A connection held longer than this (milliseconds) is logged once as a possible leak, with
   * the stack where it was acquired, and counted (HikariCP's `leakDetectionThreshold`). `0` turns
   * leak detection off.
   * @default 60000
   */
  leakDetectionThresholdMs?: number;
  /**
   * How often held connections are checked against the threshold, in milliseconds.
   * @default half the threshold, between 100 and 5000
   */
  leakCheckIntervalMs?: number;
  /**
   * Record the stack of every acquisition for the monitor's whole life, to show it when a leak is
   * reported. Costs a stack capture per checkout (+20 % to +35 % on a one-row query, see
   * `npm run bench:pool`): prefer switching capture on at run time, for a bounded time, with
   * {@link PoolMonitor.startLeakHunt}. Without a stack a leak report still names the trace and
   * span that acquired the connection.
   * @default false
   */
  captureStacks?: boolean;
  /**
   * Where leaks are reported.
   * @default noopLogger
   */
  logger?: Logger;
  /**
   * The longest leak hunt {@link PoolMonitor.startLeakHunt} accepts, in milliseconds.
   * @default 86400000 (24 hours)
   */
  maxLeakHuntMs?: number;
  /**
   * Reads time for wait and hold times, leak detection and leak hunts, and sets the leak-check
   * timer (unref'd: it never keeps the process alive). A monotonic default: a wall-clock step
   * must not read as a held connection.
   * @default monotonicClock (`performance.now()` and the global timers)
   */
  clock?: Clock;
  /**
   * The pool's name in logs and metrics.
   * @default 'default'
   */
  name?: string;
  /**
   * Where the pool's metrics are recorded, labelled `pool.name` (OpenTelemetry database-client
   * conventions): the observable up-down counters `db.client.connections.usage` (`state` = `used` |
   * `idle`), `db.client.connections.max` and `db.client.connections.pending_requests`, the
   * histograms `db.client.connections.wait_time` and `db.client.connections.use_time` (seconds, 0.1 ms
   * to 10 s) and the observable counter `aikb.db.client.connection.leaks`. Observed instruments stop
   * reporting on {@link PoolMonitor.close}.
   * @default metrics.getMeter('@aikb/core') from @opentelemetry/api (a no-op without an SDK)
   */
  meter?: Meter;
}

/**
 * Watches a `pg.Pool` in place: every `connect()` and `query()` on the pool, by any code that
 * holds it, is measured. Per-span attribution (`connectionsUsed`, longest hold) reaches spans
 * started with `@aikb/core/tracing`'s `withSpan`.
 */
export interface PoolMonitor {
  readonly name: string;
  /** The runbook's five figures, wait/hold-time percentiles and leak counters, now. */
  stats(): PoolStats;
  /** Reports connections newly held past the threshold (the timer calls this too). */
  checkLeaks(): ConnectionLeak[];
  /**
   * Captures the acquiring stack of every checkout for the next `durationMs` milliseconds, so a
   * leak reported in that time shows where the connection was taken. Starting a hunt while one
   * runs restarts it with the new duration. Nothing changes while leak detection is off.
   *
   * @param durationMs how long to hunt @default 900000 (15 minutes)
   * @throws {TypeError} when `durationMs` is not a positive number ≤ `maxLeakHuntMs`
   */
  startLeakHunt(durationMs?: number): LeakHuntState;
  /** Ends a leak hunt early (stacks captured so far are kept for their leak reports). */
  stopLeakHunt(): LeakHuntState;
  /** Whether stacks are being captured now, and for how long still. */
  leakHunt(): LeakHuntState;
  /**
   * Calls `listener` on every acquire, release and leak; what it throws is logged, not raised.
   * @returns a function that unsubscribes
   */
  subscribe(listener: PoolListener): () => void;
  /** Stops the leak timer and the observed metrics, and restores the pool's own `connect`. */
  close(): void;
}
