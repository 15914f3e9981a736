/**
 * `/metrics` passes Prometheus' own linter (`promtool check metrics`, from Debian's `prometheus`
 * package, which .ci/run installs) with no findings: names, types, units and help text as
 * Prometheus expects them, for every family the server registers, after traffic has touched them.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createTemporaryDatabase, servicesRequired, testDatabaseUrl, testRedisUrl } from '@aikb/test-support';
import { startServerProcess, tempDataDir, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-0123456789';
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

/** promtool's findings for an exposition (empty when it passes). */
function promtoolFindings(exposition: string): string {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 30_000 });
  if (run.error) throw run.error;
  const findings = `${run.stdout}${run.stderr}`.trim();
  return run.status === 0 ? findings : findings || `promtool exited with ${run.status}`;
}

/** Requests that touch every kind of metric: HTTP (2xx, 4xx), logins, flags, admin reads, pool. */
async function exercise(server: ServerProcess): Promise<void> {
  const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  const requests: Array<[string, RequestInit?]> = [
    ['/api/health'],
    ['/api/health/pool-stats'],
    ['/no/such/route'],
    [
      '/api/auth/login',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'nobody@example.com', password: 'wrong-password' }) },
    ],
    ['/api/admin/metrics/errors?window=1h', { headers: admin }],
    ['/api/admin/system/status', { headers: admin }],
  ];
  for (const [pathname, init] of requests) await (await fetch(`${server.url}${pathname}`, init)).arrayBuffer();
}

describe.runIf(hasPromtool)('aikb-server /metrics under promtool check metrics', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(env: Record<string, string>): Promise<ServerProcess> {
    const data = tempDataDir();
    cleanups.push(() => data.cleanup());
    const server = await startServerProcess({ AIKB_DATA_DIR: data.dir, ADMIN_TOKEN, ...env });
    cleanups.push(() => server.stop('SIGKILL'));
    return server;
  }

  async function expectNoFindings(server: ServerProcess): Promise<void> {
    await exercise(server);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    const exposition = await res.text();
    expect(exposition).toMatch(/^# TYPE http_server_request_duration_seconds histogram$/m);
    expect(promtoolFindings(exposition)).toBe('');
  }

  it('has no findings on embedded PGlite', async () => {
    await expectNoFindings(await start({}));
  });

  it.runIf(testDatabaseUrl && testRedisUrl)('has no findings on PostgreSQL and Redis', async () => {
    const database = await createTemporaryDatabase(testDatabaseUrl!);
    cleanups.push(() => database.drop());
    await expectNoFindings(await start({ DATABASE_URL: database.url, REDIS_URL: testRedisUrl! }));
  });
});

if (!hasPromtool && servicesRequired) {
  describe('aikb-server /metrics under promtool check metrics', () => {
    it('needs promtool (AIKB_REQUIRE_SERVICES=1; .ci/run installs it)', () => {
      throw new Error('promtool is not on PATH (apt-get install prometheus)');
    });
  });
} else if (!hasPromtool) {
  describe.skip('aikb-server /metrics under promtool check metrics (skipped: promtool not on PATH; apt-get install prometheus)', () => {
    it('has no findings', () => {});
  });
}
