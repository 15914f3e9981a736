import { Counter, Gauge, type Registry } from 'prom-client';
import type { FeatureFlagClient } from '@aikb/core';
import { checkOptions } from '@aikb/core/options';

/** {@link registerFeatureFlagMetrics} options. */
export interface FeatureFlagMetricsOptions {
  flags: FeatureFlagClient;
  /** The Prometheus registry to add the metrics to. */
  registry: Registry;
}

/**
 * Exposes a flag client's counters as Prometheus metrics, read at scrape time (the hot path only
 * bumps plain counters):
 * - `aikb_feature_flag_evaluations_total{flag, result="enabled|disabled"}`
 * - `aikb_cache_requests_total{cache="feature_flags", result="hit|miss"}`
 * - `aikb_feature_flag_stale` (1 while the bus is disconnected or the store unreachable)
 * - `aikb_feature_flag_propagation_degraded` (1 while changes reach other instances only by polling
 *   the store: bus down, a publish waiting for its retry, or a reconnect not yet reconciled)
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function registerFeatureFlagMetrics(options: FeatureFlagMetricsOptions): void {
  const check = checkOptions('registerFeatureFlagMetrics', options);
  check.object('flags', 'a FeatureFlagClient', true, ['stats', 'propagation']);
  check.object('registry', 'a prom-client Registry', true, ['getSingleMetric']);
  const { flags, registry } = options;
  const reported = new Map<string, number>();
  // Counters only go up: add what happened since the last scrape.
  const catchUp = (counter: Counter<string>, key: string, labels: Record<string, string>, total: number) => {
    const delta = total - (reported.get(key) ?? 0);
    if (delta > 0) counter.inc(labels, delta);
    reported.set(key, total);
  };
  new Counter({
    name: 'aikb_feature_flag_evaluations_total',
    help: 'Feature flag evaluations, by flag and result.',
    labelNames: ['flag', 'result'],
    registers: [registry],
    collect() {
      for (const [flag, counts] of Object.entries(flags.stats().evaluations)) {
        catchUp(this, `e:${flag}:1`, { flag, result: 'enabled' }, counts.enabled);
        catchUp(this, `e:${flag}:0`, { flag, result: 'disabled' }, counts.disabled);
      }
    },
  });
  new Counter({
    name: 'aikb_cache_requests_total',
    help: 'Cache lookups, by cache and result (a miss is an absent, expired or invalidated entry).',
    labelNames: ['cache', 'result'],
    registers: [registry],
    collect() {
      const { hits, misses } = flags.stats().cache;
      catchUp(this, 'c:hit', { cache: 'feature_flags', result: 'hit' }, hits);
      catchUp(this, 'c:miss', { cache: 'feature_flags', result: 'miss' }, misses);
    },
  });
  new Gauge({
    name: 'aikb_feature_flag_stale',
    help: '1 while feature flags may be stale (invalidation bus disconnected or flag store unreachable).',
    registers: [registry],
    collect() {
      this.set(flags.stats().stale ? 1 : 0);
    },
  });
  new Gauge({
    name: 'aikb_feature_flag_propagation_degraded',
    help: '1 while flag changes reach other instances only by polling the store (invalidation bus down or a publish failed).',
    registers: [registry],
    collect() {
      this.set(flags.propagation().status === 'degraded' ? 1 : 0);
    },
  });
}
