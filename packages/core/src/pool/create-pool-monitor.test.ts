import type { PoolClient } from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '@aikb/test-support';
import type { Logger } from '../logger';
import { createSpanStore, withSpan } from '../tracing';
import { createPoolMonitor, type PoolMonitor } from './index';

function recordingLogger() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

describeEachDatabase('PoolMonitor', (db, backend) => {
  let monitor: PoolMonitor | undefined;
  afterEach(() => {
    monitor?.close();
    monitor = undefined;
  });

  it('reports queued requests while the pool is exhausted, and 0 once it drains', async () => {
    monitor = createPoolMonitor(db().pool);
    const max = monitor.stats().maxConnections;
    expect(max).toBe(backend === 'pglite' ? 1 : 5);
    const held: PoolClient[] = [];
    for (let i = 0; i < max; i++) held.push(await db().pool.connect());
    const queued = [1, 2, 3].map(() => db().pool.query('SELECT 1 AS one'));
    expect(monitor.stats()).toEqual({ activeConnections: max, availableConnections: 0, queuedRequests: 3, maxConnections: max, utilizationPercent: 100 });
    for (const client of held) client.release();
    await Promise.all(queued);
    expect(monitor.stats()).toMatchObject({ activeConnections: 0, availableConnections: max, queuedRequests: 0, utilizationPercent: 0 });
    const snapshot = monitor.snapshot();
    expect(snapshot.waitTime.count).toBe(max + 3);
    expect(snapshot.holdTime.count).toBe(max + 3);
    expect(snapshot.waitTime.p99).toBeGreaterThanOrEqual(snapshot.waitTime.p50);
    expect(snapshot.waitTime.max).toBeGreaterThan(0);
  });

  it('measures a connection taken with a callback and released through done()', async () => {
    monitor = createPoolMonitor(db().pool);
    await new Promise<void>((resolve, reject) => {
      db().pool.connect((error, client, done) => {
        if (error || !client) return reject(error);
        client.query('SELECT 1').then(() => {
          done();
          resolve();
        }, reject);
      });
    });
    expect(monitor.snapshot().holdTime.count).toBe(1);
    expect(monitor.stats().activeConnections).toBe(0);
  });

  it('reports a connection held past the threshold once, with the stack where it was acquired', async () => {
    let now = 0;
    const { logger, lines } = recordingLogger();
    monitor = createPoolMonitor(db().pool, { leakDetectionThresholdMs: 1000, leakCheckIntervalMs: 0, captureStacks: true, clock: () => now, logger });
    async function forgetfulHandler() {
      return db().pool.connect();
    }
    const client = await forgetfulHandler();
    try {
      now += 999;
      expect(monitor.checkLeaks()).toEqual([]);
      now += 1;
      const [leak] = monitor.checkLeaks();
      expect(leak).toMatchObject({ heldMs: 1000 });
      expect(leak!.stack).toMatch(/^connection acquired at:\n/);
      expect(leak!.stack).toContain('forgetfulHandler');
      now += 5000;
      expect(monitor.checkLeaks()).toEqual([]);
      const warnings = lines.filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/possible connection leak/);
      expect(warnings[0]!.obj.stack).toContain('forgetfulHandler');
      expect(monitor.snapshot().leaks).toEqual({ detected: 1, outstanding: 1, thresholdMs: 1000 });
    } finally {
      client.release();
    }
    expect(monitor.snapshot().leaks).toEqual({ detected: 1, outstanding: 0, thresholdMs: 1000 });
  });

  it("attributes connections to the request's span through nested async calls", async () => {
    let now = 0;
    monitor = createPoolMonitor(db().pool, { clock: () => now });
    const spans = createSpanStore();
    const repository = {
      async find() {
        await db().pool.query('SELECT 1');
      },
      async findAll() {
        await Promise.all([this.find(), this.find()]);
      },
    };
    await withSpan('GET /api/documents', async () => {
      await repository.find();
      await withSpan('documents.enrich', async () => {
        await repository.findAll();
        const client = await db().pool.connect();
        now += 250;
        client.release();
      }, { recorder: spans });
      await new Promise((resolve) => setTimeout(resolve, 1));
      await repository.find();
    }, { recorder: spans });
    await withSpan('GET /api/other', () => repository.find(), { recorder: spans });
    const byName = Object.fromEntries(spans.query().map((s) => [s.spanName, s]));
    expect(byName['documents.enrich']).toMatchObject({ connectionsUsed: 3, longestHoldMs: 250 });
    expect(byName['GET /api/documents']).toMatchObject({ connectionsUsed: 5, longestHoldMs: 250 });
    expect(byName['GET /api/other']).toMatchObject({ connectionsUsed: 1, longestHoldMs: 0 });
  });
});

describe('createPoolMonitor', () => {
  const fakePool = () => ({ connect: async () => ({}) as PoolClient, totalCount: 0, idleCount: 0, waitingCount: 0, options: { max: 4 } });

  it('rejects bad options naming the option, and a pool monitored twice', () => {
    expect(() => createPoolMonitor(fakePool(), { leakDetectionThresholdMs: -1 })).toThrow(/leakDetectionThresholdMs must be a number/);
    expect(() => createPoolMonitor(fakePool(), { captureStacks: 'yes' as never })).toThrow(/captureStacks must be a boolean/);
    const pool = fakePool();
    const monitor = createPoolMonitor(pool);
    expect(() => createPoolMonitor(pool)).toThrow(/already monitored/);
    monitor.close();
    createPoolMonitor(pool).close();
  });

  it('gives the pool its own connect back on close', () => {
    const pool = fakePool();
    const original = pool.connect;
    const monitor = createPoolMonitor(pool);
    expect(pool.connect).not.toBe(original);
    monitor.close();
    expect(pool.connect).toBe(original);
  });
});
