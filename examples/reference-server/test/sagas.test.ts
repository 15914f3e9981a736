/**
 * Sagas in the real server process: the runner's status in the system status, and the admin API
 * over a saga an operator must look at (written to the server's database as a crashed instance
 * would have left it). The database part needs `AIKB_TEST_DATABASE_URL` (the server and the test
 * share the database); the rest runs on embedded PGlite.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemporaryDatabase, testDatabaseUrl } from '@aikb/test-support';
import { createPostgresSagaLog } from '@aikb/core/saga';
import { startServerProcess, tempDataDir, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-sagas-0123456789ab';
const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };

let server: ServerProcess;
let data: ReturnType<typeof tempDataDir>;
let database: { url: string; drop(): Promise<void> } | undefined;

beforeAll(async () => {
  data = tempDataDir();
  database = testDatabaseUrl ? await createTemporaryDatabase(testDatabaseUrl) : undefined;
  server = await startServerProcess({ AIKB_DATA_DIR: data.dir, ADMIN_TOKEN, ...(database ? { DATABASE_URL: database.url } : {}) });
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  await database?.drop();
  data?.cleanup();
});

async function call(method: string, pathname: string, body?: unknown, headers: Record<string, string> = admin) {
  const res = await fetch(`${server.url}${pathname}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: text.startsWith('{') ? JSON.parse(text) : undefined };
}

describe('aikb-server: sagas', () => {
  it('reports the runner in the system status and guards /api/admin/sagas', async () => {
    const { body } = await call('GET', '/api/admin/system/status');
    expect(body.subsystems.sagas).toMatchObject({ inFlight: 0, closed: false, compensationRate: 0, byState: { compensation_failed: 0 } });
    expect((await call('GET', '/api/admin/sagas', undefined, {})).status).toBe(401);
    expect(await call('GET', '/api/admin/sagas')).toMatchObject({ status: 200, body: { sagas: [] } });
    expect(await call('GET', '/api/admin/sagas?state=nope')).toMatchObject({
      status: 400,
      type: expect.stringMatching(/problem\+json/),
      body: { field: 'state' },
    });
  });

  it.skipIf(!testDatabaseUrl)('lists a failed saga, shows its steps, refuses to retry it without its definition, and resolves it', async () => {
    const pool = new pg.Pool({ connectionString: database!.url, max: 1 });
    try {
      const log = createPostgresSagaLog({ pool });
      const id = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
      const lease = { owner: 'crashed', nowMs: Date.now(), leaseExpiresAtMs: Date.now() + 60_000 };
      await log.create({
        id,
        // A definition this server does not have (document_upload v1 it has: its retry would run).
        name: 'document_upload',
        version: 99,
        idempotencyKey: 'upload-e2e',
        policy: 'compensate',
        input: { path: 'q3.pdf' },
        ...lease,
        firstStep: 'drive',
      });
      await log.finishStep(id, { ...lease, index: 0, phase: 'action', status: 'succeeded', output: { fileId: 'f1' } });
      await log.startStep(id, { ...lease, index: 1, name: 'rows', phase: 'action' });
      const error = { type: 'Error', message: 'rows failed', step: 'rows' };
      await log.finishStep(id, { ...lease, index: 1, phase: 'action', status: 'failed', error, transition: { from: 'running', to: 'compensating', error } });
      await log.startStep(id, { ...lease, index: 0, name: 'drive', phase: 'compensation' });
      await log.finishStep(id, {
        ...lease,
        index: 0,
        phase: 'compensation',
        status: 'failed',
        error: { type: 'Error', message: 'Failed to delete from Drive', step: 'drive' },
        transition: {
          from: 'compensating',
          to: 'compensation_failed',
          error: { type: 'SagaCompensationError', message: 'Failed to delete from Drive', step: 'drive' },
        },
      });

      const listed = await call('GET', '/api/admin/sagas?state=compensation_failed&resolved=false');
      expect(listed.body.sagas.map((s: { id: string }) => s.id)).toEqual([id]);
      const one = await call('GET', `/api/admin/sagas/${id}`);
      expect(one.body.steps.map((s: { phase: string; name: string; status: string }) => `${s.phase} ${s.name} ${s.status}`)).toEqual([
        'action drive succeeded',
        'action rows failed',
        'compensation drive failed',
      ]);
      expect(await call('POST', `/api/admin/sagas/${id}/retry`)).toMatchObject({ status: 409, type: expect.stringMatching(/problem\+json/) });
      const resolved = await call('POST', `/api/admin/sagas/${id}/resolve`, { note: 'deleted in Drive by hand' });
      expect(resolved).toMatchObject({ status: 200, body: { resolvedBy: 'admin-token', resolutionNote: 'deleted in Drive by hand' } });
      expect((await call('GET', '/api/admin/sagas?resolved=false')).body.sagas).toEqual([]);
      const { body } = await call('GET', '/api/admin/system/status');
      expect(body.subsystems.sagas.byState).toMatchObject({ compensation_failed: 1 });
    } finally {
      await pool.end();
    }
  });

  it('stops gracefully on SIGTERM, closing the runner', async () => {
    expect(await server.stop('SIGTERM')).toBe(0);
  });
});
