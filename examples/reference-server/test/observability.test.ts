import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemporaryDatabase, testDatabaseUrl } from '@aikb/test-support';
import { eventually, send, startServerProcess, tempDataDir, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-0123456789';
const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const TRACE_ID = /^[0-9a-f]{32}$/;

let server: ServerProcess;
let data: ReturnType<typeof tempDataDir>;
let logFile: string;

beforeAll(async () => {
  data = tempDataDir();
  logFile = path.join(path.dirname(data.dir), 'log', 'server.log');
  server = await startServerProcess({ AIKB_DATA_DIR: data.dir, ADMIN_TOKEN, LOG_FILE: logFile });
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  data?.cleanup();
});

const get = (pathname: string, headers: Record<string, string> = {}) => send(server, 'GET', pathname, { headers });

function logLines(): Array<Record<string, unknown>> {
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('aikb-server observability (the runbook, end to end)', () => {
  it('curl /api/health | jq .tracing → enabled, middleware active, trace ids working; pool measured', async () => {
    const { status, body, headers } = await get('/api/health');
    expect(status).toBe(200);
    expect(body.tracing).toEqual({ enabled: true, middleware: 'active', traceIdGeneration: 'working' });
    expect(Object.keys(body.components)).toEqual(['database', 'redis', 'pool', 'search']);
    expect(body.components.pool).toMatchObject({ status: 'ok', maxConnections: 1 });
    expect(body.components.pool.latencyMs).toBeGreaterThanOrEqual(0);
    expect(headers.get('x-trace-id')).toMatch(TRACE_ID);
  });

  it('curl /api/health → the pool as it was before the check: its own database query is not queued', async () => {
    for (let i = 0; i < 5; i++) {
      const { body } = await get('/api/health');
      const stats = (await get('/api/health/pool-stats')).body;
      const figures = ['activeConnections', 'availableConnections', 'queuedRequests', 'maxConnections', 'utilizationPercent'] as const;
      const pick = (o: Record<string, unknown>) => Object.fromEntries(figures.map((k) => [k, o[k]]));
      expect(pick(body.components.pool)).toEqual({
        activeConnections: 0,
        availableConnections: 1,
        queuedRequests: 0,
        maxConnections: 1,
        utilizationPercent: 0,
      });
      expect(pick(body.components.pool)).toEqual(pick(stats));
    }
  });

  it('curl -X POST /api/admin/pool/leak-hunting → stacks captured for a bounded time, shown in pool-stats and system status', async () => {
    const before = await get('/api/health/pool-stats');
    expect(before.body.leakHunt).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
    const post = (body: string, headers: Record<string, string> = admin) =>
      fetch(`${server.url}/api/admin/pool/leak-hunting`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then(
        async (res) => ({ status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any }),
      );
    expect((await post('{"enabled": true}', {})).status).toBe(401);
    const bad = await post('{"enabled": true, "minutes": 0}');
    expect(bad).toMatchObject({ status: 400, body: { field: 'minutes' } });
    expect(bad.type).toMatch(/^application\/problem\+json/);
    const on = await post('{"enabled": true, "minutes": 5}');
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ capturingStacks: true, always: false });
    expect(on.body.remainingMs).toBeGreaterThan(4 * 60_000);
    expect((await get('/api/admin/system/status', admin)).body.subsystems.pool.leakHunt).toMatchObject({ capturingStacks: true });
    const off = await post('{"enabled": false}');
    expect(off.body).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
    expect((await get('/api/health/pool-stats')).body.leakHunt.capturingStacks).toBe(false);
  });

  it('curl -i ... | grep -i x-trace-id → on every response, a traceparent honoured', async () => {
    const missing = await get('/api/no-such-route');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-trace-id')).toMatch(TRACE_ID);
    const joined = await get('/api/health', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
    expect(joined.headers.get('x-trace-id')).toBe('0af7651916cd43dd8448eb211c80319c');
  });

  it('curl /api/health/pool-stats → the five figures', async () => {
    const { status, body } = await get('/api/health/pool-stats');
    expect(status).toBe(200);
    expect(body).toMatchObject({ activeConnections: 0, availableConnections: 1, queuedRequests: 0, maxConnections: 1, utilizationPercent: 0 });
    expect(body.histograms.holdTimeMs.count).toBeGreaterThan(0);
  });

  it("curl /api/admin/traces?minConnections=1&limit=20 with the admin token → spans as the runbook's jq reads them", async () => {
    await get('/api/health');
    const { status, body } = await get('/api/admin/traces?minConnections=1&limit=20', admin);
    expect(status).toBe(200);
    expect(Array.isArray(body)).toBe(true);
    expect(body.length).toBeGreaterThan(0);
    expect(body.length).toBeLessThanOrEqual(20);
    for (const span of body) {
      expect(span).toMatchObject({ traceId: expect.stringMatching(TRACE_ID), spanName: expect.any(String), durationMs: expect.any(Number) });
      expect(span.connectionsUsed).toBeGreaterThanOrEqual(1);
    }
    expect(body.map((s: { spanName: string }) => s.spanName)).toContain('GET /api/health');
    expect((await get('/api/admin/traces')).status).toBe(401);
  });

  it('curl /api/admin/metrics/errors?window=1h → { errors }; an unknown window → 400', async () => {
    const ok = await get('/api/admin/metrics/errors?window=1h', admin);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ window: '1h', errors: expect.any(Array) });
    const bad = await get('/api/admin/metrics/errors?window=1y', admin);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'window' });
  });

  it('curl /api/admin/system/status → pool, tracing and redis, each registered by its subsystem', async () => {
    const { status, body } = await get('/api/admin/system/status', admin);
    expect(status).toBe(200);
    expect(body.subsystems).toMatchObject({
      pool: { maxConnections: 1, leaks: { thresholdMs: 60000 } },
      tracing: { enabled: true, sdkRegistered: false },
      redis: { configured: false, connection: 'disabled' },
    });
    expect(body.subsystems.tracing.spansRecorded).toBeGreaterThan(0);
  });

  it('curl /metrics → Prometheus text with HTTP and pool metrics', async () => {
    const { status, text, headers } = await get('/metrics');
    expect(status).toBe(200);
    expect(headers.get('content-type')).toMatch(/^text\/plain/);
    const names = new Set(parsePrometheusTextFormat(text).map((f) => f.name));
    for (const name of [
      'http_server_request_duration_seconds',
      'db_client_connections_usage',
      'db_client_connections_max',
      'db_client_connections_pending_requests',
      'db_client_connections_wait_time_seconds',
      'db_client_connections_use_time_seconds',
    ]) {
      expect(names).toContain(name);
    }
    expect(text).toMatch(
      /http_server_request_duration_seconds_count\{http_request_method="GET",http_route="\/api\/health",http_response_status_code="200"\} [1-9]/,
    );
  });

  it('LOG_FILE has "✓ Request tracing initialized" and request lines carrying requestId and traceId', async () => {
    const { headers } = await get('/api/health/pool-stats', { 'X-Request-ID': 'req-e2e-42' });
    const traceId = headers.get('x-trace-id');
    await eventually(async () => logLines().some((l) => l.requestId === 'req-e2e-42'), 5000, 'request line in LOG_FILE');
    const lines = logLines();
    expect(lines.some((l) => l.msg === '✓ Request tracing initialized')).toBe(true);
    const mine = lines.filter((l) => l.requestId === 'req-e2e-42');
    expect(mine.length).toBeGreaterThan(0);
    for (const line of mine) expect(line).toMatchObject({ traceId, endpoint: '/api/health/pool-stats', status: 200 });
    expect(server.logs.some((l) => l.msg === '✓ Request tracing initialized')).toBe(true);
  });

  it('the Grafana dashboards query only metrics the server exports (or the agreed names of subsystems still to come)', async () => {
    const exported = new Set(parsePrometheusTextFormat((await get('/metrics')).text).map((f) => f.name));
    const upcoming = ['aikb_auth_login_duration_seconds', 'aikb_cache_requests_total', 'aikb_vector_search_requests_total'];
    const ops = fileURLToPath(new URL('../ops/grafana/', import.meta.url));
    for (const file of ['aikb-connection-pool.json', 'aikb-overview.json']) {
      const dashboard = JSON.parse(readFileSync(path.join(ops, file), 'utf8')) as { title: string; panels: Array<{ targets: Array<{ expr: string }> }> };
      const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/\b(?:aikb|db_client|http_server)_[a-z_]+/g) ?? []));
      expect(used.length).toBeGreaterThan(0);
      for (const name of used.map((n) => n.replace(/_(bucket|count|sum)$/, ''))) {
        expect(exported.has(name) || upcoming.includes(name), `${file}: ${name}`).toBe(true);
      }
    }
  });
});

describe.runIf(testDatabaseUrl)('aikb-server observability on PostgreSQL', () => {
  it('reports the configured pool size (SUPABASE_POOL_SIZE) in pool-stats and /metrics', async () => {
    const database = await createTemporaryDatabase(testDatabaseUrl!);
    const pg = await startServerProcess({ DATABASE_URL: database.url, SUPABASE_POOL_SIZE: '3' });
    try {
      const stats = (await (await fetch(`${pg.url}/api/health/pool-stats`)).json()) as { activeConnections: number; availableConnections: number };
      expect(stats).toMatchObject({ maxConnections: 3, queuedRequests: 0 });
      expect(stats.activeConnections + stats.availableConnections).toBe(3);
      const text = await (await fetch(`${pg.url}/metrics`)).text();
      expect(text).toMatch(/^db_client_connections_max\{pool_name="postgres"\} 3$/m);
    } finally {
      await pg.stop('SIGKILL');
      await database.drop();
    }
  });
});
