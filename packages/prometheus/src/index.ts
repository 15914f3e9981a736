/**
 * `@aikb/prometheus`: Prometheus for what `@aikb/core` measures. Core records through an
 * OpenTelemetry `Meter`; this package's `MeterProvider` turns those instruments into prom-client
 * metrics, and serves a registry at `/metrics`. `prom-client` is a peer dependency.
 */

// the OpenTelemetry → prom-client bridge
export type { PrometheusMeterProvider, PrometheusMeterProviderOptions } from './meter-provider';
export { createPrometheusMeterProvider, DEFAULT_BUCKETS, DROPPED_MEASUREMENTS_METRIC } from './meter-provider';

// serving
export type { MetricsHandlerOptions } from './metrics-handler';
export { createMetricsHandler, registerProcessMetrics } from './metrics-handler';
