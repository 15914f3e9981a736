/**
 * Three instances of the built server on one PostgreSQL database and one Redis behave as one
 * system: a flag change, a cache invalidation, a login block and a user's deletion made through A
 * hold on B and C, and an interrupted saga is finished by exactly one of them.
 *
 * A change travels with the bus message A publishes before it answers (a flag write, a
 * revocation), or lives in the shared store itself (a login block, in Redis), or makes every
 * instance reload from PostgreSQL (a cache invalidation). Only the login block is certain to be
 * visible on the very first request to B after A's answer: a bus message reaches B's socket before
 * that request does, but B may still read the request first, so the others are awaited within
 * {@link SETTLE_MS}. How long propagation takes, and how often the first read already shows it,
 * is measured by `npm run bench:http`, not asserted here.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSagaLog } from '@aikb/core/saga';
import { createTemporaryDatabase, createThrowawayRedis, hasRedisServer, testDatabaseUrl, type ThrowawayRedis } from '@aikb/test-support';
import { eventually, send, startServerProcess, tempDataDir, type Answer, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-cluster-admin-token-0123456789';
const JWT_SECRET = 'e2e-cluster-jwt-secret-0123456789abcdef';
const FLAG = 'priority_2_2_rbac_api_filtering';
/** How long a change made through one instance may take to be served by the others (measured: a few ms). */
const SETTLE_MS = 1000;

const admin = (server: ServerProcess, method: string, path: string, json?: unknown): Promise<Answer> =>
  send(server, method, path, { token: ADMIN_TOKEN, json });
const login = (server: ServerProcess, email: string, password: string): Promise<Answer> => send(server, 'POST', '/auth/login', { json: { email, password } });
const flagStatus = async (server: ServerProcess, name = FLAG) => (await admin(server, 'GET', `/api/admin/feature-flags/${name}/status?userId=test-user`)).body;

describe.runIf(testDatabaseUrl && hasRedisServer())('aikb-server: three instances on one PostgreSQL and one Redis', () => {
  let database: { url: string; drop(): Promise<void> };
  let redis: ThrowawayRedis;
  let data: ReturnType<typeof tempDataDir>;
  const servers: ServerProcess[] = [];
  let a: ServerProcess;
  let b: ServerProcess;
  let c: ServerProcess;
  let others: ServerProcess[];

  beforeAll(async () => {
    database = await createTemporaryDatabase(testDatabaseUrl!);
    redis = await createThrowawayRedis();
    await redis.start();
    data = tempDataDir();
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      ADMIN_TOKEN,
      AUTH_JWT_SECRET: JWT_SECRET,
      AIKB_DATA_DIR: data.dir,
      // Three pools on one shared PostgreSQL: small ones.
      DATABASE_POOL_SIZE: '4',
    };
    // One after the other: the first applies the migrations, the others find them applied.
    for (let i = 0; i < 3; i++) servers.push(await startServerProcess(env));
    [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    others = [b, c];
    for (const server of servers) {
      await eventually(async () => (await send(server, 'GET', '/api/health')).status === 200, 15_000, `${server.url} healthy`);
      await eventually(
        async () => (await admin(server, 'GET', '/api/admin/system/status')).body.subsystems.flags.propagation.status === 'ok',
        15_000,
        `${server.url} subscribed to Redis`,
      );
    }
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop('SIGKILL')));
    await redis?.kill();
    await database?.drop();
    data?.cleanup();
  });

  it('shows a flag change made through A on B and C, and one made through C on A and B', async () => {
    for (const server of servers) expect(await flagStatus(server)).toMatchObject({ enabled: true, rolloutPercentage: 100 });
    for (const rollout of [0, 37, 100]) {
      const written = await admin(a, 'POST', `/api/admin/feature-flags/${FLAG}`, { rolloutPercentage: rollout });
      expect(written.status).toBe(200);
      expect(written.body.propagation).toEqual({ bus: 'redis', status: 'ok', convergesWithinSeconds: 0 });
      for (const server of others) {
        await eventually(async () => (await flagStatus(server)).version === written.body.version, SETTLE_MS, `${server.url} serving rollout ${rollout}`);
        expect(await flagStatus(server)).toMatchObject({ rolloutPercentage: rollout, version: written.body.version });
      }
    }
    // And the other way round: a change through C reaches A and B.
    const back = await admin(c, 'POST', `/api/admin/feature-flags/${FLAG}`, { enabled: false });
    expect(back.status).toBe(200);
    for (const server of [a, b]) {
      await eventually(async () => (await flagStatus(server)).version === back.body.version, SETTLE_MS, `${server.url} serving the change made through C`);
      expect(await flagStatus(server)).toMatchObject({ enabled: false, reason: 'DISABLED' });
    }
    expect((await admin(a, 'POST', `/api/admin/feature-flags/${FLAG}`, { enabled: true })).status).toBe(200);
  });

  it("reloads a flag edited behind the servers' backs on every instance after one cache invalidation through A", async () => {
    const name = 'priority_1_1_vector_validation';
    for (const server of servers) expect(await flagStatus(server, name)).toMatchObject({ enabled: true, rolloutPercentage: 100 });
    // An operator edits the row by hand: no instance hears of it, each keeps serving its cached copy.
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    try {
      await pool.query(
        `UPDATE aikb_feature_flags SET rollout_percentage = 25, version = nextval('aikb_feature_flag_version'), last_updated = now() WHERE name = $1`,
        [name],
      );
    } finally {
      await pool.end();
    }
    for (const server of servers) expect(await flagStatus(server, name), `${server.url} before the invalidation`).toMatchObject({ rolloutPercentage: 100 });

    const invalidated = await admin(a, 'POST', '/api/admin/cache/invalidate', { keys: [`feature_flags:${name}`] });
    expect(invalidated.status).toBe(200);
    expect(invalidated.body).toMatchObject({ propagation: { status: 'ok' } });
    expect(await flagStatus(a, name)).toMatchObject({ rolloutPercentage: 25 });
    for (const server of others) {
      await eventually(async () => (await flagStatus(server, name)).rolloutPercentage === 25, SETTLE_MS, `${server.url} reloaded ${name}`);
    }
    // A glob reaches them too: put the row back by hand, invalidate feature_flags:*.
    const restore = new pg.Pool({ connectionString: database.url, max: 1 });
    try {
      await restore.query(`UPDATE aikb_feature_flags SET rollout_percentage = 100, version = nextval('aikb_feature_flag_version') WHERE name = $1`, [name]);
    } finally {
      await restore.end();
    }
    expect((await admin(b, 'POST', '/api/admin/cache/invalidate', { keys: ['feature_flags:*'] })).status).toBe(200);
    for (const server of [a, c]) {
      await eventually(async () => (await flagStatus(server, name)).rolloutPercentage === 100, SETTLE_MS, `${server.url} reloaded every flag`);
    }
  });

  it('enforces a login block earned on A on B and C at once, for the right password too', async () => {
    const email = `cluster-${randomBytes(6).toString('hex')}@example.com`;
    const password = 'cluster password 1';
    expect((await admin(a, 'POST', '/api/admin/users', { email, password, roles: ['user'] })).status).toBe(201);
    // Ten failures, one at a time (each is answered at the constant-time deadline, ≈ 0.5 s).
    for (let i = 0; i < 10; i++) expect((await login(a, email, 'wrong password')).status).toBe(401);
    expect((await login(a, email, 'wrong password')).status).toBe(429);
    for (const server of others) {
      const blocked = await login(server, email, password);
      expect(blocked.status, server.url).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(blocked.headers.get('content-type')).toMatch(/problem\+json/);
    }
  });

  it("refuses a deleted user's token on B and C once A has answered the deletion", async () => {
    const email = `cluster-admin-${randomBytes(6).toString('hex')}@example.com`;
    const password = 'cluster password 2';
    const created = await admin(a, 'POST', '/api/admin/users', { email, password, roles: ['admin', 'user'] });
    expect(created.status).toBe(201);
    const { body } = await login(b, email, password);
    const token = body.token as string;
    // Each instance has checked the token, so each holds the user's state in its session cache.
    for (const server of servers) expect((await send(server, 'GET', '/api/admin/users', { token })).status, server.url).toBe(200);

    expect((await admin(a, 'DELETE', `/api/admin/users/${created.body.id}`)).status).toBe(204);
    for (const server of others) {
      await eventually(async () => (await send(server, 'GET', '/api/admin/users', { token })).status === 401, SETTLE_MS, `${server.url} refusing the token`);
      expect(await send(server, 'GET', '/api/admin/users', { token }), server.url).toMatchObject({
        status: 401,
        body: { detail: 'the token has been revoked; log in again' },
      });
    }
    expect((await login(c, email, password)).status).toBe(401);
  });

  // A saga definition the server registers itself (document_delete): every instance can recover it.
  it('finishes a saga a crashed instance left running on exactly one of the three', async () => {
    const DEFINITION = 'document_delete@1';
    const definitions = await Promise.all(
      servers.map(async (server) => (await admin(server, 'GET', '/api/admin/system/status')).body.subsystems.sagas.definitions as string[]),
    );
    for (const list of definitions) expect(list).toContain(DEFINITION);

    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    const id = randomUUID();
    try {
      const log = createPostgresSagaLog({ pool });
      // As a crashed instance leaves it: running, its first step started, its lease long expired.
      const nowMs = Date.now() - 120_000;
      const lease = { owner: 'crashed-instance', nowMs, leaseExpiresAtMs: nowMs + 30_000 };
      await log.create({
        id,
        name: 'document_delete',
        version: 1,
        idempotencyKey: `cluster-${id}`,
        policy: 'resume',
        input: { documentId: randomUUID() },
        ...lease,
        firstStep: 'index',
      });
      const recovered = async () => ((await log.get(id))?.state ?? 'missing') === 'completed';
      // Recovery runs at start-up and every 10 s on each instance.
      await eventually(recovered, 25_000, 'the interrupted saga completed');
      const record = await log.get(id);
      expect(record).toMatchObject({ state: 'completed' });
    } finally {
      await pool.end();
    }
    const takers = servers.filter((server) => server.logs.some((line) => line.msg === 'recovering an interrupted saga' && line.sagaId === id));
    expect(takers).toHaveLength(1);
    const steps = (await admin(a, 'GET', `/api/admin/sagas/${id}`)).body.steps as Array<{ phase: string; name: string; status: string }>;
    // Every action ran once: no instance ran a step another had run.
    expect(steps.filter((s) => s.phase === 'action' && s.status === 'succeeded').map((s) => s.name)).toEqual(['index', 'rows', 'drive']);
  });

  it('keeps all three processes running throughout', () => {
    for (const server of servers) expect(server.child.exitCode, server.url).toBeNull();
  });
});
