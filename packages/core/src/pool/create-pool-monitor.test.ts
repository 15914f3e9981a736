import type { PoolClient } from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../clock';
import { createManualClock, createRecordingLogger, createRecordingMeter, describeEachDatabase } from '@aikb/test-support';
import { createSpanStore, withSpan } from '../tracing';
import { createPoolMonitor, type ConnectionLeak, type PoolMonitor } from './index';

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
    expect(monitor.stats()).toMatchObject({ activeConnections: max, availableConnections: 0, queuedRequests: 3, maxConnections: max, utilizationPercent: 100 });
    for (const client of held) client.release();
    await Promise.all(queued);
    expect(monitor.stats()).toMatchObject({ activeConnections: 0, availableConnections: max, queuedRequests: 0, utilizationPercent: 0 });
    const stats = monitor.stats();
    expect(stats.waitTimeMs.count).toBe(max + 3);
    expect(stats.holdTimeMs.count).toBe(max + 3);
    expect(stats.waitTimeMs.p99).toBeGreaterThanOrEqual(stats.waitTimeMs.p50);
    expect(stats.waitTimeMs.max).toBeGreaterThan(0);
  });

  it('measures a connection taken with a callback and released through done()', async () => {
    monitor = createPoolMonitor(db().pool);
    await new Promise<void>((resolve, reject) => {
      db().pool.connect((error, client, done) => {
        if (error || !client) return reject(error ?? new Error('connect gave no client'));
        client.query('SELECT 1').then(() => {
          done();
          resolve();
        }, reject);
      });
    });
    expect(monitor.stats().holdTimeMs.count).toBe(1);
    expect(monitor.stats().activeConnections).toBe(0);
  });

  it('reports a connection held past the threshold once, with the stack where it was acquired', async () => {
    const time = createManualClock(0);
    const { lines, ...logger } = createRecordingLogger();
    monitor = createPoolMonitor(db().pool, { leakDetectionThresholdMs: 1000, leakCheckIntervalMs: 0, captureStacks: true, clock: time, logger });
    async function forgetfulHandler() {
      return db().pool.connect();
    }
    const client = await forgetfulHandler();
    try {
      time.advance(999);
      expect(monitor.checkLeaks()).toEqual([]);
      time.advance(1);
      const [leak] = monitor.checkLeaks();
      expect(leak).toMatchObject({ heldMs: 1000 });
      expect(leak!.stack).toMatch(/^connection acquired at:\n/);
      expect(leak!.stack).toContain('forgetfulHandler');
      time.advance(5000);
      expect(monitor.checkLeaks()).toEqual([]);
      const warnings = lines.filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/possible connection leak/);
      expect(warnings[0]!.obj.stack).toContain('forgetfulHandler');
      expect(monitor.stats().leaks).toEqual({ detected: 1, outstanding: 1, thresholdMs: 1000 });
    } finally {
      client.release();
    }
    expect(monitor.stats().leaks).toEqual({ detected: 1, outstanding: 0, thresholdMs: 1000 });
  });

  it('does not count a caller being handed an idle connection as queued (a health query in flight)', async () => {
    monitor = createPoolMonitor(db().pool);
    await db().pool.query('SELECT 1');
    const before = monitor.stats();
    expect(db().pool.idleCount).toBeGreaterThan(0);
    const pending = db().pool.query('SELECT 1');
    expect(monitor.stats()).toEqual(before);
    await pending;
  });

  it('hands out and returns the connection when a listener throws, and logs the error', async () => {
    const { lines, ...logger } = createRecordingLogger();
    monitor = createPoolMonitor(db().pool, { logger });
    const seen: string[] = [];
    monitor.subscribe({
      acquired: () => {
        throw new Error('acquired listener broke');
      },
      released: () => {
        throw new Error('released listener broke');
      },
    });
    monitor.subscribe({ acquired: () => seen.push('acquired'), released: () => seen.push('released') });
    const max = monitor.stats().maxConnections;
    for (let i = 0; i < max + 2; i++) await db().pool.query('SELECT 1');
    const client = await db().pool.connect();
    client.release();
    expect(monitor.stats()).toMatchObject({ activeConnections: 0, queuedRequests: 0 });
    expect(seen.filter((e) => e === 'released')).toHaveLength(max + 3);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(2 * (max + 3));
    expect(errors[0]!.msg).toMatch(/listener threw on acquired/);
    expect((errors[0]!.obj.err as Error).message).toBe('acquired listener broke');
  });

  it('captures acquire stacks only while a leak hunt runs, and names the trace without one', async () => {
    const time = createManualClock(0);
    const { lines, ...logger } = createRecordingLogger();
    monitor = createPoolMonitor(db().pool, { leakDetectionThresholdMs: 1000, leakCheckIntervalMs: 0, clock: time, logger });
    const spans = createSpanStore();
    async function quietHandler() {
      return withSpan('GET /api/quiet', () => db().pool.connect(), { recorder: spans });
    }
    async function huntedHandler() {
      return db().pool.connect();
    }
    expect(monitor.leakHunt()).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
    const quiet = await quietHandler();
    quiet.release();
    // Pools of one connection (PGlite): hold one at a time.
    const unhunted = await quietHandler();
    try {
      time.advance(1000);
      const [leak] = monitor.checkLeaks();
      const span = spans.query().find((s) => s.spanName === 'GET /api/quiet');
      expect(leak).toEqual({ heldMs: 1000, stack: undefined, traceId: span?.traceId, spanId: span?.spanId });
      expect(leak!.traceId).toMatch(/^[0-9a-f]{32}$/);
      const warning = lines.find((l) => l.level === 'warn');
      expect(warning!.msg).toContain(`acquired in trace ${leak!.traceId} (span ${leak!.spanId})`);
      expect(warning!.obj).toMatchObject({ traceId: leak!.traceId, spanId: leak!.spanId, stack: undefined });
    } finally {
      unhunted.release();
    }
    expect(monitor.startLeakHunt(5000)).toEqual({ capturingStacks: true, always: false, remainingMs: 5000 });
    time.advance(1000);
    const hunted = await huntedHandler();
    try {
      expect(monitor.stats().leakHunt).toEqual({ capturingStacks: true, always: false, remainingMs: 4000 });
      time.advance(1000);
      const [leak] = monitor.checkLeaks();
      expect(leak!.stack).toContain('huntedHandler');
    } finally {
      hunted.release();
    }
    time.advance(3000);
    expect(monitor.leakHunt()).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
    monitor.startLeakHunt();
    expect(monitor.leakHunt().remainingMs).toBe(15 * 60_000);
    expect(monitor.stopLeakHunt()).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
    time.advance(1000);
    const after = await huntedHandler();
    time.advance(1000);
    try {
      expect(monitor.checkLeaks()).toEqual([expect.objectContaining({ stack: undefined, traceId: undefined })]);
    } finally {
      after.release();
    }
  });

  it("attributes connections to the request's span through nested async calls", async () => {
    const time = createManualClock(0);
    monitor = createPoolMonitor(db().pool, { clock: time });
    const spans = createSpanStore();
    const repository = {
      async find() {
        await db().pool.query('SELECT 1');
      },
      async findAll() {
        await Promise.all([this.find(), this.find()]);
      },
    };
    await withSpan(
      'GET /api/documents',
      async () => {
        await repository.find();
        await withSpan(
          'documents.enrich',
          async () => {
            await repository.findAll();
            const client = await db().pool.connect();
            time.advance(250);
            client.release();
          },
          { recorder: spans },
        );
        await new Promise((resolve) => setImmediate(resolve));
        await repository.find();
      },
      { recorder: spans },
    );
    await withSpan('GET /api/other', () => repository.find(), { recorder: spans });
    const byName = Object.fromEntries(spans.query().map((s) => [s.spanName, s]));
    expect(byName['documents.enrich']).toMatchObject({ connectionsUsed: 3, longestHoldMs: 250 });
    expect(byName['GET /api/documents']).toMatchObject({ connectionsUsed: 5, longestHoldMs: 250 });
    expect(byName['GET /api/other']).toMatchObject({ connectionsUsed: 1, longestHoldMs: 0 });
  });
});

describeEachDatabase('PoolMonitor metrics', (db) => {
  it('records wait and use times and observes usage, max, pending requests and leaks through its meter, labelled pool.name', async () => {
    const recording = createRecordingMeter();
    let now = 0;
    const monitor = createPoolMonitor(db().pool, {
      meter: recording.meter,
      name: 'main',
      clock: { ...systemClock, now: () => now },
      leakDetectionThresholdMs: 1000,
      leakCheckIntervalMs: 0,
    });
    try {
      const client = await db().pool.connect();
      const pool = { 'pool.name': 'main' };
      expect(await recording.points('db.client.connections.usage')).toEqual(
        expect.arrayContaining([
          { attributes: { ...pool, state: 'used' }, value: 1 },
          { attributes: { ...pool, state: 'idle' }, value: db().pool.idleCount },
        ]),
      );
      expect(await recording.points('db.client.connections.max')).toEqual([{ attributes: pool, value: monitor.stats().maxConnections }]);
      expect(await recording.points('db.client.connections.pending_requests')).toEqual([{ attributes: pool, value: 0 }]);
      expect(await recording.points('aikb.db.client.connection.leaks')).toEqual([{ attributes: pool, value: 0 }]);
      now += 1500;
      monitor.checkLeaks();
      expect(await recording.total('aikb.db.client.connection.leaks', pool)).toBe(1);
      client.release();
      // Released, then closed: a callback still registered would now observe 0 used.
      monitor.close();
      expect(await recording.points('db.client.connections.wait_time')).toEqual([{ attributes: pool, value: 1, sum: 0 }]);
      expect(await recording.points('db.client.connections.use_time')).toEqual([{ attributes: pool, value: 1, sum: 1.5 }]);
      expect(await recording.points('db.client.connections.usage')).not.toContainEqual({ attributes: { ...pool, state: 'used' }, value: 0 });
    } finally {
      monitor.close();
      await recording.shutdown();
    }
  });
});

describe('createPoolMonitor', () => {
  const fakePool = () => ({ connect: async () => ({}) as PoolClient, totalCount: 0, idleCount: 0, waitingCount: 0, options: { max: 4 } });

  it('rejects bad options naming the option, and a pool monitored twice', () => {
    expect(() => createPoolMonitor(fakePool(), { leakDetectionThresholdMs: -1 })).toThrow(
      /^createPoolMonitor: leakDetectionThresholdMs must be a number ≥ 0 \(got -1\)$/,
    );
    expect(() => createPoolMonitor(fakePool(), { captureStacks: 'yes' as never })).toThrow(/captureStacks must be a boolean/);
    const pool = fakePool();
    const monitor = createPoolMonitor(pool);
    expect(() => createPoolMonitor(pool)).toThrow(/already monitored/);
    monitor.close();
    createPoolMonitor(pool).close();
    expect(() => createPoolMonitor(fakePool(), { meter: { createHistogram() {} } as never })).toThrow(
      /createPoolMonitor: meter must be an OpenTelemetry Meter/,
    );
  });

  it('rejects a leak hunt that is not a positive duration within maxLeakHuntMs, changing nothing', () => {
    const monitor = createPoolMonitor(fakePool(), { maxLeakHuntMs: 60_000, clock: createManualClock(0) });
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 60_001, '10' as never]) {
      expect(() => monitor.startLeakHunt(bad)).toThrow(/durationMs must be a number > 0/);
    }
    expect(monitor.leakHunt()).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
    expect(monitor.startLeakHunt(60_000).remainingMs).toBe(60_000);
    expect(() => createPoolMonitor(fakePool(), { maxLeakHuntMs: -1 })).toThrow(/maxLeakHuntMs must be a number/);
    monitor.close();
  });

  it('reports stacks as always captured with captureStacks, and never while leak detection is off', () => {
    const always = createPoolMonitor(fakePool(), { captureStacks: true });
    expect(always.leakHunt()).toEqual({ capturingStacks: true, always: true, remainingMs: 0 });
    always.close();
    const off = createPoolMonitor(fakePool(), { leakDetectionThresholdMs: 0 });
    expect(off.startLeakHunt(1000)).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
    off.close();
  });

  it('checks for leaks every leakCheckIntervalMs on its clock, and stops when closed', async () => {
    vi.useFakeTimers();
    try {
      const pool = fakePool();
      const monitor = createPoolMonitor(pool, { leakDetectionThresholdMs: 1000, leakCheckIntervalMs: 400, clock: systemClock });
      const leaked: ConnectionLeak[] = [];
      monitor.subscribe({ leaked: (leak) => void leaked.push(leak) });
      await pool.connect();
      // Checks at 400, 800 and 1200 ms: the connection held past 1000 ms is found at 1200.
      await vi.advanceTimersByTimeAsync(1199);
      expect(leaked).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(leaked.map((leak) => leak.heldMs)).toEqual([1200]);
      monitor.close();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
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
