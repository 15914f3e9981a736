/**
 * The runbook across subsystems, against the real server process: every subsystem reports in the
 * system status and on /metrics, and the auth-latency procedure (turn the constant-time flag off,
 * log in, turn it back on) acts on the running authenticator at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startServerProcess, tempDataDir, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-runbook-0123456789';
const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const FLAG = 'priority_1_3_constant_time_auth';

let server: ServerProcess;
let data: ReturnType<typeof tempDataDir>;

beforeAll(async () => {
  data = tempDataDir();
  server = await startServerProcess({ AIKB_DATA_DIR: data.dir, ADMIN_TOKEN });
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  data?.cleanup();
});

const call = (method: string, pathname: string, body?: unknown, headers: Record<string, string> = {}) =>
  send(server, method, pathname, { json: body, headers });

const login = () => call('POST', '/auth/login', { email: 'test@example.com', password: 'test12345' });

describe('aikb-server: the runbook across subsystems', () => {
  it('GET /api/admin/system/status lists every subsystem, each reporting its own state', async () => {
    const { status, body } = await call('GET', '/api/admin/system/status', undefined, admin);
    expect(status).toBe(200);
    expect(Object.keys(body.subsystems)).toEqual(expect.arrayContaining(['auth', 'flags', 'pool', 'tracing', 'redis']));
    expect(body.subsystems.auth).toMatchObject({ floorMs: 500, jitterMs: 15, constantTime: { enabled: true, flag: FLAG } });
  });

  it('the auth-latency procedure: with the flag off logins are not padded, and back on they are', async () => {
    const off = await call('POST', `/api/admin/feature-flags/${FLAG}`, { enabled: false }, admin);
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ name: FLAG, enabled: false });
    try {
      expect((await login()).status).toBe(200);
      const status = await call('GET', '/api/admin/system/status', undefined, admin);
      expect(status.body.subsystems.auth.constantTime.enabled).toBe(false);
      const metrics = await call('GET', '/metrics');
      expect(metrics.text).toMatch(/aikb_auth_login_duration_seconds_count\{outcome="success",constant_time="false"\} 1/);
    } finally {
      expect((await call('POST', `/api/admin/feature-flags/${FLAG}`, { enabled: true }, admin)).status).toBe(200);
    }
    expect((await login()).status).toBe(200);
    const metrics = await call('GET', '/metrics');
    expect(metrics.text).toMatch(/aikb_auth_login_duration_seconds_count\{outcome="success",constant_time="true"\} 1/);
  });

  it("GET /metrics carries the figures of the runbook's monitoring list that exist so far", async () => {
    const { status, text } = await call('GET', '/metrics');
    expect(status).toBe(200);
    for (const name of [
      'http_server_request_duration_seconds_bucket', // error rate and p99 latency
      'aikb_auth_login_duration_seconds_bucket', // auth response time
      'aikb_cache_requests_total', // cache hit rate
      'db_client_connections_usage', // connection pool usage
      'db_client_connections_max',
      'aikb_feature_flag_evaluations_total',
      'aikb_auth_deadline_overruns_total',
    ]) {
      expect(text, name).toContain(name);
    }
  });
});
