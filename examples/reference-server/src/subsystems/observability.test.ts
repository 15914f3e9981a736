import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStatusRegistry } from '@aikb/core/health';
import { loadConfig } from '../config';
import type { ServerContext } from '../context';
import { openInfrastructure, type Infrastructure } from '../infrastructure';
import { serverMigrations } from '../migrations';
import { installObservability, type Observability } from './observability';

const root = mkdtempSync(path.join(tmpdir(), 'aikb-observability-'));
let tests = 0;
let infra: Infrastructure;
let observability: Observability;

// Each test its own database, pool, registries and monitor: none sees what another left behind.
beforeEach(async () => {
  const config = loadConfig({ AIKB_DATA_DIR: path.join(root, `data-${++tests}`), LOG_LEVEL: 'silent' }, '/');
  const logger = pino({ level: 'silent' });
  infra = await openInfrastructure(config, logger, serverMigrations);
  await infra.migrated;
  // Only what installObservability reads.
  const ctx = { config, logger, infra, status: createStatusRegistry(), metrics: new Registry() } as unknown as ServerContext;
  observability = installObservability(ctx);
}, 60_000);
afterEach(async () => {
  observability?.monitor.close();
  await infra?.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('installObservability', () => {
  const FIGURES = ['activeConnections', 'availableConnections', 'queuedRequests', 'maxConnections', 'utilizationPercent'] as const;
  const idle = { activeConnections: 0, availableConnections: 1, queuedRequests: 0, maxConnections: 1, utilizationPercent: 0 };
  const figures = (component: Record<string, unknown> | undefined) => Object.fromEntries(FIGURES.map((k) => [k, component?.[k]]));

  it("reports the pool in /api/health as it was before the check, when the database check takes the idle connection", async () => {
    await infra.db.pool.query('SELECT 1');
    const report = await infra.health.check();
    expect(figures(report.components.pool)).toEqual(idle);
    expect(figures(report.components.pool)).toEqual(figures({ ...observability.monitor.stats() }));
  });

  it('reports the pool as it was before the check when the database check has to open a connection', async () => {
    // Close the pool's only connection, so the database check opens a new one.
    const client = await infra.db.pool.connect();
    client.release(true);
    expect(infra.db.pool.totalCount).toBe(0);
    const report = await infra.health.check();
    expect(report.components.database?.status).toBe('ok');
    expect(figures(report.components.pool)).toEqual(idle);
  });

  it('captures no acquire stacks unless POOL_CAPTURE_STACKS is set', () => {
    expect(observability.monitor.leakHunt()).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
  });
});
