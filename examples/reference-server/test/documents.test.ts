/**
 * Uploads in the real server process: upload, find with search, delete, `aikb-server drive check`;
 * and a real crash: the server is killed with SIGKILL while an upload's `index` step blocks (a
 * test-only hook), started again, and recovery undoes the upload; and a graceful stop (SIGTERM)
 * with that upload in flight: answered, exit 0, its lease released. On PostgreSQL when
 * `AIKB_TEST_DATABASE_URL` is set, else on embedded PGlite (then `drive check` runs while the
 * server is stopped: an embedded database has one process at a time).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemporaryDatabase, testDatabaseUrl } from '@aikb/test-support';
import { eventually, runServerCommand, send, startServerProcess, tempDataDir, useServerProcesses, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-documents-0123456789';
const PASSWORD = 'documents-e2e-password';
const PLAN = '# Quarterly plan\n\nThe widget team ships the sprocket integration in March.\n';

let data: ReturnType<typeof tempDataDir>;
let database: { url: string; drop(): Promise<void> } | undefined;
let env: Record<string, string>;
const { running } = useServerProcesses();

beforeAll(async () => {
  data = tempDataDir();
  database = testDatabaseUrl ? await createTemporaryDatabase(testDatabaseUrl) : undefined;
  env = { AIKB_DATA_DIR: data.dir, ADMIN_TOKEN, SAGA_LEASE_MS: '2000', ...(database ? { DATABASE_URL: database.url } : {}) };
});
afterAll(async () => {
  await database?.drop();
  data?.cleanup();
});

async function start(extra: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServerProcess({ ...env, ...extra });
  running.push(server);
  return server;
}

/** A new user (through the admin API), logged in. */
async function user(server: ServerProcess, name: string): Promise<{ id: string; token: string }> {
  const email = `${name}-${Date.now()}@example.com`;
  const created = await send(server, 'POST', '/api/admin/users', { token: ADMIN_TOKEN, json: { email, password: PASSWORD, roles: ['user'] } });
  expect(created.status).toBe(201);
  const login = await send(server, 'POST', '/auth/login', { json: { email, password: PASSWORD } });
  expect(login.status).toBe(200);
  return { id: created.body.id as string, token: login.body.token as string };
}

/** `curl -F title=… -F file=@plan.md`, through fetch and FormData (parts in that order). */
async function upload(server: ServerProcess, token: string, { title = 'Quarterly plan', key }: { title?: string; key?: string } = {}) {
  const form = new FormData();
  form.append('title', title);
  form.append('file', new Blob([PLAN], { type: 'text/markdown' }), 'plan.md');
  const res = await fetch(`${server.url}/api/documents/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, ...(key ? { 'idempotency-key': key } : {}) },
    body: form,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> };
}

async function found(server: ServerProcess, token: string, id: string): Promise<boolean> {
  const res = await send(server, 'POST', '/api/search', { token, json: { query: 'sprocket integration' } });
  expect(res.status).toBe(200);
  return (res.body.results as Array<{ documentId: string }>).some((r) => r.documentId === id);
}

/** `aikb-server drive check --json` (the server stopped first on PGlite), expected clean. */
async function expectDriveClean(server: ServerProcess): Promise<void> {
  if (!database) expect(await server.stop('SIGTERM')).toBe(0);
  const check = await runServerCommand(['drive', 'check', '--json'], env);
  expect(check.stderr).toBe('');
  expect(JSON.parse(check.stdout)).toMatchObject({ clean: true, inFlight: [] });
  expect(check.code).toBe(0);
}

/** Waits until the upload saga running on `server` blocks in its index step (AIKB_TEST_BLOCK_UPLOAD_STEP=index); its id. */
async function blockedUpload(server: ServerProcess): Promise<string> {
  let sagaId = '';
  await eventually(
    async () => {
      const list = await send(server, 'GET', '/api/admin/sagas?state=running', { token: ADMIN_TOKEN });
      const saga = (list.body.sagas as Array<{ id: string; name: string }>).find((s) => s.name === 'document_upload');
      if (!saga) return false;
      const one = await send(server, 'GET', `/api/admin/sagas/${saga.id}`, { token: ADMIN_TOKEN });
      sagaId = saga.id;
      return (one.body.steps as Array<{ name: string; phase: string; status: string }>).some((s) => s.name === 'index' && s.status === 'running');
    },
    15_000,
    'the upload blocked in its index step',
  );
  return sagaId;
}

describe('aikb-server: documents', () => {
  it('uploads a Markdown file that search then finds, deletes it so search does not, and drive check is clean', async () => {
    const server = await start();
    const alice = await user(server, 'alice');
    const res = await upload(server, alice.token);
    expect(res).toMatchObject({ status: 201, body: { title: 'Quarterly plan', chunks: 1, contentType: 'text/markdown', sagaId: expect.any(String) } });
    const id = res.body.id as string;
    expect(await found(server, alice.token, id)).toBe(true);
    const kept = await upload(server, alice.token, { title: 'Kept' });
    expect(kept.status).toBe(201);
    expect((await send(server, 'DELETE', `/api/documents/${id}`, { token: alice.token })).status).toBe(204);
    expect(await found(server, alice.token, id)).toBe(false);
    const status = await send(server, 'GET', '/api/admin/system/status', { token: ADMIN_TOKEN });
    expect(status.body.subsystems.documents).toMatchObject({
      uploads: { saga: { created: 2 } },
      deletes: { deleted: 1 },
      orphans: { drive_file: 0, document_row: 0 },
      compensationRate: 0,
      compensationRateTarget: 0.01,
    });
    const metrics = await send(server, 'GET', '/metrics');
    expect(metrics.text).toMatch(/^aikb_documents_uploads_total\{outcome="created",path="saga"\} 2$/m);
    await expectDriveClean(server);
    // The text form, for an operator.
    const text = await runServerCommand(['drive', 'check'], env);
    expect(text.stdout).toMatch(/1 file\(s\) in Drive, 1 document row\(s\), 1 indexed upload\(s\)\nclean/);
  });

  it('undoes an upload whose rows step fails (AIKB_TEST_FAIL_UPLOAD_STEP=rows) and counts it in the compensation rate', async () => {
    const server = await start({ AIKB_TEST_HOOKS: '1', AIKB_TEST_FAIL_UPLOAD_STEP: 'rows' });
    const carol = await user(server, 'carol');
    const res = await upload(server, carol.token);
    expect(res).toMatchObject({ status: 503, body: { undone: true, step: 'rows', detail: expect.stringMatching(/undone; nothing was stored/) } });
    const status = await send(server, 'GET', '/api/admin/system/status', { token: ADMIN_TOKEN });
    expect(status.body.subsystems.documents).toMatchObject({ uploads: { saga: { undone: 1 } }, compensationRate: expect.any(Number) });
    expect(status.body.subsystems.documents.compensationRate).toBeGreaterThan(0);
    expect((await send(server, 'GET', `/api/admin/sagas/${res.body.sagaId as string}`, { token: ADMIN_TOKEN })).body.state).toBe('compensated');
    await expectDriveClean(server);
  });

  it('undoes an upload whose server was killed mid-saga once it is started again, and answers the retry clearly', async () => {
    const blocked = await start({ AIKB_TEST_HOOKS: '1', AIKB_TEST_BLOCK_UPLOAD_STEP: 'index' });
    const bob = await user(blocked, 'bob');
    const pending = upload(blocked, bob.token, { key: 'crash-1' }).catch((error: unknown) => error);
    const sagaId = await blockedUpload(blocked);
    // The file and the row are written; the index step hangs.
    expect(await blocked.stop('SIGKILL')).toBeNull();
    expect(await pending).toBeInstanceOf(Error);

    const restarted = await start();
    await eventually(
      async () => (await send(restarted, 'GET', `/api/admin/sagas/${sagaId}`, { token: ADMIN_TOKEN })).body.state === 'compensated',
      20_000,
      'recovery compensated the interrupted upload',
    );
    const saga = await send(restarted, 'GET', `/api/admin/sagas/${sagaId}`, { token: ADMIN_TOKEN });
    expect(saga.body).toMatchObject({ recoveries: 1, state: 'compensated' });
    const compensations = (saga.body.steps as Array<{ name: string; phase: string; status: string }>).filter((s) => s.phase === 'compensation');
    expect(compensations.map((s) => `${s.name} ${s.status}`).sort()).toEqual(['drive succeeded', 'index succeeded', 'rows succeeded']);

    const retry = await upload(restarted, bob.token, { key: 'crash-1' });
    expect(retry.status).toBe(409);
    expect(retry.body).toMatchObject({ sagaId, undone: true, detail: expect.stringMatching(/undone.*nothing was stored.*new Idempotency-Key/) });
    const fresh = await upload(restarted, bob.token, { key: 'crash-2' });
    expect(fresh.status).toBe(201);
    expect(await found(restarted, bob.token, fresh.body.id as string)).toBe(true);
    await expectDriveClean(restarted);
  });

  it('on SIGTERM with an upload in flight: answers it 503 (interrupted), exits 0, and releases the lease so a restart undoes it at once', async () => {
    // A 10-minute lease: the restarted server can take the saga over only if the stopping one released it.
    const lease = { SAGA_LEASE_MS: '600000' };
    const blocked = await start({ ...lease, AIKB_TEST_HOOKS: '1', AIKB_TEST_BLOCK_UPLOAD_STEP: 'index' });
    const dave = await user(blocked, 'dave');
    const pending = upload(blocked, dave.token, { key: 'shutdown-1' });
    const sagaId = await blockedUpload(blocked);
    const exited = blocked.stop('SIGTERM');

    // The client gets an answer, not a reset connection: the saga got its drain time, was
    // interrupted, and the server says what becomes of the upload.
    const answer = await pending;
    expect(answer).toMatchObject({
      status: 503,
      body: { sagaId, interrupted: true, detail: expect.stringMatching(/shut down during this upload: it will be undone/) },
    });
    expect(answer.headers.get('retry-after')).toBe('5');
    const bound = new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 15_000).unref());
    expect(await Promise.race([exited, bound])).toBe(0);
    const shutdown = blocked.logs.findIndex((line) => line.msg === 'shutting down');
    expect(shutdown).toBeGreaterThan(-1);
    expect(blocked.logs.findIndex((line) => line.endpoint === '/api/documents/upload' && line.status === 503)).toBeGreaterThan(shutdown);
    expect(blocked.logs.some((line) => line.msg === 'shutdown failed' || /close failed/.test(line.msg))).toBe(false);

    const restarted = await start(lease);
    await eventually(
      async () => (await send(restarted, 'GET', `/api/admin/sagas/${sagaId}`, { token: ADMIN_TOKEN })).body.state === 'compensated',
      20_000,
      'the restarted server undid the interrupted upload',
    );
    const saga = await send(restarted, 'GET', `/api/admin/sagas/${sagaId}`, { token: ADMIN_TOKEN });
    expect(saga.body).toMatchObject({ state: 'compensated', recoveries: 1, leaseOwner: null });
    const retry = await upload(restarted, dave.token, { key: 'shutdown-1' });
    expect(retry).toMatchObject({ status: 409, body: { sagaId, undone: true } });
    await expectDriveClean(restarted);
  });
});
