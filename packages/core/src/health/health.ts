import type { Clock } from '../clock';

/** The state of one component. `disabled` (not configured) does not degrade the service. */
export type ComponentStatus = 'ok' | 'degraded' | 'down' | 'disabled';

/** What a check reports: a status plus any details worth showing an operator. */
export interface ComponentHealth {
  readonly status: ComponentStatus;
  readonly [detail: string]: unknown;
}

/** Measures one component. It may throw or hang: the registry turns both into `down`. */
export type HealthCheck = () => ComponentHealth | Promise<ComponentHealth>;

/** A measured component, as the report shows it. */
export type MeasuredComponentHealth = ComponentHealth & {
  /** How long the check took, in milliseconds. */
  readonly latencyMs: number;
};

/** Every component, measured now. */
export interface HealthReport {
  /** `ok` when every component is `ok` or `disabled`, otherwise `degraded`. */
  readonly status: 'ok' | 'degraded';
  readonly components: Readonly<Record<string, MeasuredComponentHealth>>;
}

/** {@link createHealthRegistry} options. */
export interface HealthRegistryOptions {
  /**
   * A check that has not answered after this many milliseconds counts as `down`.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * Measures each check's `latencyMs` and sets its timeout timer.
   * @default monotonicClock (`performance.now()` and the global timers)
   */
  clock?: Clock;
}

/**
 * A set of named health checks, run concurrently on demand. Each subsystem registers its own
 * check, so the health endpoint never needs to know them in advance.
 *
 * Naming rule across aikb: `check()` is an asynchronous probe of dependencies (it does I/O, may
 * time out); `stats()` is a primitive's synchronous report of its own state; a
 * {@link StatusRegistry}'s `collect()` gathers every subsystem's report.
 */
export interface HealthRegistry {
  /**
   * Adds a check under `name`.
   * @returns a function that removes it
   * @throws {TypeError} when the name is taken or not a non-empty string
   */
  register(name: string, check: HealthCheck): () => void;
  /** Runs every check now and reports. Never throws. */
  check(): Promise<HealthReport>;
}
