import { Router } from 'express';
import type { HealthRegistry } from '@aikb/core/health';

/** {@link healthRouter} options. */
export interface HealthRouterOptions {
  /** The checks to run on every request. */
  registry: HealthRegistry;
  /** The service version reported in the body. */
  version?: string;
  /** Extra top-level members of the body (evaluated per request). */
  extra?: () => Record<string, unknown>;
  /**
   * Clock for `uptimeSeconds`, in milliseconds.
   * @default Date.now
   */
  now?: () => number;
}

/**
 * `GET /` → `{ status, uptimeSeconds, version, components }`: every registered check measured
 * now; 200 when all are ok, 503 when any is degraded or down.
 */
export function healthRouter(options: HealthRouterOptions): Router {
  const now = options.now ?? Date.now;
  const started = now();
  const router = Router();
  router.get('/', async (_req, res) => {
    const report = await options.registry.check();
    res.status(report.status === 'ok' ? 200 : 503).json({
      status: report.status,
      uptimeSeconds: Math.floor((now() - started) / 1000),
      ...(options.version ? { version: options.version } : {}),
      components: report.components,
      ...options.extra?.(),
    });
  });
  return router;
}
