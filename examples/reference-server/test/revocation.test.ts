import { describe, expect, it } from 'vitest';
import { createTemporaryDatabase, testDatabaseUrl, testRedisUrl } from '@aikb/test-support';
import { eventually, send, startServerProcess, tempDataDir, useServerProcesses, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-revocation-admin-token-0123456789';
const JWT_SECRET = 'e2e-revocation-jwt-secret-0123456789abcdef';
const PASSWORD = 'correct horse battery';

const { running, cleanups } = useServerProcesses();

const api = (server: ServerProcess, method: string, path: string, token: string, body?: unknown) => send(server, method, path, { token, json: body });

async function login(server: ServerProcess, email: string, password = PASSWORD): Promise<{ status: number; token?: string }> {
  const { status, body } = await send(server, 'POST', '/auth/login', { json: { email, password } });
  return { status, token: (body as { token?: string } | undefined)?.token };
}

/** The four changes that must end a user's sessions, made by `operator` (a user token) through `server`. */
const CHANGES = {
  delete: (server: ServerProcess, operator: string, id: string) => api(server, 'DELETE', `/api/admin/users/${id}`, operator),
  disable: (server: ServerProcess, operator: string, id: string) => api(server, 'PATCH', `/api/admin/users/${id}`, operator, { disabled: true }),
  demote: (server: ServerProcess, operator: string, id: string) => api(server, 'PATCH', `/api/admin/users/${id}`, operator, { roles: ['user'] }),
  password: (server: ServerProcess, operator: string, id: string) =>
    api(server, 'PATCH', `/api/admin/users/${id}`, operator, { password: 'a brand new password' }),
} as const;
type Change = keyof typeof CHANGES;

interface Victim {
  readonly change: Change;
  readonly id: string;
  readonly email: string;
  readonly token: string;
}

/** Creates an operator and one admin per change through `server`, and logs each in. */
async function setUp(server: ServerProcess, tag: string): Promise<{ operator: { id: string; token: string }; victims: Victim[] }> {
  const create = async (name: string) => {
    const email = `${name}-${tag}@example.com`;
    const created = await api(server, 'POST', '/api/admin/users', ADMIN_TOKEN, { email, password: PASSWORD, roles: ['admin', 'user'] });
    expect(created.status).toBe(201);
    const { status, token } = await login(server, email);
    expect(status).toBe(200);
    return { id: created.body.id as string, email, token: token! };
  };
  const [operator, ...victims] = await Promise.all([create('operator'), ...(Object.keys(CHANGES) as Change[]).map((change) => create(change))]);
  return { operator, victims: victims.map((v, i) => ({ ...v, change: (Object.keys(CHANGES) as Change[])[i]! })) };
}

/** The old admin token can neither read nor create users; nothing was created. */
async function expectRevoked(server: ServerProcess, victim: Victim): Promise<void> {
  const read = await api(server, 'GET', '/api/admin/users', victim.token);
  expect(read, `${victim.change}: GET /api/admin/users`).toMatchObject({ status: 401, body: { detail: 'the token has been revoked; log in again' } });
  const email = `minted-by-${victim.change}-${Date.now()}@example.com`;
  const minted = await api(server, 'POST', '/api/admin/users', victim.token, { email, password: PASSWORD, roles: ['admin'] });
  expect(minted.status, `${victim.change}: POST /api/admin/users`).toBe(401);
  const flag = await api(server, 'POST', '/api/admin/feature-flags/priority_2_1_saga_pattern', victim.token, { rolloutPercentage: 0 });
  expect(flag.status, `${victim.change}: PATCH a flag`).toBe(401);
  const users = await api(server, 'GET', '/api/admin/users', ADMIN_TOKEN);
  expect(users.body.users.map((u: { email: string }) => u.email)).not.toContain(email);
}

/** After the change, the user can (or cannot) log in again as the change says. */
async function expectLoginAfter(server: ServerProcess, victim: Victim, operator: string): Promise<void> {
  switch (victim.change) {
    case 'delete':
      expect((await login(server, victim.email)).status).toBe(401);
      break;
    case 'disable': {
      expect((await login(server, victim.email)).status).toBe(401);
      expect((await api(server, 'PATCH', `/api/admin/users/${victim.id}`, operator, { disabled: false })).status).toBe(200);
      const again = await login(server, victim.email);
      expect(again.status).toBe(200);
      expect((await api(server, 'GET', '/api/admin/users', again.token!)).status).toBe(200);
      expect((await api(server, 'GET', '/api/admin/users', victim.token)).status).toBe(401);
      break;
    }
    case 'demote': {
      const again = await login(server, victim.email);
      expect(again.status).toBe(200);
      expect((await api(server, 'GET', '/api/admin/users', again.token!)).status).toBe(403);
      break;
    }
    case 'password': {
      expect((await login(server, victim.email)).status).toBe(401);
      const again = await login(server, victim.email, 'a brand new password');
      expect(again.status).toBe(200);
      expect((await api(server, 'GET', '/api/admin/users', again.token!)).status).toBe(200);
      break;
    }
  }
}

describe('aikb-server revokes user tokens when their user changes', () => {
  it('refuses the old admin token at once after a delete, disable, demotion or password change, and records who did it', async () => {
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const server = await startServerProcess({ AIKB_DATA_DIR: data.dir, ADMIN_TOKEN, AUTH_JWT_SECRET: JWT_SECRET });
    running.push(server);
    const { operator, victims } = await setUp(server, 'embedded');
    for (const victim of victims) expect((await api(server, 'GET', '/api/admin/users', victim.token)).status).toBe(200);

    for (const victim of victims) {
      const changed = await CHANGES[victim.change](server, operator.token, victim.id);
      expect(changed.status, victim.change).toBe(victim.change === 'delete' ? 204 : 200);
      // The very next request: no waiting for a cache to expire.
      await expectRevoked(server, victim);
    }
    for (const victim of victims) await expectLoginAfter(server, victim, operator.token);

    // The audit trail names the operator's user id, not "admin".
    const history = await api(server, 'GET', `/api/admin/users/${victims[0]!.id}/history`, ADMIN_TOKEN);
    expect(history.status).toBe(200);
    expect(history.body.history.map((h: { action: string; actor: string }) => [h.action, h.actor])).toEqual([
      ['delete', operator.id],
      ['create', 'admin-token'],
    ]);
    const flag = await api(server, 'POST', '/api/admin/feature-flags/priority_2_1_saga_pattern', operator.token, { rolloutPercentage: 50 });
    expect(flag.status).toBe(200);
    const flagHistory = await api(server, 'GET', '/api/admin/feature-flags/priority_2_1_saga_pattern/history', ADMIN_TOKEN);
    expect(flagHistory.body.history[0]).toMatchObject({ actor: operator.id, after: { rolloutPercentage: 50 } });
    expect(server.logs.some((l) => l.audit === 'user' && l.actor === operator.id && l.action === 'delete')).toBe(true);
  });

  it('answers an unknown field in PATCH /api/admin/users/:id with 400 naming it, changing nothing', async () => {
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const server = await startServerProcess({ AIKB_DATA_DIR: data.dir, ADMIN_TOKEN, AUTH_JWT_SECRET: JWT_SECRET });
    running.push(server);
    const created = await api(server, 'POST', '/api/admin/users', ADMIN_TOKEN, { email: 'typo@example.com', password: PASSWORD, roles: ['user'] });
    const res = await api(server, 'PATCH', `/api/admin/users/${created.body.id}`, ADMIN_TOKEN, { role: ['admin'] });
    expect(res).toMatchObject({ status: 400, body: { field: 'role' } });
    for (const id of ['%00', 'x%00y', '%ZZ'])
      expect([400, 404], id).toContain((await api(server, 'PATCH', `/api/admin/users/${id}`, ADMIN_TOKEN, { disabled: true })).status);
    const users = await api(server, 'GET', '/api/admin/users', ADMIN_TOKEN);
    expect(users.body.users.find((u: { email: string }) => u.email === 'typo@example.com')).toMatchObject({ roles: ['user'], disabled: false });
  });
});

describe.runIf(testDatabaseUrl)('aikb-server revokes user tokens on every instance', () => {
  it.each([
    ['PostgreSQL + Redis (Redis pub/sub)', true],
    ['PostgreSQL only (LISTEN/NOTIFY)', false],
  ])('%s: refuses the old admin token on the other instance within a second of each change', async (_title, withRedis) => {
    if (withRedis && !testRedisUrl) return;
    const database = await createTemporaryDatabase(testDatabaseUrl!);
    cleanups.push(database.drop);
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const env = {
      DATABASE_URL: database.url,
      ...(withRedis ? { REDIS_URL: testRedisUrl! } : {}),
      ADMIN_TOKEN,
      AUTH_JWT_SECRET: JWT_SECRET,
      AIKB_DATA_DIR: data.dir,
    };
    const a = await startServerProcess(env);
    running.push(a);
    const b = await startServerProcess(env);
    running.push(b);
    const { operator, victims } = await setUp(a, 'cluster');
    // B has the victims' state cached: each token was just accepted there.
    for (const victim of victims) expect((await api(b, 'GET', '/api/admin/users', victim.token)).status).toBe(200);

    for (const victim of victims) {
      await CHANGES[victim.change](a, operator.token, victim.id);
      await expectRevoked(a, victim);
      await eventually(async () => (await api(b, 'GET', '/api/admin/users', victim.token)).status === 401, 1000, `${victim.change} revoked on B`);
      await expectRevoked(b, victim);
    }
    for (const victim of victims) await expectLoginAfter(b, victim, operator.token);
  });
});
