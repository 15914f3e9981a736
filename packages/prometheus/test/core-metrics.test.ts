/**
 * What core and the Express adapter record, through this bridge, is exactly what `/metrics` served
 * before metrics moved to OpenTelemetry: the runbook, the Grafana dashboards and the alerts query
 * these names, types and labels.
 */
import express from 'express';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConstantTimeAuthenticator, createMemoryUserStore, type PasswordHasher } from '@aikb/core/auth';
import { createDatabase, type Database } from '@aikb/core/db';
import { createFeatureFlagClient, createMemoryFlagStore, type FeatureFlagClient } from '@aikb/core/flags';
import { createPoolMonitor, type PoolMonitor } from '@aikb/core/pool';
import { httpMetrics } from '@aikb/express';
import { createMetricsHandler, createPrometheusMeterProvider } from '@aikb/prometheus';

/** name → [type, HELP, label names of its samples (histograms: of `_count`)] as served before. */
const EXPECTED: Record<string, [string, string, string[]]> = {
  aikb_feature_flag_evaluations_total: ['COUNTER', 'Feature flag evaluations, by flag and result.', ['flag', 'result']],
  aikb_cache_requests_total: ['COUNTER', 'Cache lookups, by cache and result (a miss is an absent, expired or invalidated entry).', ['cache', 'result']],
  aikb_feature_flag_stale: ['GAUGE', '1 while feature flags may be stale (invalidation bus disconnected or flag store unreachable).', []],
  aikb_feature_flag_propagation_degraded: [
    'GAUGE',
    '1 while flag changes reach other instances only by polling the store (invalidation bus down or a publish failed).',
    [],
  ],
  aikb_auth_login_duration_seconds: ['HISTOGRAM', 'Time from reading a login body to answering it, by outcome.', ['outcome', 'constant_time']],
  aikb_auth_deadline_overruns_total: ['COUNTER', 'Login attempts whose work ended after their constant-time deadline (a timing signal).', []],
  aikb_auth_admission_refusals_total: ['COUNTER', 'Login attempts refused by admission control (hashing capacity), answered 503 at the deadline.', []],
  db_client_connections_usage: ['GAUGE', 'Connections of the pool: used (lent out) or idle (open, unused).', ['pool_name', 'state']],
  db_client_connections_max: ['GAUGE', 'The most connections the pool may open.', ['pool_name']],
  db_client_connections_pending_requests: ['GAUGE', 'Callers waiting for a connection (above 0: the pool is exhausted).', ['pool_name']],
  db_client_connections_wait_time_seconds: ['HISTOGRAM', 'Time callers waited for a connection.', ['pool_name']],
  db_client_connections_use_time_seconds: ['HISTOGRAM', 'Time a connection was held before release.', ['pool_name']],
  aikb_db_client_connection_leaks_total: ['COUNTER', 'Connections held longer than the leak-detection threshold.', ['pool_name']],
  http_server_request_duration_seconds: [
    'HISTOGRAM',
    'Duration of HTTP server requests, by route template and status.',
    ['http_request_method', 'http_route', 'http_response_status_code'],
  ],
};

const hasher: PasswordHasher = {
  algorithm: 'plain',
  parameters: {},
  verifyCostMs: 1,
  hash: async (password) => `$plain$${password}`,
  verify: async (encoded, password) => encoded === `$plain$${password}`,
  needsRehash: () => false,
  calibrate: async () => 1,
};

let db: Database;
let monitor: PoolMonitor;
let flags: FeatureFlagClient;
const registry = new Registry();
const meter = createPrometheusMeterProvider({ registry }).getMeter('@aikb/core');

beforeAll(async () => {
  db = await createDatabase({ dataDir: 'memory://', vector: false });
  monitor = createPoolMonitor(db.pool, { meter, name: 'pglite' });
  const store = createMemoryFlagStore();
  await store.put('checkout', { enabled: true, rolloutPercentage: 100 }, 't');
  flags = createFeatureFlagClient({ store, meter });
  await flags.start();
}, 60_000);
afterAll(async () => {
  await flags.close();
  monitor.close();
  await db.close();
});

describe('core and adapter metrics through createPrometheusMeterProvider', () => {
  it('are the families, types, labels and HELP texts the runbook and dashboards use', async () => {
    const users = createMemoryUserStore();
    await users.create({ email: 'a@example.com', passwordHash: await hasher.hash('pw'), roles: [] });
    const auth = createConstantTimeAuthenticator({ store: users, hasher, floorMs: 50, jitterMs: 0, meter });
    await auth.authenticate({ email: 'a@example.com', password: 'pw' });
    flags.isEnabled('checkout');
    await db.pool.query('SELECT 1');
    const app = express()
      .use(httpMetrics({ meter }))
      .get('/api/documents/:id', (_req, res) => void res.json({}))
      .get('/metrics', createMetricsHandler({ registry }));
    await request(app).get('/api/documents/7');

    const text = (await request(app).get('/metrics')).text;
    const served = Object.fromEntries(
      parsePrometheusTextFormat(text)
        .filter((family) => family.name !== 'aikb_prometheus_dropped_measurements_total')
        .map((family) => {
          const sample = text.split('\n').find((line) => line.startsWith(family.type === 'HISTOGRAM' ? `${family.name}_count` : family.name))!;
          const labels = [...(sample.match(/\{(.*)\}/)?.[1] ?? '').matchAll(/(\w+)="/g)].map((m) => m[1]);
          return [family.name, [family.type, family.help, labels]];
        }),
    );
    expect(served).toEqual(EXPECTED);
    expect(text).toContain('aikb_auth_login_duration_seconds_count{outcome="success",constant_time="true"} 1');
    expect(text).toContain('db_client_connections_usage{pool_name="pglite",state="used"} 0');
    expect(text).toContain(
      'http_server_request_duration_seconds_count{http_request_method="GET",http_route="/api/documents/:id",http_response_status_code="200"} 1',
    );
  });
});
