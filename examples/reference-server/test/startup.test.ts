import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import {
  createTemporaryDatabase,
  createThrowawayPostgres,
  createThrowawayRedis,
  hasPostgresBinaries,
  hasRedisServer,
  testDatabaseUrl,
  testRedisUrl,
} from '@aikb/test-support';
import { eventually, runServerCommand, send, startServerProcess, tempDataDir, useServerProcesses, type ServerProcess } from './harness';

const { running, cleanups } = useServerProcesses();

const health = (server: ServerProcess) => send(server, 'GET', '/api/health');

describe('aikb-server start-up', () => {
  // How fast it starts is measured by `npm run bench:startup`, not asserted here.
  it('starts with no configuration on embedded PGlite and serves /api/health', async () => {
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const server = await startServerProcess({ AIKB_DATA_DIR: data.dir });
    running.push(server);
    const { status, body } = await health(server);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: 'ok',
      components: {
        database: { status: 'ok', kind: 'pglite', migrations: 'applied', vector: 'available' },
        redis: { status: 'disabled' },
      },
    });
    expect(body.components.database.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('keeps data in the embedded data dir when killed and started again', async () => {
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const first = await startServerProcess({ AIKB_DATA_DIR: data.dir });
    expect(await first.stop('SIGKILL')).toBe(null);

    // Between runs, write a row straight into the data directory the server uses.
    const direct = await PGlite.create({ dataDir: data.dir });
    await direct.exec("CREATE TABLE e2e_marker (v text); INSERT INTO e2e_marker VALUES ('kept')");
    const applied = await direct.query<{ n: number }>('SELECT count(*)::int AS n FROM aikb_migrations');
    await direct.close();

    const second = await startServerProcess({ AIKB_DATA_DIR: data.dir });
    running.push(second);
    expect((await health(second)).status).toBe(200);
    expect(second.logs.some((l) => /migrations: 0 applied/.test(l.msg))).toBe(true);
    expect(await second.stop('SIGKILL')).toBe(null);

    const reopened = await PGlite.create({ dataDir: data.dir });
    const { rows } = await reopened.query<{ v: string }>('SELECT v FROM e2e_marker');
    const after = await reopened.query<{ n: number }>('SELECT count(*)::int AS n FROM aikb_migrations');
    await reopened.close();
    expect(rows).toEqual([{ v: 'kept' }]);
    expect(after.rows).toEqual(applied.rows);
  });

  it('refuses a second server on the same data dir with one clear line', async () => {
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const server = await startServerProcess({ AIKB_DATA_DIR: data.dir });
    running.push(server);
    const second = await runServerCommand(['serve'], { AIKB_DATA_DIR: data.dir });
    expect(second.code).toBe(1);
    expect(second.stderr.trim()).toMatch(/^aikb-server: data directory .* is in use by process \d+/);
  });
});

describe('aikb-server bad configuration', () => {
  it.each([
    [{ PORT: 'abc' }, /^aikb-server: invalid configuration: PORT must be a whole number/],
    [{ DATABASE_URL: 'nonsense' }, /^aikb-server: invalid configuration: DATABASE_URL is not a valid URL/],
    [{ REDIS_URL: 'nonsense' }, /^aikb-server: invalid configuration: REDIS_URL is not a valid URL/],
  ])('%j → one clear line and exit code 1', async (env, message) => {
    const result = await runServerCommand(['serve'], env);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('a port already in use → one clear line and exit code 1', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const data = tempDataDir();
    try {
      const result = await runServerCommand(['serve'], { PORT: String(port), AIKB_DATA_DIR: data.dir });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(`aikb-server: port ${port} on 127.0.0.1 is already in use (set PORT to a free port)`);
    } finally {
      blocker.close();
      data.cleanup();
    }
  });

  it('aikb migrate creates the search tables (D = the server dimension) and says so; again, it applies nothing', async () => {
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const first = await runServerCommand(['migrate'], { AIKB_DATA_DIR: data.dir });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/search tables: 3 applied, 0 already up to date \(pgvector [\d.]+, 256 dimensions\)/);
    const again = await runServerCommand(['migrate'], { AIKB_DATA_DIR: data.dir });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/search tables: 0 applied, 3 already up to date/);
    const direct = await PGlite.create({ dataDir: data.dir });
    try {
      const { rows } = await direct.query<{ dimensions: number }>('SELECT dimensions FROM aikb_search_config');
      expect(rows).toEqual([{ dimensions: 256 }]);
    } finally {
      await direct.close();
    }
  });

  it('an unknown command → usage and exit code 1', async () => {
    const result = await runServerCommand(['frobnicate']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/unknown command "frobnicate"/);
  });
});

describe.runIf(testDatabaseUrl)('aikb-server on PostgreSQL', () => {
  it('uses DATABASE_URL and reports the server database healthy; npm run migrate is idempotent', async () => {
    const database = await createTemporaryDatabase(testDatabaseUrl!);
    cleanups.push(database.drop);
    const migrateOnce = await runServerCommand(['migrate'], { DATABASE_URL: database.url });
    expect(migrateOnce.code).toBe(0);
    expect(migrateOnce.stdout).toMatch(/search tables: 3 applied|search tables skipped: /);
    const server = await startServerProcess({ DATABASE_URL: database.url, ...(testRedisUrl ? { REDIS_URL: testRedisUrl } : {}) });
    running.push(server);
    const { status, body } = await health(server);
    expect(status).toBe(200);
    expect(body.components.database).toMatchObject({ status: 'ok', kind: 'postgres', migrations: 'applied' });
    if (testRedisUrl) expect(body.components.redis).toMatchObject({ status: 'ok' });
  });
});

describe.runIf(hasPostgresBinaries() && hasRedisServer())('aikb-server with services down at start', () => {
  it('starts degraded naming the components, and recovers by itself when they come back', async () => {
    const postgres = await createThrowawayPostgres();
    cleanups.push(postgres.destroy);
    const redis = await createThrowawayRedis();
    cleanups.push(redis.kill);

    const server = await startServerProcess({ DATABASE_URL: postgres.url, REDIS_URL: redis.url });
    running.push(server);
    const degraded = await health(server);
    expect(degraded.status).toBe(503);
    expect(degraded.body.status).toBe('degraded');
    expect(degraded.body.components.database.status).toBe('down');
    expect(degraded.body.components.redis.status).toBe('down');

    await postgres.start();
    await redis.start();
    await eventually(async () => (await health(server)).status === 200, 20_000, 'health back to 200');
    const recovered = await health(server);
    expect(recovered.body.components).toMatchObject({
      database: { status: 'ok', migrations: 'applied' },
      redis: { status: 'ok' },
    });
    expect(server.child.exitCode).toBe(null);
  });
});
