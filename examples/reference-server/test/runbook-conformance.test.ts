/**
 * Runbook conformance: every procedure of the deployment runbook, in the runbook's order and in the
 * order of its steps, typed as an operator types it — its `curl` lines run by curl, its `jq` paths
 * and log greps checked on what comes back — against the built server as the systemd unit runs it
 * (`NODE_ENV=production`, `LOG_FILE`, PostgreSQL and Redis). `systemctl restart aikb-server` is a
 * SIGTERM (the unit's KillSignal) that must exit 0, then a new start; `npm run build` and `npm run
 * migrate` run for real, in a copy of the repository whose server builds into its own `dist` (the
 * other end-to-end tests use this one's). Where the service differs from the runbook on purpose
 * (the README's "Where the service differs from the runbook on purpose"), the test asserts what the
 * service does: admin endpoints want the admin token, the rollback loop's short names are 404s
 * naming the similar flags, the placeholders `priority_3_X` and `priority_X_Y` are 400s (flag
 * names are lower-case), log lines are JSON, the runbook's `server/src/...` files have other names
 * here. Not run: `sleep`s and `watch` (a few samples, or waiting for the condition, instead),
 * `time` (no timing assertions: the auth-latency procedure is checked through the flag's effect on
 * the system status and the login metric's `constant_time` label), `git revert HEAD`, Grafana.
 */
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTemporaryDatabase, createThrowawayRedis, hasRedisServer, testDatabaseUrl, testRedisUrl } from '@aikb/test-support';
import {
  curl,
  eventually,
  isolatedCheckout,
  runAikb,
  runProcess,
  send,
  startServerProcess,
  tempDataDir,
  useServerProcesses,
  type ServerProcess,
} from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-conformance-0123456789';
const asAdmin = { token: ADMIN_TOKEN };
const TEST_USER = { email: 'test@example.com', password: 'test12345' };
const repo = fileURLToPath(new URL('../../..', import.meta.url));
const TRACE_ID = /^x-trace-id: [0-9a-f]{32}\r?$/im;
const GATED = ['priority_1_1_vector_validation', 'priority_1_3_constant_time_auth', 'priority_2_1_saga_pattern', 'priority_2_2_rbac_api_filtering'];

// Some procedures build and restart the server: a minute each at most.
describe.runIf(testDatabaseUrl && (hasRedisServer() || testRedisUrl))(
  'the runbook, as an operator types it (production, PostgreSQL, Redis)',
  { timeout: 60_000 },
  () => {
    const { cleanups } = useServerProcesses();
    let server: ServerProcess;
    let env: Record<string, string>;
    let logFile: string;
    let driveDir: string;
    let checkout: string;
    /** Where the running server was built: undefined for this repository, else the copy built by a deployment. */
    let deployed: string | undefined;
    let userToken: string;

    beforeAll(async () => {
      const database = await createTemporaryDatabase(testDatabaseUrl!);
      cleanups.push(database.drop);
      // A Redis of its own when redis-server is there: flag changes go over a pub/sub channel,
      // which every database number of a shared Redis sees.
      const redis = hasRedisServer() ? await createThrowawayRedis() : undefined;
      if (redis) {
        await redis.start();
        cleanups.push(redis.kill);
      }
      const data = tempDataDir();
      cleanups.push(data.cleanup);
      logFile = path.join(path.dirname(data.dir), 'log', 'server.log');
      driveDir = path.join(data.dir, 'drive');
      checkout = isolatedCheckout(cleanups);
      env = {
        NODE_ENV: 'production',
        DATABASE_URL: database.url,
        REDIS_URL: redis?.url ?? testRedisUrl!,
        ADMIN_TOKEN,
        AUTH_JWT_SECRET: 'e2e-jwt-secret-for-the-runbook-conformance-test-0123',
        AIKB_DATA_DIR: data.dir,
        LOG_FILE: logFile,
        SUPABASE_POOL_SIZE: '4',
      };
      server = await startServerProcess(env);
      // Killed first (cleanups run last pushed first), before its database is dropped.
      cleanups.push(() => server.stop('SIGKILL'));
      // Production seeds no user: the runbook's test user, through the admin API.
      const created = await send(server, 'POST', '/api/admin/users', { token: ADMIN_TOKEN, json: { ...TEST_USER, roles: ['user'] } });
      expect(created.status).toBe(201);
      await healthy();
    }, 60_000);

    /** `curl http://localhost:3000/api/health`, until `.status` is "ok" (the runbook's `sleep 10`, or `watch`). */
    async function healthy(): Promise<void> {
      await eventually(async () => (await curl(server, ['http://localhost:3000/api/health'])).body?.status === 'ok', 15_000, '/api/health .status "ok"');
    }

    /** `systemctl restart aikb-server`: SIGTERM, exit 0, and a new start with `env` (from the deployed build). */
    async function restart(): Promise<void> {
      expect(await server.stop('SIGTERM')).toBe(0);
      server = await startServerProcess(env, deployed === undefined ? {} : { checkout: deployed });
      await healthy();
    }

    /** `npm run <script>` in the copy's server folder (the unit's WorkingDirectory), with the server's environment; exit 0. */
    async function npmRun(script: 'build' | 'migrate'): Promise<string> {
      const run = await runProcess('npm', ['run', script], {
        cwd: path.join(checkout, 'examples/reference-server'),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
        timeoutMs: 60_000,
      });
      expect(run, `npm run ${script}`).toMatchObject({ code: 0 });
      return run.stdout;
    }

    /** `tail -<n> /var/log/aikb/server.log | grep <pattern>`, on LOG_FILE: the matching lines. */
    function tailGrep(n: number, pattern: RegExp): string[] {
      const lines = readFileSync(logFile, 'utf8').split('\n').slice(0, -1);
      return lines.slice(-n).filter((line) => pattern.test(line));
    }

    /** `grep -n <pattern> <file>` in this repository: the matching lines. */
    function grepSource(file: string, pattern: RegExp): string[] {
      return readFileSync(path.join(repo, file), 'utf8')
        .split('\n')
        .filter((line) => pattern.test(line));
    }

    const flagRollouts = async () =>
      Object.fromEntries(
        ((await curl(server, ['http://localhost:3000/api/admin/feature-flags'], asAdmin)).body.flags as Array<{ name: string; rolloutPercentage: number }>).map(
          (f) => [f.name, f.rolloutPercentage],
        ),
      );

    const setRollout = (flag: string, percent: number) =>
      curl(
        server,
        [
          '-X',
          'POST',
          `http://localhost:3000/api/admin/feature-flags/${flag}`,
          '-H',
          'Content-Type: application/json',
          '-d',
          `{"rolloutPercentage": ${percent}}`,
        ],
        asAdmin,
      );

    it('Feature flags not taking effect after deployment: steps 1 to 5', async () => {
      // The runbook's priority_3_X stands for a flag; this server's are priority_1_1 … priority_2_2.
      const flag = 'priority_2_2_rbac_api_filtering';
      expect((await setRollout(flag, 50)).status).toBe(200); // the deployment's change

      // Step 1. As written (no token): refused, the admin API wants ADMIN_TOKEN.
      const anonymous = await curl(server, ['http://localhost:3000/api/admin/feature-flags/priority_3_X']);
      expect(anonymous).toMatchObject({ status: 401, body: { status: 401 } });
      // The placeholder as written: flag names are lower-case, so it is refused naming the field.
      expect(await curl(server, ['http://localhost:3000/api/admin/feature-flags/priority_3_X'], asAdmin)).toMatchObject({
        status: 400,
        body: { field: 'name', detail: expect.stringMatching(/lower-case/) },
      });
      const step1 = await curl(server, [`http://localhost:3000/api/admin/feature-flags/${flag}`], asAdmin);
      expect(step1).toMatchObject({ status: 200, body: { name: flag, enabled: true, rolloutPercentage: 50 } });
      expect(step1.body.lastUpdated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

      // Step 2: .cacheAge.secondsSinceUpdate and .cacheAge.ttl beside the flags.
      const step2 = await curl(server, ['http://localhost:3000/api/admin/feature-flags?include=cache-info'], asAdmin);
      expect(step2.status).toBe(200);
      expect(step2.body.cacheAge).toEqual({ secondsSinceUpdate: expect.any(Number), ttl: 300 });
      expect(step2.body.cacheAge.secondsSinceUpdate).toBeGreaterThanOrEqual(0);
      expect(step2.body.flags.map((f: { name: string }) => f.name)).toEqual(expect.arrayContaining(GATED));

      // Step 3, options A and B (C is `sleep 300`).
      const invalidate = (body: string) =>
        curl(server, ['-X', 'POST', 'http://localhost:3000/api/admin/cache/invalidate', '-H', 'Content-Type: application/json', '-d', body], asAdmin);
      expect(await invalidate(`{"keys": ["feature_flags:${flag}"]}`)).toMatchObject({ status: 200, body: { invalidated: [`feature_flags:${flag}`] } });
      const all = await invalidate('{"keys": ["feature_flags:*"]}');
      expect(all.status).toBe(200);
      expect(all.body.invalidated).toEqual(expect.arrayContaining(GATED.map((name) => `feature_flags:${name}`)));

      // Step 4: the decision for test-user reflects the new setting.
      const step4 = await curl(server, [`http://localhost:3000/api/admin/feature-flags/${flag}/status?userId=test-user`], asAdmin);
      expect(step4.body).toMatchObject({ name: flag, userId: 'test-user', rolloutPercentage: 50, bucket: expect.any(Number) });
      expect(step4.body.enabled).toBe(step4.body.bucket <= 50);

      // Step 5: restart, health, the flag again.
      await restart();
      expect((await curl(server, ['http://localhost:3000/api/health'])).body.status).toBe('ok');
      expect((await curl(server, [`http://localhost:3000/api/admin/feature-flags/${flag}`], asAdmin)).body).toMatchObject({ rolloutPercentage: 50 });
      expect((await setRollout(flag, 100)).status).toBe(200); // back, for the procedures that follow
    });

    it('Auth latency increases after Priority 1.3 deployment: steps 1 to 6', async () => {
      const flag = 'priority_1_3_constant_time_auth';
      const login = () =>
        curl(server, [
          '-X',
          'POST',
          'http://localhost:3000/auth/login',
          '-H',
          'Content-Type: application/json',
          '-d',
          '{"email": "test@example.com", "password": "test12345"}',
          '-s',
          '-o',
          '/dev/null',
        ]);
      const loginCount = async (constantTime: boolean) => {
        const text = (await curl(server, ['http://localhost:3000/metrics'])).text;
        const match = new RegExp(`^aikb_auth_login_duration_seconds_count\\{outcome="success",constant_time="${constantTime}"\\} (\\d+)$`, 'm').exec(text);
        return Number(match?.[1] ?? 0);
      };

      // Step 1.
      expect(await curl(server, [`http://localhost:3000/api/admin/feature-flags/${flag}`], asAdmin)).toMatchObject({
        status: 200,
        body: { name: flag, enabled: true, rolloutPercentage: 100, description: 'Prevents timing attacks on auth' },
      });

      // Step 2: five logins, each padded (counted under constant_time="true"); their times are not asserted.
      const padded = await loginCount(true);
      for (let i = 1; i <= 5; i++) expect((await login()).status).toBe(200);
      expect(await loginCount(true)).toBe(padded + 5);

      // Step 3: the jitter and floor are in the log.
      const timing = tailGrep(100, /constant|jitter|timing/i);
      expect(timing.length).toBeGreaterThan(0);
      expect(timing.map((line) => JSON.parse(line) as Record<string, unknown>)).toContainEqual(
        expect.objectContaining({ msg: 'constant-time auth enabled: floor 500 ms ± 15 ms', floorMs: 500, jitterMs: 15 }),
      );

      // Step 4: `| grep -A5 "auth"` finds the auth subsystem, constant-time on.
      const step4 = await curl(server, ['http://localhost:3000/api/admin/system/status'], asAdmin);
      expect(step4.text).toContain('"auth"');
      expect(step4.body.subsystems.auth).toMatchObject({ constantTime: { enabled: true, flag }, floorMs: 500, jitterMs: 15 });

      // Step 5: the runbook's server/src/services/auth.service.ts is core's authenticator here.
      expect(grepSource('packages/core/src/auth/constant-time-authenticator.ts', /jitter|constant.time|500.*ms/).length).toBeGreaterThan(0);

      // Step 6: off, a login is not padded; back on.
      const toggle = (enabled: boolean) =>
        curl(
          server,
          ['-X', 'POST', `http://localhost:3000/api/admin/feature-flags/${flag}`, '-H', 'Content-Type: application/json', '-d', `{"enabled": ${enabled}}`],
          asAdmin,
        );
      expect(await toggle(false)).toMatchObject({ status: 200, body: { name: flag, enabled: false } });
      const unpadded = await loginCount(false);
      expect((await login()).status).toBe(200);
      expect(await loginCount(false)).toBe(unpadded + 1);
      expect((await curl(server, ['http://localhost:3000/api/admin/system/status'], asAdmin)).body.subsystems.auth.constantTime.enabled).toBe(false);
      expect(await toggle(true)).toMatchObject({ status: 200, body: { name: flag, enabled: true } });
      expect((await curl(server, ['http://localhost:3000/api/admin/system/status'], asAdmin)).body.subsystems.auth.constantTime.enabled).toBe(true);
    });

    it('Connection pool exhaustion after deployment: steps 1 to 6', async () => {
      const stats = async () => (await curl(server, ['http://localhost:3000/api/health/pool-stats'])).body;

      // Step 1: the five figures.
      const step1 = await stats();
      expect(step1).toMatchObject({ maxConnections: 4, queuedRequests: 0 });
      for (const figure of ['activeConnections', 'availableConnections', 'queuedRequests', 'maxConnections', 'utilizationPercent'])
        expect(typeof step1[figure], figure).toBe('number');
      expect(step1.activeConnections + step1.availableConnections).toBe(4);

      // Step 2: export SUPABASE_POOL_SIZE=15, restart, the new size.
      env.SUPABASE_POOL_SIZE = '15';
      await restart();
      expect(await stats()).toMatchObject({ maxConnections: 15, queuedRequests: 0 });

      // Step 3: the "AIKB Connection Pool" dashboard shows those three figures.
      const dashboard = JSON.parse(readFileSync(path.join(repo, 'examples/reference-server/ops/grafana/aikb-connection-pool.json'), 'utf8')) as {
        title: string;
        panels: Array<{ title: string }>;
      };
      expect(dashboard.title).toBe('AIKB Connection Pool');
      expect(dashboard.panels.map((p) => p.title)).toEqual(expect.arrayContaining(['Active connections', 'Queued requests', 'Pool utilization']));

      // Step 4: an upload uses many connections (its saga writes its log at every step).
      const login = await send(server, 'POST', '/auth/login', { json: TEST_USER });
      expect(login.status).toBe(200);
      userToken = login.body.token as string;
      const file = path.join(path.dirname(logFile), 'plan.md');
      writeFileSync(file, '# Quarterly plan\n\nThe widget team ships the sprocket integration in March.\n');
      const uploaded = await runAikb(['documents', 'upload', file, '--title', 'Quarterly plan', '--json'], {
        AIKB_URL: server.url,
        AIKB_USER_TOKEN: userToken,
      });
      expect(uploaded).toMatchObject({ code: 0, stderr: '' });
      const step4 = await curl(server, ['http://localhost:3000/api/admin/traces?minConnections=5&limit=20', '-H', `Authorization: Bearer ${ADMIN_TOKEN}`]);
      expect(step4.status).toBe(200);
      // jq '.[] | {endpoint: .spanName, connectionsUsed, duration: .durationMs}'
      const rows = (step4.body as Array<Record<string, unknown>>).map((s) => ({
        endpoint: s.spanName,
        connectionsUsed: s.connectionsUsed,
        duration: s.durationMs,
      }));
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.length).toBeLessThanOrEqual(20);
      for (const row of rows) expect(row).toEqual({ endpoint: expect.any(String), connectionsUsed: expect.any(Number), duration: expect.any(Number) });
      expect(rows.every((row) => (row.connectionsUsed as number) >= 5)).toBe(true);
      expect(rows.map((row) => row.endpoint)).toContain('POST /api/documents/upload');

      // Step 5: the runbook's document.controller.ts is the document store here.
      expect(grepSource('examples/reference-server/src/documents/document-store.ts', /pool|connection/).length).toBeGreaterThan(0);

      // Step 6: ten samples of jq '.activeConnections' (without the sleeps): bounded, and back to 0 at rest.
      for (let i = 1; i <= 10; i++) {
        const active = (await stats()).activeConnections as number;
        expect(active).toBeGreaterThanOrEqual(0);
        expect(active).toBeLessThanOrEqual(15);
      }
      await eventually(async () => (await stats()).activeConnections === 0, 10_000, 'no connection held at rest');
    });

    it('Error rate spikes after deployment: steps 1 to 6', async () => {
      // The regression: Drive fails (its folder is a file now), so uploads fail with a 5xx.
      const saved = `${driveDir}.saved`;
      renameSync(driveDir, saved);
      writeFileSync(driveDir, 'not a folder');
      try {
        const file = path.join(path.dirname(logFile), 'plan.md');
        const failed = await runAikb(['documents', 'upload', file, '--title', 'Failing plan'], { AIKB_URL: server.url, AIKB_USER_TOKEN: userToken });
        expect(failed.code).toBe(1);
        expect(failed.stderr).toMatch(/^aikb: 50\d /);
      } finally {
        rmSync(driveDir);
        renameSync(saved, driveDir);
      }

      // Step 1: errors by endpoint.
      const step1 = await curl(server, ['http://localhost:3000/api/admin/metrics/errors?window=1h', '-H', `Authorization: Bearer ${ADMIN_TOKEN}`]);
      expect(step1.status).toBe(200);
      const upload = (step1.body.errors as Array<Record<string, any>>).find((e) => e.endpoint === '/api/documents/upload');
      expect(upload).toMatchObject({
        errorCount: 1,
        errorRate: expect.any(Number),
        topErrors: [{ type: expect.any(String), count: 1, message: expect.any(String) }],
      });
      expect(upload!.errorRate).toBeGreaterThan(0);

      // Step 2: the three flags the runbook names.
      const step2 = await curl(server, ['http://localhost:3000/api/admin/feature-flags'], asAdmin);
      expect(step2.body.flags.map((f: { name: string }) => f.name)).toEqual(
        expect.arrayContaining(['priority_2_1_saga_pattern', 'priority_1_1_vector_validation', 'priority_2_2_rbac_api_filtering']),
      );

      // Step 3: the saga pattern off, then the 5-minute window (as written, without the token: 401).
      const off = await setRollout('priority_2_1_saga_pattern', 0);
      expect(off).toMatchObject({ status: 200, body: { name: 'priority_2_1_saga_pattern', rolloutPercentage: 0 } });
      expect((await curl(server, ['http://localhost:3000/api/admin/metrics/errors?window=5m'])).status).toBe(401);
      expect((await curl(server, ['http://localhost:3000/api/admin/metrics/errors?window=5m'], asAdmin)).body).toMatchObject({
        window: '5m',
        errors: expect.any(Array),
      });

      // Step 4: back on.
      expect(await setRollout('priority_2_1_saga_pattern', 100)).toMatchObject({ status: 200, body: { rolloutPercentage: 100 } });

      // Step 5: `grep ERROR` finds the failed upload, with its request id and endpoint (JSON lines here).
      await eventually(async () => tailGrep(500, /ERROR/).length > 0, 5000, 'an ERROR line in LOG_FILE');
      const errors = tailGrep(500, /ERROR/)
        .slice(0, 20)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(errors).toContainEqual(
        expect.objectContaining({
          severity: 'ERROR',
          requestId: expect.stringMatching(/^req-/),
          endpoint: '/api/documents/upload',
          traceId: expect.any(String),
        }),
      );

      // Step 6: (git revert HEAD), npm run build, restart, health; the error rates are back to normal.
      await npmRun('build');
      deployed = checkout;
      await restart();
      expect((await curl(server, ['http://localhost:3000/api/health'])).body.status).toBe('ok');
      const after = await curl(server, ['http://localhost:3000/api/admin/metrics/errors?window=5m'], asAdmin);
      expect((after.body.errors as Array<{ errorCount: number }>).every((e) => e.errorCount === 0)).toBe(true);
    });

    it('Request tracing not working after deployment: steps 1 to 5', async () => {
      // Step 1: jq '.tracing'.
      expect((await curl(server, ['http://localhost:3000/api/health'])).body.tracing).toEqual({
        enabled: true,
        middleware: 'active',
        traceIdGeneration: 'working',
      });

      // Step 2: `curl -i … | grep -i "x-trace-id"`, with the user's token.
      const step2 = await curl(server, ['-i', 'http://localhost:3000/api/documents', '-H', `Authorization: Bearer ${userToken}`]);
      expect(step2.status).toBe(200);
      expect(step2.text).toMatch(TRACE_ID);

      // Step 3: the start-up message among the last 50 lines.
      const step3 = tailGrep(50, /tracing|middleware/i);
      expect(step3.map((line) => (JSON.parse(line) as { msg: string }).msg)).toContain('✓ Request tracing initialized');

      // Step 4: the runbook's server/src/index.ts is the observability subsystem here.
      expect(grepSource('examples/reference-server/src/subsystems/observability.ts', /tracingMiddleware|otel|tracing/).length).toBeGreaterThan(0);

      // Step 5: restart (waiting for it to listen instead of `sleep 5`), then the header again.
      await restart();
      expect((await curl(server, ['-i', 'http://localhost:3000/api/health'])).text).toMatch(TRACE_ID);
    });

    it('Pre-deployment checklist: what the running service shows of each item', async () => {
      const health = (await curl(server, ['http://localhost:3000/api/health'])).body;
      const status = (await curl(server, ['http://localhost:3000/api/admin/system/status'], asAdmin)).body;
      // Flags defined, enabled at 100 %.
      const flags = (await curl(server, ['http://localhost:3000/api/admin/feature-flags'], asAdmin)).body.flags as Array<Record<string, unknown>>;
      for (const name of GATED) expect(flags).toContainEqual(expect.objectContaining({ name, enabled: true, rolloutPercentage: 100 }));
      // Pool size; error handling (problem+json naming the field); cache invalidation and rate
      // limits over Redis; tracing; metrics; migrations run (the database is up); Redis tested.
      expect((await curl(server, ['http://localhost:3000/api/health/pool-stats'])).body.maxConnections).toBe(15);
      expect(await setRollout('priority_2_1_saga_pattern', 150)).toMatchObject({ status: 400, body: { field: 'rolloutPercentage' } });
      expect(status.subsystems.flags.propagation).toMatchObject({ bus: 'redis', status: 'ok' });
      expect(status.subsystems.auth.rateLimits).toBe('redis');
      expect(health.tracing.enabled).toBe(true);
      expect((await curl(server, ['http://localhost:3000/metrics'])).text).toContain('http_server_request_duration_seconds_bucket');
      expect(health.components).toMatchObject({ database: { status: 'ok' }, redis: { status: 'ok' } });
    });

    it('Standard deployment: build, migrate, restart, watch health, roll a flag out 10 → 50 → 100, watch the errors', async () => {
      // 1. Build the new version.
      const before = statSync(path.join(checkout, 'examples/reference-server/dist/cli.js')).mtimeMs;
      await npmRun('build');
      expect(statSync(path.join(checkout, 'examples/reference-server/dist/cli.js')).mtimeMs).toBeGreaterThan(before);

      // 2. Migrations, on the same database: all applied already.
      const migrated = (await npmRun('migrate')).split('\n').filter((line) => line.startsWith('{'));
      const messages = migrated.map((line) => (JSON.parse(line) as { msg: string }).msg);
      expect(messages).toContainEqual(expect.stringMatching(/^migrations: 0 applied, [1-9]\d* already up to date$/));
      expect(messages).toContainEqual(expect.stringMatching(/^search tables: 0 applied/));

      // 3. Restart with a health check; 4. `watch … | jq .status`: a few samples.
      await restart();
      for (let i = 0; i < 5; i++) expect((await curl(server, ['http://localhost:3000/api/health'])).body.status).toBe('ok');

      // 5. The gradual rollout, as written: curl -d sends its JSON labelled application/x-www-form-urlencoded.
      const rollout = (flag: string, percent: number) =>
        curl(server, ['-X', 'POST', `http://localhost:3000/api/admin/feature-flags/${flag}`, '-d', `{"rolloutPercentage": ${percent}}`], asAdmin);
      expect(await rollout('priority_X_Y', 10)).toMatchObject({ status: 400, body: { field: 'name' } }); // the placeholder, as written
      const flag = 'priority_1_1_vector_validation';
      expect(await rollout(flag, 0)).toMatchObject({ status: 200, body: { rolloutPercentage: 0 } }); // a new flag starts dark
      expect(await rollout(flag, 10)).toMatchObject({ status: 200, body: { name: flag, rolloutPercentage: 10 } });

      // 6. `watch -n 5 'curl -s …/metrics/errors | jq'`: as written, 401; with the token, no server error.
      expect((await curl(server, ['-s', 'http://localhost:3000/api/admin/metrics/errors'])).status).toBe(401);
      const errors = await curl(server, ['-s', 'http://localhost:3000/api/admin/metrics/errors'], asAdmin);
      expect(errors.body).toMatchObject({ window: '1h', errors: expect.any(Array) });
      expect((errors.body.errors as Array<{ errorCount: number }>).every((e) => e.errorCount === 0)).toBe(true);

      // 7. 10 % → 50 % → 100 %.
      for (const percent of [50, 100]) expect(await rollout(flag, percent)).toMatchObject({ status: 200, body: { rolloutPercentage: percent } });
      const status = await curl(server, [`http://localhost:3000/api/admin/feature-flags/${flag}/status?userId=test-user`], asAdmin);
      expect(status.body).toMatchObject({ enabled: true, rolloutPercentage: 100 });
    });

    it('Emergency rollback: the loop over short names (404s naming the flags), `aikb rollback`, rebuild, restart, health; `aikb rollback --undo`', async () => {
      const before = await flagRollouts();

      // 1. The runbook's loop, as written (plus the token): no such flags; nothing changes.
      const similar: Record<string, string[]> = {
        priority_1_3: ['priority_1_3_constant_time_auth'],
        priority_2_1: ['priority_2_1_saga_pattern'],
        priority_2_2: ['priority_2_2_rbac_api_filtering'],
        priority_2_3: [],
        priority_2_4: [],
      };
      for (const flag of ['priority_1_3', 'priority_2_1', 'priority_2_2', 'priority_2_3', 'priority_2_4']) {
        const res = await curl(server, ['-X', 'POST', `http://localhost:3000/api/admin/feature-flags/${flag}`, '-d', '{"rolloutPercentage": 0}'], asAdmin);
        expect({ flag, status: res.status, similar: res.body.similar }).toEqual({ flag, status: 404, similar: similar[flag] });
        for (const name of similar[flag]!) expect(res.body.detail).toContain(name);
      }
      expect(await flagRollouts()).toEqual(before);

      // What does it: every gated flag to rollout 0 in one call, each printed with its previous rollout.
      const rollback = await runAikb(['rollback'], { AIKB_URL: server.url, ADMIN_TOKEN });
      expect(rollback).toMatchObject({ code: 0, stderr: '' });
      for (const name of GATED) expect(rollback.stdout).toMatch(new RegExp(`│ ${name}\\s+│ ${before[name]}\\s+│ 0\\s+│`));
      expect(await flagRollouts()).toEqual(Object.fromEntries(Object.keys(before).map((name) => [name, name.startsWith('priority_') ? 0 : before[name]])));

      // 2. (git revert HEAD) 3. Rebuild and restart: the rollback is in the database, it stays.
      await npmRun('build');
      await restart();
      expect(Object.values(await flagRollouts()).every((percent) => percent === 0)).toBe(true);
      // 4. Health.
      const health = await curl(server, ['http://localhost:3000/api/health']);
      expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });

      // Once fixed: the rollback undone, every flag back where it was.
      const undo = await runAikb(['rollback', '--undo'], { AIKB_URL: server.url, ADMIN_TOKEN });
      expect(undo).toMatchObject({ code: 0, stderr: '' });
      expect(await flagRollouts()).toEqual(before);
    });

    it('LOG_FILE holds every line the server wrote on stdout, under NODE_ENV=production', () => {
      const lines = readFileSync(logFile, 'utf8').split('\n').slice(0, -1);
      const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
      // The restarts are all there: one start-up message per start, one "shutting down" per restart.
      expect(messages.filter((msg) => msg.startsWith('aikb-server listening on')).length).toBe(messages.filter((msg) => msg === 'shutting down').length + 1);
      expect(server.logs.length).toBeGreaterThan(0);
      for (const line of server.logs) expect(messages).toContain(line.msg);
    });
  },
);
