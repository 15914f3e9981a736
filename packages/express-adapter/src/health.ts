import { Router } from 'express';
import type { HealthRegistry } from '@aikb/core/health';
import { generateTraceId, isValidTraceId } from '@aikb/core/tracing';
import { checkOptions } from '@aikb/core/options';

/** {@link healthRouter} options. */
export interface HealthRouterOptions {
  /** The checks to run on every request. */
  registry: HealthRegistry;
  /** The service version reported in the body. */
  version?: string;
  /**
   * Adds the runbook's `tracing` block, measured on each request: `enabled`, `middleware`
   * (`active` when this very response carries a valid trace id from `tracing()`, else
   * `inactive`) and `traceIdGeneration` (`working` when a fresh trace id is valid and non-zero).
   * @default false
   */
  tracing?: boolean;
  /** The response header `tracing()` writes the trace id to. @default 'X-Trace-ID' */
  traceHeader?: string;
  /** Extra top-level members of the body (evaluated per request). */
  extra?: () => Record<string, unknown>;
  /**
   * Clock for `uptimeSeconds`, in milliseconds.
   * @default Date.now
   */
  now?: () => number;
}

/**
 * `GET /` → `{ status, uptimeSeconds, version, components, tracing? }`: every registered check
 * measured now; 200 when all are ok, 503 when any is degraded or down.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function healthRouter(options: HealthRouterOptions): Router {
  const check = checkOptions('healthRouter', options);
  check.object('registry', 'a HealthRegistry', true, ['check']);
  check.string('version', false, true);
  check.boolean('tracing');
  check.string('traceHeader');
  check.function('extra');
  check.function('now');
  const now = options.now ?? Date.now;
  const started = now();
  const router = Router();
  router.get('/', async (_req, res) => {
    const report = await options.registry.check();
    const traceId = res.getHeader(options.traceHeader ?? 'X-Trace-ID');
    res.status(report.status === 'ok' ? 200 : 503).json({
      status: report.status,
      uptimeSeconds: Math.floor((now() - started) / 1000),
      ...(options.version ? { version: options.version } : {}),
      components: report.components,
      ...(options.tracing
        ? {
            tracing: {
              enabled: true,
              middleware: isValidTraceId(traceId) ? 'active' : 'inactive',
              traceIdGeneration: isValidTraceId(generateTraceId()) ? 'working' : 'failing',
            },
          }
        : {}),
      ...options.extra?.(),
    });
  });
  return router;
}
