import { Router } from 'express';
import { ValidationError } from '@aikb/core';
import type { StatusRegistry } from '@aikb/core/health';
import type { ErrorMetrics, ErrorWindow } from '@aikb/core/metrics';
import type { SpanRecord, SpanStore } from '@aikb/core/tracing';
import { checkObject } from '@aikb/core/options';

function queryValue(raw: unknown, field: string): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw new ValidationError(field, `${field} must be given once`);
  return raw;
}

function wholeNumber(raw: unknown, field: string): number | undefined {
  const value = queryValue(raw, field);
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new ValidationError(field, `${field} must be a whole number ≥ 0 (got "${value}")`);
  return Number(value);
}

/**
 * `GET /?minConnections=5&limit=20&minDurationMs=&status=` → recent request spans, newest first:
 * `[{ traceId, spanName, connectionsUsed, durationMs, status, startTime, ... }]`. A bad filter is a
 * 400 problem naming it.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function tracesRouter(store: SpanStore): Router {
  checkObject('tracesRouter', 'store', store, 'a SpanStore', ['query']);
  return Router().get('/', (req, res) => {
    const minConnections = wholeNumber(req.query.minConnections, 'minConnections');
    const limit = wholeNumber(req.query.limit, 'limit');
    const minDurationMs = wholeNumber(req.query.minDurationMs, 'minDurationMs');
    const status = queryValue(req.query.status, 'status') as SpanRecord['status'] | undefined;
    res.json(
      store.query({
        ...(minConnections !== undefined ? { minConnections } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(minDurationMs !== undefined ? { minDurationMs } : {}),
        ...(status !== undefined ? { status } : {}),
      }),
    );
  });
}

/**
 * `GET /?window=1h` (`5m`, `1h` or `24h`; default `1h`) → `{ window, errors: [{ endpoint,
 * requestCount, errorCount, errorRate, topErrors: [{ type, count, message }], clientErrorCount,
 * clientErrorRate, topClientErrors }] }`: every endpoint with server (5xx) or client (4xx) errors
 * in the window. `errorCount` and `errorRate` count server errors only (the runbook's error rate);
 * client errors are the `client*` members. An unknown window is a 400 problem.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function errorMetricsRouter(metrics: ErrorMetrics): Router {
  checkObject('errorMetricsRouter', 'metrics', metrics, 'an ErrorMetrics', ['report']);
  return Router().get('/', (req, res) => {
    res.json(metrics.report((queryValue(req.query.window, 'window') ?? '1h') as ErrorWindow));
  });
}

/**
 * `GET /` → `{ subsystems: { <name>: <status> } }`: whatever each subsystem registered.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function systemStatusRouter(status: StatusRegistry): Router {
  checkObject('systemStatusRouter', 'status', status, 'a StatusRegistry', ['collect']);
  return Router().get('/', async (_req, res) => {
    res.json({ subsystems: await status.collect() });
  });
}
