import { Router } from 'express';
import { ValidationError } from '@aikb/core';
import type { PoolMonitor } from '@aikb/core/pool';
import { jsonBody } from './json-body';
import { checkObject, checkOptions } from '@aikb/core/options';

/**
 * `GET /` → the runbook's five pool figures, plus `histograms` (wait and hold times in ms:
 * count, p50, p95, p99, max, mean), `leaks` and `leakHunt` (whether acquire stacks are captured).
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function poolStatsRouter(monitor: PoolMonitor): Router {
  checkObject('poolStatsRouter', 'monitor', monitor, 'a PoolMonitor', ['stats']);
  return Router().get('/', (_req, res) => {
    const { waitTimeMs, holdTimeMs, leaks, idleConnections, ...stats } = monitor.stats();
    res.json({ ...stats, idleConnections, histograms: { waitTimeMs, holdTimeMs }, leaks });
  });
}

/** {@link leakHuntRouter} options. */
export interface LeakHuntRouterOptions {
  /**
   * The longest hunt a request may ask for, in minutes (the monitor's `maxLeakHuntMs` bounds it too).
   * @default 1440
   */
  maxMinutes?: number;
  /**
   * How long a hunt lasts when the body gives no `minutes`.
   * @default 15
   */
  defaultMinutes?: number;
}

/**
 * `POST /` with `{ "enabled": true, "minutes"?: 15 }` starts a leak hunt (acquire stacks are
 * captured for that long, then capture stops by itself); `{ "enabled": false }` ends it early.
 * Answers the monitor's `leakHunt` state. A body that is not exactly that is a 400 problem+json
 * naming the field, and changes nothing. Mount it behind your admin guard
 * (`/api/admin/pool/leak-hunting`).
 *
 * @throws {TypeError} when `maxMinutes` or `defaultMinutes` is not a positive number, or the default exceeds the maximum
 */
export function leakHuntRouter(monitor: PoolMonitor, options: LeakHuntRouterOptions = {}): Router {
  checkObject('leakHuntRouter', 'monitor', monitor, 'a PoolMonitor', ['startLeakHunt', 'stopLeakHunt']);
  checkOptions('leakHuntRouter', options, true);
  const maxMinutes = options.maxMinutes ?? 24 * 60;
  const defaultMinutes = options.defaultMinutes ?? 15;
  if (typeof maxMinutes !== 'number' || !Number.isFinite(maxMinutes) || !(maxMinutes > 0)) {
    throw new TypeError(`leakHuntRouter: maxMinutes must be a positive number (got ${String(maxMinutes)})`);
  }
  if (typeof defaultMinutes !== 'number' || !(defaultMinutes > 0) || defaultMinutes > maxMinutes) {
    throw new TypeError(`leakHuntRouter: defaultMinutes must be a positive number ≤ maxMinutes (got ${String(defaultMinutes)})`);
  }
  const example = '{"enabled": true, "minutes": 15}';
  return Router()
    .use(jsonBody({ limit: 1024 }))
    .post('/', (req, res) => {
      const body: unknown = req.body;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body', `the body must be a JSON object like ${example}`);
      const unknown = Object.keys(body).find((key) => key !== 'enabled' && key !== 'minutes');
      if (unknown !== undefined)
        throw new ValidationError(unknown.slice(0, 100), `unknown field "${unknown.slice(0, 100)}": the body has only enabled and minutes`);
      const { enabled, minutes } = body as { enabled?: unknown; minutes?: unknown };
      if (typeof enabled !== 'boolean') throw new ValidationError('enabled', `enabled must be true or false, as in ${example}`);
      if (!enabled) {
        if (minutes !== undefined) throw new ValidationError('minutes', 'minutes applies only when enabled is true');
        res.json(monitor.stopLeakHunt());
        return;
      }
      if (minutes !== undefined && (typeof minutes !== 'number' || !Number.isFinite(minutes) || !(minutes > 0) || minutes > maxMinutes)) {
        throw new ValidationError('minutes', `minutes must be a number > 0 and ≤ ${maxMinutes}`);
      }
      try {
        res.json(monitor.startLeakHunt((minutes ?? defaultMinutes) * 60_000));
      } catch (error) {
        // The monitor's own bound (maxLeakHuntMs) is lower than maxMinutes.
        if (error instanceof TypeError) throw new ValidationError('minutes', `minutes exceeds this pool's longest leak hunt`);
        throw error;
      }
    });
}
