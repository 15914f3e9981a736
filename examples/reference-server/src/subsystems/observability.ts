import { Router, type RequestHandler } from 'express';
import { trace } from '@opentelemetry/api';
import { createErrorMetrics, type ErrorMetrics } from '@aikb/core/metrics';
import { createPoolMonitor, type PoolMonitor } from '@aikb/core/pool';
import { createSpanStore, type SpanStore } from '@aikb/core/tracing';
import { errorMetricsRouter, httpMetrics, leakHuntRouter, poolStatsRouter, requestLogging, systemStatusRouter, tracesRouter, tracing } from '@aikb/express';
import { createMetricsHandler, registerProcessMetrics } from '@aikb/prometheus';
import type { ServerContext } from '../context';
import type { Subsystem } from '../lifecycle';

/** What the observability subsystem adds to the app (see app.ts, slots 1–3). */
export interface Observability {
  readonly monitor: PoolMonitor;
  readonly spans: SpanStore;
  readonly errors: ErrorMetrics;
  /** Slot 1, in this order: tracing (X-Trace-ID), request logs, HTTP metrics and error windows. */
  readonly middleware: RequestHandler[];
  /** Slot 2, mounted at `/api/health/pool-stats`. */
  readonly poolStats: Router;
  /** Slot 2, `GET /metrics`. */
  readonly metricsHandler: RequestHandler;
  /** Slot 3, behind the admin guard: `/traces`, `/metrics/errors`, `/system/status`, `/pool/leak-hunting`. */
  readonly adminRoutes: Router;
}

/** Leak reports: a connection held this long by one request is almost certainly not returned. */
const LEAK_THRESHOLD_MS = 60_000;
const SPAN_CAPACITY = 1000;

/** What the observability subsystem needs from those started before it. */
type ObservabilityNeeds = Pick<ServerContext, 'config' | 'logger' | 'infra' | 'status' | 'metrics' | 'meter'>;

/**
 * Pool monitoring, request tracing, request logs, HTTP and pool metrics for the whole server.
 *
 * No OpenTelemetry SDK is registered here: `@aikb/core/tracing` gives every request a real trace
 * id without one, and the recent-span store receives the spans directly. A deployment that
 * registers an SDK (and adds the span store as a processor) gets the same endpoints.
 */
export function installObservability(ctx: ObservabilityNeeds): Observability {
  const { config, infra, logger, metrics, meter, status } = ctx;
  // In place: every subsystem holding infra.db.pool is measured, whatever order it was built in.
  // Acquire stacks cost every query: captured only with POOL_CAPTURE_STACKS or during a leak hunt
  // (POST /api/admin/pool/leak-hunting); a leak report names the trace and span either way.
  const monitor = createPoolMonitor(infra.db.pool, {
    logger,
    name: infra.db.kind,
    leakDetectionThresholdMs: LEAK_THRESHOLD_MS,
    captureStacks: config.poolCaptureStacks,
    meter,
  });
  const spans = createSpanStore({ capacity: SPAN_CAPACITY });
  const errors = createErrorMetrics();

  // Process metrics (CPU, memory, event-loop lag), once per registry.
  registerProcessMetrics(metrics);

  infra.health.register('pool', () => {
    const { leaks, waitTimeMs, holdTimeMs, idleConnections, leakHunt, ...usage } = monitor.stats();
    return { status: leaks.outstanding > 0 ? 'degraded' : 'ok', ...usage, leaks };
  });
  // The system status keeps its member names (`waitTime`, `holdTime`: milliseconds, as documented).
  status.register('pool', () => {
    const { idleConnections, waitTimeMs, holdTimeMs, leaks, leakHunt, ...usage } = monitor.stats();
    return { ...usage, idleConnections, waitTime: waitTimeMs, holdTime: holdTimeMs, leaks, leakHunt };
  });
  status.register('tracing', () => {
    const { recorded, size, capacity } = spans.stats();
    return { enabled: true, middleware: 'active', sdkRegistered: isSdkRegistered(), spansRecorded: recorded, spansKept: size, spanStoreCapacity: capacity };
  });
  status.register('redis', () => ({
    configured: infra.redis !== undefined,
    connection: infra.redis?.status ?? 'disabled',
  }));

  const adminRoutes = Router();
  adminRoutes.use('/traces', tracesRouter(spans));
  adminRoutes.use('/metrics/errors', errorMetricsRouter(errors));
  adminRoutes.use('/system/status', systemStatusRouter(status));
  adminRoutes.use('/pool/leak-hunting', leakHuntRouter(monitor));

  logger.info({ spanStoreCapacity: SPAN_CAPACITY, sdkRegistered: isSdkRegistered() }, '✓ Request tracing initialized');
  return {
    monitor,
    spans,
    errors,
    middleware: [tracing({ recorder: spans }), requestLogging({ logger }), httpMetrics({ meter, errorMetrics: errors })],
    poolStats: poolStatsRouter(monitor),
    metricsHandler: createMetricsHandler({ registry: metrics }),
    adminRoutes,
  };
}

/**
 * The observability subsystem: provides `observability` (its middleware and routes are mounted by
 * `createApp`); closing it stops the pool monitor (its leak timer, its metrics, its hold on the pool).
 */
export const observabilitySubsystem: Subsystem<ObservabilityNeeds, Pick<ServerContext, 'observability'>> = {
  name: 'observability',
  start: (ctx) => Promise.resolve({ observability: installObservability(ctx) }),
  close({ observability }) {
    observability.monitor.close();
    return Promise.resolve();
  },
};

/** True when an OpenTelemetry SDK records spans (the global tracer's spans are recording). */
function isSdkRegistered(): boolean {
  const probe = trace.getTracer('@aikb/reference-server').startSpan('probe');
  const recording = probe.isRecording();
  probe.end();
  return recording;
}
