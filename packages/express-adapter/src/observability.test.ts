import express, { Router } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AikbError, type Logger } from '@aikb/core';
import { createRecordingLogger } from '@aikb/test-support';
import { createDatabase, type Database } from '@aikb/core/db';
import { createHealthRegistry, createStatusRegistry } from '@aikb/core/health';
import { createErrorMetrics } from '@aikb/core/metrics';
import { createPoolMonitor, type PoolMonitor } from '@aikb/core/pool';
import { createSpanStore, currentTraceparent, withSpan } from '@aikb/core/tracing';
import { createRecordingMeter } from '@aikb/test-support';
import {
  currentRequest,
  errorHandler,
  errorMetricsRouter,
  healthRouter,
  httpMetrics,
  notFound,
  poolStatsRouter,
  requestLogger,
  requestLogging,
  systemStatusRouter,
  tracesRouter,
  tracing,
} from './index';

class SagaCompensationError extends AikbError {
  constructor(message: string) {
    super('INTERNAL', message);
  }
}

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg?: string;
}

let db: Database;
let monitor: PoolMonitor;
const lines: Line[] = [];
const parent: Logger & { child(b: Record<string, unknown>): Logger } = {
  ...log({}),
  child: (bindings) => log(bindings),
};
function log(bindings: Record<string, unknown>): Logger {
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj: { ...bindings, ...obj }, msg });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const spans = createSpanStore();
const errors = createErrorMetrics();
const recording = createRecordingMeter();
const status = createStatusRegistry();
const health = createHealthRegistry();

function app() {
  const documents = Router();
  documents.get('/:id', async (req, res) => {
    await db.pool.query('SELECT 1');
    await Promise.all([db.pool.query('SELECT 2'), db.pool.query('SELECT 3')]);
    requestLogger(res).info({ id: req.params.id }, 'document read');
    res.json({ id: req.params.id, traceparent: currentTraceparent() });
  });
  documents.post('/upload', () => {
    throw new SagaCompensationError('Failed to delete from Drive');
  });
  const admin = Router();
  admin.use('/traces', tracesRouter(spans));
  admin.use('/metrics/errors', errorMetricsRouter(errors));
  admin.use('/system/status', systemStatusRouter(status));
  return express()
    .use(tracing({ recorder: spans }))
    .use(requestLogging({ logger: parent }))
    .use(httpMetrics({ meter: recording.meter, errorMetrics: errors }))
    .use('/api/health', healthRouter({ registry: health, tracing: true }))
    .use('/api/health/pool-stats', poolStatsRouter(monitor))
    .use('/api/documents', documents)
    .use('/api/admin', admin)
    .use(notFound())
    .use(errorHandler({ logger: parent }));
}

beforeAll(async () => {
  db = await createDatabase({ dataDir: 'memory://', vector: false });
  monitor = createPoolMonitor(db.pool);
  status.register('pool', () => ({ ...monitor.stats() }));
  health.register('database', () => ({ status: 'ok' }));
});
afterAll(async () => {
  monitor.close();
  await db.close();
  await recording.shutdown();
});

const TRACE_ID = /^[0-9a-f]{32}$/;

describe('tracing', () => {
  it('sends X-Trace-ID on a success, an error and a 404', async () => {
    const ok = await request(app()).get('/api/documents/7');
    const failed = await request(app()).post('/api/documents/upload');
    const missing = await request(app()).get('/nowhere');
    expect([ok.status, failed.status, missing.status]).toEqual([200, 500, 404]);
    for (const res of [ok, failed, missing]) {
      expect(res.headers['x-trace-id']).toMatch(TRACE_ID);
      expect(res.headers['x-trace-id']).not.toBe('0'.repeat(32));
    }
    expect(new Set([ok, failed, missing].map((r) => r.headers['x-trace-id'])).size).toBe(3);
  });

  it('honours an incoming traceparent: the same trace id comes back and is propagated downstream', async () => {
    const res = await request(app()).get('/api/documents/1').set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(res.headers['x-trace-id']).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(res.body.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
  });

  it('starts a new trace for a malformed traceparent', async () => {
    const res = await request(app()).get('/api/documents/1').set('traceparent', '00-zz-00f067aa0ba902b7-01');
    expect(res.headers['x-trace-id']).toMatch(TRACE_ID);
  });

  it("records each request's span with its route template and the connections it used", async () => {
    const res = await request(app()).get('/api/documents/42');
    const [span] = spans.query({ limit: 1 });
    expect(span).toMatchObject({ traceId: res.headers['x-trace-id'], spanName: 'GET /api/documents/:id', connectionsUsed: 3, status: 'unset' });
  });
});

describe('admin endpoints', () => {
  it('GET /api/admin/traces filters by minConnections and limit, and rejects a bad limit', async () => {
    await request(app()).get('/api/documents/1');
    await request(app()).get('/api/health');
    const res = await request(app()).get('/api/admin/traces?minConnections=3&limit=1');
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(1);
    expect(res.body[0]).toMatchObject({ spanName: 'GET /api/documents/:id', connectionsUsed: 3 });
    expect(res.body[0].durationMs).toBeGreaterThan(0);
    const bad = await request(app()).get('/api/admin/traces?limit=ten');
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'limit' });
  });

  it('GET /api/admin/metrics/errors reports errors per route template; a bad window is a 400 problem', async () => {
    await request(app()).post('/api/documents/upload');
    const res = await request(app()).get('/api/admin/metrics/errors?window=1h');
    expect(res.status).toBe(200);
    const upload = res.body.errors.find((e: { endpoint: string }) => e.endpoint === '/api/documents/upload');
    expect(upload).toMatchObject({ errorRate: 1, topErrors: [{ type: 'SagaCompensationError', message: 'Failed to delete from Drive' }] });
    expect(upload.errorCount).toBeGreaterThanOrEqual(1);
    const bad = await request(app()).get('/api/admin/metrics/errors?window=2h');
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/problem\+json/);
    expect(bad.body).toMatchObject({ field: 'window' });
    for (const window of ['__proto__', 'constructor', 'toString']) {
      const member = await request(app()).get(`/api/admin/metrics/errors?window=${window}`);
      expect([member.status, member.body.field]).toEqual([400, 'window']);
    }
  });

  it('GET /api/admin/system/status lists what each subsystem registered', async () => {
    const res = await request(app()).get('/api/admin/system/status');
    expect(res.body).toEqual({ subsystems: { pool: expect.objectContaining({ maxConnections: 1 }) } });
  });
});

describe('health', () => {
  it('GET /api/health reports the tracing block, measured on the request', async () => {
    const res = await request(app()).get('/api/health');
    expect(res.body.tracing).toEqual({ enabled: true, middleware: 'active', traceIdGeneration: 'working' });
    const without = await request(express().use('/api/health', healthRouter({ registry: health, tracing: true }))).get('/api/health');
    expect(without.body.tracing.middleware).toBe('inactive');
  });

  it('GET /api/health/pool-stats answers the five figures plus histograms', async () => {
    const res = await request(app()).get('/api/health/pool-stats');
    expect(res.body).toMatchObject({ activeConnections: 0, availableConnections: 1, queuedRequests: 0, maxConnections: 1, utilizationPercent: 0 });
    expect(res.body.histograms.waitTimeMs).toEqual(expect.objectContaining({ count: expect.any(Number), p50: expect.any(Number), p99: expect.any(Number) }));
  });
});

describe('request logs', () => {
  it('puts requestId and traceId on every line of a request', async () => {
    lines.length = 0;
    const res = await request(app()).get('/api/documents/9').set('X-Request-ID', 'req-xyz-123');
    expect(res.headers['x-request-id']).toBe('req-xyz-123');
    expect(lines.map((l) => l.msg)).toEqual(['document read', 'GET /api/documents/:id 200']);
    for (const line of lines) expect(line.obj).toMatchObject({ requestId: 'req-xyz-123', traceId: res.headers['x-trace-id'] });
  });

  it('adds the fields itself when the logger cannot make children', async () => {
    const { lines: plain, ...logger } = createRecordingLogger();
    const res = await request(
      express()
        .use(tracing())
        .use(requestLogging({ logger }))
        .get('/x', (_req, r) => r.status(204).end()),
    ).get('/x');
    expect(plain).toEqual([
      {
        level: 'info',
        obj: expect.objectContaining({ requestId: res.headers['x-request-id'], traceId: res.headers['x-trace-id'], status: 204 }),
        msg: 'GET /x 204',
      },
    ]);
    expect(res.headers['x-request-id']).toMatch(/^req-[0-9a-f-]{36}$/);
  });

  it('knows the current request through nested awaits (currentRequest)', async () => {
    const seen: Array<string | undefined> = [];
    const probe = express()
      .use(requestLogging({ logger: parent }))
      .get('/deep', async (_req, res) => {
        await new Promise((resolve) => setImmediate(resolve));
        await Promise.all([1, 2].map(async () => seen.push(currentRequest()?.requestId)));
        res.end();
      });
    await request(probe).get('/deep').set('X-Request-ID', 'req-deep');
    expect(seen).toEqual(['req-deep', 'req-deep']);
    expect(currentRequest()).toBeUndefined();
  });

  it('knows the current request inside the span tracing runs it in, and makes a child logger only for a handler that asks', async () => {
    const seen: Array<string | undefined> = [];
    const made: Array<Record<string, unknown>> = [];
    const { lines: written, ...logger } = createRecordingLogger();
    const probe = express()
      .use(tracing())
      .use(requestLogging({ logger, child: (bindings) => (made.push(bindings), logger) }))
      .get('/quiet', async (_req, res) => {
        await new Promise((resolve) => setImmediate(resolve));
        seen.push(currentRequest()?.requestId);
        await withSpan('inner', () => seen.push(currentRequest()?.requestId));
        res.end();
      })
      .get('/talks', (_req, res) => {
        requestLogger(res).info({}, 'talking');
        res.end();
      });
    const quiet = await request(probe).get('/quiet').set('X-Request-ID', 'req-quiet');
    expect(seen).toEqual(['req-quiet', 'req-quiet']);
    expect(currentRequest()).toBeUndefined();
    expect(made).toEqual([]);
    expect(written.at(-1)).toMatchObject({ msg: 'GET /quiet 200', obj: { requestId: 'req-quiet', traceId: quiet.headers['x-trace-id'] } });
    const talks = await request(probe).get('/talks').set('X-Request-ID', 'req-talks');
    expect(made).toEqual([{ requestId: 'req-talks', traceId: talks.headers['x-trace-id'] }]);
  });

  it('names requestId, endpoint, error type and message on an error line', async () => {
    lines.length = 0;
    const res = await request(app()).post('/api/documents/upload');
    const errorLines = lines.filter((l) => l.level === 'error');
    expect(errorLines.length).toBeGreaterThanOrEqual(1);
    for (const line of errorLines) {
      expect(line.obj).toMatchObject({
        requestId: res.headers['x-request-id'],
        traceId: res.headers['x-trace-id'],
        endpoint: '/api/documents/upload',
        errorType: 'SagaCompensationError',
      });
    }
    expect(errorLines.some((l) => l.msg?.includes('Failed to delete from Drive'))).toBe(true);
  });
});

describe('HTTP metrics', () => {
  it('records request durations by route template, never by raw URL', async () => {
    await request(app()).get('/api/documents/5');
    await request(app()).get('/api/documents/6');
    const routes = (await recording.points('http.server.request.duration')).map((p) => p.attributes['http.route']);
    expect(routes).toContain('/api/documents/:id');
    expect(routes).not.toContain('/api/documents/5');
  });
});
