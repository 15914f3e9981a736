import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStatusRegistry } from '@aikb/core/health';
import { createPoolMonitor } from '@aikb/core/pool';
import { createPrometheusMeterProvider } from '@aikb/prometheus';
import { loadConfig } from '../config';
import { openInfrastructure, type Infrastructure } from '../infrastructure';
import { serverMigrations } from '../migrations';
import { observabilitySubsystem, type Observability } from './observability';

const root = mkdtempSync(path.join(tmpdir(), 'aikb-observability-'));
let tests = 0;
let infra: Infrastructure;
let observability: Observability;
let startedOn: Parameters<typeof observabilitySubsystem.start>[0];
let metrics: Registry;

// Each test its own database, pool, registries and monitor: none sees what another left behind.
beforeEach(async () => {
  const config = loadConfig({ AIKB_DATA_DIR: path.join(root, `data-${++tests}`), LOG_LEVEL: 'silent' }, '/');
  const logger = pino({ level: 'silent' });
  infra = await openInfrastructure(config, logger, serverMigrations);
  await infra.migrated;
  metrics = new Registry();
  const meter = createPrometheusMeterProvider({ registry: metrics }).getMeter('test');
  startedOn = { config, logger, infra, status: createStatusRegistry(), metrics, meter };
  ({ observability } = await observabilitySubsystem.start(startedOn));
}, 60_000);
afterEach(async () => {
  if (observability) await observabilitySubsystem.close!({ observability }, startedOn);
  await infra?.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the observability subsystem', () => {
  const FIGURES = ['activeConnections', 'availableConnections', 'queuedRequests', 'maxConnections', 'utilizationPercent'] as const;
  const idle = { activeConnections: 0, availableConnections: 1, queuedRequests: 0, maxConnections: 1, utilizationPercent: 0 };
  const figures = (component: Record<string, unknown> | undefined) => Object.fromEntries(FIGURES.map((k) => [k, component?.[k]]));

  it('reports the pool in /api/health as it was before the check, when the database check takes the idle connection', async () => {
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

  it('serves the pool figures on its Prometheus registry', async () => {
    const text = await metrics.metrics();
    expect(text).toContain('db_client_connections_max{pool_name="pglite"} 1');
    expect(text).toMatch(/^# TYPE db_client_connections_wait_time_seconds histogram$/m);
  });

  // The last test: it closes the subsystem.
  it('closes its pool monitor on close: the pool gets its own connect back and its figures leave /metrics', async () => {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- compared by identity, never called
    const monitored = infra.db.pool.connect;
    await observabilitySubsystem.close!({ observability }, startedOn);
    // eslint-disable-next-line @typescript-eslint/unbound-method -- compared by identity, never called
    expect(infra.db.pool.connect).not.toBe(monitored);
    expect(await metrics.metrics()).not.toContain('db_client_connections_max{');
    // Monitoring the same pool again is allowed only once the first monitor let go of it.
    createPoolMonitor(infra.db.pool).close();
    observability = undefined as unknown as Observability;
  });
});
