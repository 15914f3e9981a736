import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createPrometheusMeterProvider } from '@aikb/prometheus';
import { until } from '@aikb/test-support';
import { migrate, createDatabase } from '@aikb/core/db';
import { createStatusRegistry } from '@aikb/core/health';
import { createErrorMetrics } from '@aikb/core/metrics';
import { createPostgresSagaLog, defineSaga } from '@aikb/core/saga';
import type { Infrastructure } from '../infrastructure';
import type { PinoLogger } from '../logger';
import { serverMigrations } from '../migrations';
import { sagaSubsystem } from './saga';

/** A subsystem on a fresh embedded database, with its log lines kept. */
async function started() {
  const db = await createDatabase({ dataDir: 'memory://', vector: false });
  await migrate(db.pool, serverMigrations);
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }) as unknown as PinoLogger;
  const infra = { db, migrated: Promise.resolve() } as unknown as Infrastructure;
  const status = createStatusRegistry();
  // The server's meter: the Prometheus bridge into the registry /metrics serves.
  const registry = new Registry();
  const meter = createPrometheusMeterProvider({ registry }).getMeter('aikb-server');
  return { db, lines, logger, infra, status, registry, meter };
}

const demo = (fail: boolean) =>
  defineSaga<{ path: string }>({ name: 'demo_upload', version: 1 })
    .step('drive', {
      action: async () => 'file-1',
      compensate: async () => {
        if (fail) throw new Error('Failed to delete from Drive');
      },
      compensationRetry: { retries: 0 },
    })
    .step('index', { action: async () => Promise.reject(new Error('search is down')), retry: { retries: 0 } });

describe('the saga subsystem', () => {
  it('logs a compensation failure the way the runbook greps it, counts it in the error metrics, and reports status', async () => {
    const { db, lines, logger, infra, status, meter, registry } = await started();
    const ctx = { config: { sagaLeaseMs: 30_000 }, logger, infra, status, meter };
    const { sagas } = await sagaSubsystem.start(ctx);
    try {
      const errors = createErrorMetrics();
      sagas.reportErrorsTo(errors);
      const definition = demo(true);
      sagas.register(definition, { endpoint: '/api/documents/upload' });
      const outcome = await sagas.runner.run(definition, { path: 'a.pdf' });
      expect(outcome.state).toBe('compensation_failed');
      const line = lines.find((l) => l.error === 'SagaCompensationError');
      expect(line).toMatchObject({
        level: 50,
        requestId: 'saga-recovery',
        endpoint: '/api/documents/upload',
        message: 'Failed to delete from Drive',
        sagaId: outcome.id,
        step: 'drive',
        msg: 'SagaCompensationError: Failed to delete from Drive',
      });
      const [endpoint] = errors.report('5m').errors;
      expect(endpoint).toMatchObject({
        endpoint: '/api/documents/upload',
        errorCount: 1,
        topErrors: [{ type: 'SagaCompensationError', count: 1, message: 'Failed to delete from Drive' }],
      });
      const { sagas: report } = await status.collect();
      expect(report).toMatchObject({ started: 1, compensationFailed: 1, byState: { compensation_failed: 1 }, closed: false });
      // Counted through the server's meter, as /metrics shows it.
      const text = await registry.metrics();
      expect(text).toMatch(/^aikb_saga_started_total\{aikb_saga_name="demo_upload"\} 1$/m);
      expect(text).toMatch(/^aikb_saga_finished_total\{aikb_saga_name="demo_upload",aikb_saga_state="compensation_failed"\} 1$/m);
      expect(text).toMatch(/^aikb_saga_finished_total\{aikb_saga_name="demo_upload",aikb_saga_state="compensated"\} 0$/m);
    } finally {
      await sagaSubsystem.close!({ sagas }, ctx);
      await db.close();
    }
  });

  it('recovers an interrupted saga as soon as its definition is registered, and closes its runner', async () => {
    const { db, logger, infra, status, meter } = await started();
    // A saga whose process died: its lease has expired.
    const log = createPostgresSagaLog({ pool: db.pool });
    const id = randomUUID();
    await log.create({
      id,
      name: 'demo_upload',
      version: 1,
      idempotencyKey: null,
      policy: 'compensate',
      input: { path: 'b.pdf' },
      owner: 'dead',
      nowMs: Date.now() - 60_000,
      leaseExpiresAtMs: Date.now() - 30_000,
      firstStep: 'drive',
    });
    const ctx = { config: { sagaLeaseMs: 30_000 }, logger, infra, status, meter };
    const { sagas } = await sagaSubsystem.start(ctx);
    try {
      sagas.register(demo(false), { endpoint: '/api/documents/upload' });
      await until(async () => (await log.get(id))?.state === 'compensated', 'the interrupted saga compensated', 15_000);
      expect(await log.get(id)).toMatchObject({ state: 'compensated', recoveries: 1 });
    } finally {
      await sagaSubsystem.close!({ sagas }, ctx);
      expect(sagas.runner.stats().closed).toBe(true);
      await db.close();
    }
  });
});
