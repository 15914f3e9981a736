/**
 * `@aikb/core/pool`: a monitor for a `pg.Pool` (PostgreSQL server or embedded PGlite): the
 * runbook's pool stats, wait and hold-time percentiles, leak detection with the acquiring stack,
 * and per-span connection attribution.
 */
export type {
  ConnectionLeak,
  LatencySummary,
  LeakHuntState,
  MonitorablePool,
  PoolListener,
  PoolMonitor,
  PoolMonitorOptions,
  PoolStats,
  PoolUsage,
} from './pool';
export { createPoolMonitor } from './create-pool-monitor';
