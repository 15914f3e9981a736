/**
 * `aikb`, the operator CLI, end to end: the built binary as a child process against the built
 * server as a child process (embedded PGlite; PostgreSQL and Redis where they matter), and
 * against fake servers on 127.0.0.1 for what the server cannot be made to do (hang, answer the
 * upload contract another part of the server implements).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemporaryDatabase, freePort, testDatabaseUrl, testRedisUrl } from '@aikb/test-support';
import { writeCompensationFailedUpload } from './saga-fixtures';
import { runAikb, send, startServerProcess, tempDataDir, useServerProcesses, type ExitedProcess, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-aikb-cli-0123456789';
const USER_PASSWORD = 'test12345'; // the development server's seeded test@example.com
const { cleanups } = useServerProcesses();

/** A home directory of its own for each run: `aikb login` saves the user token under it. */
const home = mkdtempSync(path.join(tmpdir(), 'aikb-cli-home-'));
cleanups.push(() => rmSync(home, { recursive: true, force: true }));

type Run = ExitedProcess;

/** Runs the built `aikb` with `args`, with a home directory of the test's own. */
const aikb = (args: string[], env: Record<string, string | undefined> = {}, stdin?: string): Promise<Run> => runAikb(args, { HOME: home, ...env }, stdin);

/** `aikb` as an operator with the admin token, against `server`. */
const asAdmin = (server: ServerProcess, args: string[], env: Record<string, string> = {}, stdin?: string) =>
  aikb(args, { AIKB_URL: server.url, ADMIN_TOKEN, AIKB_DATA_DIR: path.join(home, 'no-data-dir'), ...env }, stdin);

/** The one line a failure prints. */
function oneLine(run: Run): string {
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess(env);
  cleanups.push(() => server.stop('SIGKILL'));
  return server;
}

function embedded(): Record<string, string> {
  const data = tempDataDir();
  cleanups.push(data.cleanup);
  return { AIKB_DATA_DIR: data.dir };
}

/** A server on 127.0.0.1 whose requests the test answers itself. */
async function fakeServer(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('aikb against the server (embedded PGlite)', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer({ ...embedded(), ADMIN_TOKEN });
  }, 30_000);

  describe('flags', () => {
    it('lists the flags as a table, and as the server JSON with --json', async () => {
      const table = await asAdmin(server, ['flags', 'list']);
      expect(table).toMatchObject({ code: 0, stderr: '' });
      expect(table.stdout).toMatch(/│ flag\s+│ enabled │ rollout % │ version │ last updated/);
      expect(table.stdout).toMatch(/│ priority_1_3_constant_time_auth\s+│ true\s+│ 100\s+│/);
      const json = await asAdmin(server, ['flags', 'list', '--json']);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual((await send(server, 'GET', '/api/admin/feature-flags', { token: ADMIN_TOKEN })).body);
      const info = await asAdmin(server, ['--json', 'flags', 'list', '--cache-info']);
      expect(JSON.parse(info.stdout).cacheAge).toEqual({ secondsSinceUpdate: expect.any(Number), ttl: 300 });
    });

    it('reads, changes and rolls out one flag, and shows who changed it', async () => {
      const name = 'priority_1_1_vector_validation';
      expect(JSON.parse((await asAdmin(server, ['flags', 'get', name, '--json'])).stdout)).toMatchObject({ name, enabled: true });
      const rollout = await asAdmin(server, ['flags', 'rollout', name, '30']);
      expect(rollout).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^${name}: enabled, rollout 30% \\(version \\d+\\)\\n$`)) });
      const set = await asAdmin(server, ['flags', 'set', name, '--disable', '--description', 'off for the e2e test']);
      expect(set.stdout).toMatch(/disabled, rollout 30%/);
      const status = await asAdmin(server, ['flags', 'status', name, '--user', 'u-1', '--json']);
      expect(JSON.parse(status.stdout)).toMatchObject({ name, userId: 'u-1', enabled: false, reason: 'DISABLED' });
      const history = await asAdmin(server, ['flags', 'history', name, '--limit', '2']);
      expect(history.code).toBe(0);
      expect(history.stdout).toMatch(/│ admin-token │ on 30%\s+│ off 30%/);
      expect(history.stdout).toMatch(/│ admin-token │ on 100%\s+│ on 30%/);
      expect((await asAdmin(server, ['flags', 'set', name, '--enable', '--rollout', '100'])).code).toBe(0);
    });

    it('names the similar flags on a 404, in one line, exit 1', async () => {
      const run = await asAdmin(server, ['flags', 'get', 'priority_2']);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(oneLine(run)).toMatch(/^aikb: not found: no flag named priority_2.*priority_2_1_saga_pattern, priority_2_2_rbac_api_filtering/);
    });

    it('refuses a bad value before any request: exit 2', async () => {
      for (const args of [
        ['flags', 'rollout', 'priority_2_1_saga_pattern', '150'],
        ['flags', 'set', 'priority_2_1_saga_pattern'],
        ['flags', 'set', 'priority_2_1_saga_pattern', '--enable', '--disable'],
        ['flags', 'nope'],
        ['nope'],
        ['flags'],
        ['--timeout', 'soon', 'health'],
        ['--url', 'ftp://127.0.0.1', 'health'],
        ['errors', '--window', '2h'],
      ]) {
        const run = await asAdmin(server, args);
        expect({ args, code: run.code }).toEqual({ args, code: 2 });
        expect(run.stdout).toBe('');
        expect(run.stderr).not.toBe('');
      }
      // Nothing was changed by the refused ones.
      expect(JSON.parse((await asAdmin(server, ['flags', 'get', 'priority_2_1_saga_pattern', '--json'])).stdout)).toMatchObject({
        enabled: true,
        rolloutPercentage: 100,
      });
      expect(await aikb(['--help'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/Exit codes: 0 done, 1 the request failed/) });
    });
  });

  describe('the admin token', () => {
    it('says in one line that it was refused (missing or wrong), exit 1, never printing it', async () => {
      const missing = await aikb(['flags', 'list'], { AIKB_URL: server.url, AIKB_DATA_DIR: path.join(home, 'no-data-dir') });
      expect(missing.code).toBe(1);
      expect(oneLine(missing)).toMatch(/^aikb: the admin token was refused: set ADMIN_TOKEN or --token-file \(no token: ADMIN_TOKEN is not set/);
      const wrong = await aikb(['flags', 'list'], { AIKB_URL: server.url, ADMIN_TOKEN: 'not-the-admin-token-0123456789' });
      expect(wrong.code).toBe(1);
      expect(oneLine(wrong)).toMatch(/^aikb: the admin token was refused: set ADMIN_TOKEN or --token-file \(from ADMIN_TOKEN\)/);
      expect(wrong.stderr).not.toContain('not-the-admin-token');
    });

    it('reads --token-file, and refuses one it cannot read with exit 2', async () => {
      const file = path.join(home, 'admin-token-file');
      writeFileSync(file, `${ADMIN_TOKEN}\n`, { mode: 0o600 });
      const run = await aikb(['--token-file', file, 'flags', 'list', '--json'], { AIKB_URL: server.url });
      expect(run.code).toBe(0);
      const unreadable = await aikb(['--token-file', path.join(home, 'missing'), 'flags', 'list'], { AIKB_URL: server.url });
      expect(unreadable.code).toBe(2);
      expect(oneLine(unreadable)).toMatch(/^aikb: cannot read the admin token file .*missing \(ENOENT\)/);
    });

    it('uses the token the server generated in its data dir when none is given', async () => {
      const env = embedded();
      const generated = await startServer(env); // no ADMIN_TOKEN: it writes <data dir>/admin-token
      const run = await aikb(['flags', 'list'], { AIKB_URL: generated.url, AIKB_DATA_DIR: env.AIKB_DATA_DIR! });
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toContain('priority_2_1_saga_pattern');
      await generated.stop('SIGTERM');
    }, 30_000);
  });

  describe('the emergency rollback', () => {
    it('sets every priority_* flag to rollout 0 in one call, printing the previous values; --undo restores them', async () => {
      expect((await asAdmin(server, ['flags', 'rollout', 'priority_2_2_rbac_api_filtering', '40'])).code).toBe(0);
      await rollbackAndUndo(server);
    });
  });

  describe('cache, health, pool, traces, errors', () => {
    it('invalidates cache keys and globs', async () => {
      const run = await asAdmin(server, ['cache', 'invalidate', 'feature_flags:priority_2_1_saga_pattern', 'feature_flags:*', '--json']);
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ invalidated: expect.any(Array) });
      const bad = await asAdmin(server, ['cache', 'invalidate', 'sessions:*']);
      expect(bad.code).toBe(1);
      expect(oneLine(bad)).toMatch(/^aikb: 400 Invalid request: .*\(field: keys\[0\]\)$/);
    });

    it('shows the health check and the pool, tables and JSON', async () => {
      const health = await aikb(['health'], { AIKB_URL: server.url }); // public: no token needed
      expect(health.code).toBe(0);
      expect(health.stdout).toMatch(/^status: ok \(version .*, up \d+ s\)\n/);
      expect(health.stdout).toMatch(/│ database\s+│ ok\s+│/);
      expect(JSON.parse((await aikb(['health', '--json'], { AIKB_URL: server.url })).stdout)).toMatchObject({ status: 'ok', tracing: { enabled: true } });
      const pool = await aikb(['pool'], { AIKB_URL: server.url });
      expect(pool.stdout).toMatch(/│ queuedRequests\s+│ 0\s+│/);
      expect(pool.stdout).toMatch(/│ histograms\.waitTimeMs\.p99\s+│/);
      expect(JSON.parse((await aikb(['pool', '--json'], { AIKB_URL: server.url })).stdout)).toMatchObject({ maxConnections: expect.any(Number) });
      const status = await asAdmin(server, ['status']);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/│ subsystems\.flags\.flags\s+│ 4\s+│/);
    });

    it('lists the requests that used the most connections, and the errors by endpoint', async () => {
      const traces = await asAdmin(server, ['traces', '--min-connections', '1', '--limit', '5']);
      expect(traces.code).toBe(0);
      expect(traces.stdout).toMatch(/│ endpoint\s+│ connections │ longest hold ms │ duration ms │/);
      expect(traces.stdout).toMatch(/│ GET \/api\/admin\/feature-flags\S*\s+│ [1-9]/);
      const json = JSON.parse((await asAdmin(server, ['traces', '--min-connections', '1', '--json'])).stdout) as Array<{ connectionsUsed: number }>;
      expect(json.length).toBeGreaterThan(0);
      expect(json.every((span) => span.connectionsUsed >= 1)).toBe(true);
      const errors = await asAdmin(server, ['errors', '--window', '1h', '--json']);
      expect(JSON.parse(errors.stdout)).toMatchObject({ window: '1h', errors: expect.any(Array) });
      expect((await asAdmin(server, ['errors'])).code).toBe(0);
    });
  });

  describe('sagas', () => {
    it('lists none, and answers an unknown saga with a 404 line', async () => {
      expect(await asAdmin(server, ['sagas', 'list'])).toMatchObject({ code: 0, stdout: '(none)\n' });
      const run = await asAdmin(server, ['sagas', 'show', 'no-such-saga']);
      expect(run.code).toBe(1);
      expect(oneLine(run)).toBe('aikb: not found: no saga with id no-such-saga');
    });
  });

  describe('search-indexes', () => {
    it("builds, lists and drops a role's principal index, and names a bad entry or a missing index in one line", async () => {
      expect(await asAdmin(server, ['search-indexes', 'list'])).toMatchObject({ code: 0, stdout: 'no principal indexes\n' });
      const created = await asAdmin(server, ['search-indexes', 'create', 'role:user']);
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(/│ principal\s+│ role:user\s+│/);
      expect(created.stdout).toMatch(/│ ready\s+│ true\s+│/);
      const listed = JSON.parse((await asAdmin(server, ['search-indexes', 'list', '--json'])).stdout);
      expect(listed.indexes).toEqual([
        expect.objectContaining({ principal: 'role:user', ready: true, index: expect.stringMatching(/^aikb_search_chunks_p_/) }),
      ]);
      const bad = await asAdmin(server, ['search-indexes', 'create', 'admins']);
      expect(bad.code).toBe(1);
      expect(oneLine(bad)).toMatch(/^aikb: .*principal must be "public", "user:<id>" or "role:<name>"/);
      expect(await asAdmin(server, ['search-indexes', 'drop', 'role:user'])).toMatchObject({ code: 0, stdout: 'dropped the index of role:user\n' });
      const again = await asAdmin(server, ['search-indexes', 'drop', 'role:user']);
      expect(again.code).toBe(1);
      expect(oneLine(again)).toBe('aikb: not found: this access-list entry has no principal index');
    });

    it('plans the tuning with --dry-run (built nothing), and refuses a share out of range as a usage error', async () => {
      const plan = await asAdmin(server, ['search-indexes', 'tune', '--dry-run', '--min-share', '0', '--max-share', '100%', '--min-chunks', '1', '--json']);
      expect(plan.code).toBe(0);
      const answer = JSON.parse(plan.stdout) as { created: string[]; dropped: string[]; kept: string[]; skipped: unknown[] };
      expect(answer).toEqual({ created: expect.any(Array), dropped: [], kept: [], skipped: [] });
      const table = await asAdmin(server, ['search-indexes', 'tune', '--dry-run', '--min-share', '0', '--max-share', '100%', '--min-chunks', '1']);
      expect(table.code).toBe(0);
      for (const entry of answer.created) expect(table.stdout).toMatch(new RegExp(`│ ${entry}\\s+│ would build\\s+│`));
      expect(await asAdmin(server, ['search-indexes', 'list'])).toMatchObject({ code: 0, stdout: 'no principal indexes\n' });
      const usage = await asAdmin(server, ['search-indexes', 'tune', '--min-share', '2']);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/must be a share from 0 to 1, or a percentage/);
    });
  });

  describe('users', () => {
    it('adds, finds by email, disables, enables, changes roles, shows the history of and deletes a user', async () => {
      const email = 'cli-user@example.com';
      const added = await asAdmin(server, ['users', 'add', '--email', email, '--role', 'eng', '--password-stdin', '--json'], {}, 'a-long-password\n');
      expect(added.code).toBe(0);
      const user = JSON.parse(added.stdout) as { id: string; roles: string[] };
      expect(user).toMatchObject({ email, roles: ['eng'], disabled: false });
      expect((await asAdmin(server, ['users', 'list'])).stdout).toMatch(new RegExp(`│ ${user.id} │ ${email}\\s+│ eng`));
      expect(JSON.parse((await asAdmin(server, ['users', 'show', email, '--json'])).stdout)).toMatchObject({ id: user.id });
      expect((await asAdmin(server, ['users', 'disable', email])).stdout).toMatch(/│ disabled\s+│ true/);
      expect((await asAdmin(server, ['users', 'enable', user.id])).stdout).toMatch(/│ disabled\s+│ false/);
      expect(JSON.parse((await asAdmin(server, ['users', 'roles', email, '--role', 'eng', '--role', 'admin', '--json'])).stdout).roles).toEqual([
        'eng',
        'admin',
      ]);
      const history = await asAdmin(server, ['users', 'history', email]);
      expect(history.stdout).toMatch(/│ update │ admin-token │ roles/);
      expect(history.stdout).toMatch(/│ create │ admin-token │/);
      expect(await asAdmin(server, ['users', 'delete', email])).toMatchObject({ code: 0, stdout: `deleted user ${email} (id ${user.id})\n` });
      const gone = await asAdmin(server, ['users', 'show', email]);
      expect(gone.code).toBe(1);
      expect(oneLine(gone)).toBe(`aikb: not found: no user with the email ${email}`);
      const refused = await asAdmin(server, ['users', 'add', '--email', 'not-an-email', '--password-stdin'], {}, 'a-long-password\n');
      expect(refused.code).toBe(1);
      expect(oneLine(refused)).toMatch(/^aikb: 400 Invalid request: .*\(field: email\)$/);
      // Not a terminal and no --password-stdin: a usage error, nothing sent.
      expect((await asAdmin(server, ['users', 'add', '--email', 'x@example.com'])).code).toBe(2);
    });
  });

  describe('as a user', () => {
    it('logs in (the token goes to a 0600 file, never to the output), lists the readable documents and searches them', async () => {
      const created = await send(server, 'POST', '/api/admin/documents', {
        token: ADMIN_TOKEN,
        json: { title: 'Storage plan', text: 'the quarterly storage plan for the archive', acl: ['role:user'] },
      });
      expect(created.status).toBe(201);
      const tokenFile = path.join(home, 'login', 'user-token');
      const env = { AIKB_URL: server.url, AIKB_USER_TOKEN_FILE: tokenFile };
      const wrong = await aikb(['login', '--email', 'test@example.com', '--password-stdin'], env, 'wrong-password\n');
      expect(wrong.code).toBe(1);
      const login = await aikb(['login', '--email', 'test@example.com', '--password-stdin'], env, `${USER_PASSWORD}\n`);
      expect(login).toMatchObject({ code: 0, stdout: `signed in as test@example.com; token saved to ${tokenFile} (expires in 3600 s)\n` });
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);

      const documents = await aikb(['documents', 'list'], env);
      expect(documents.code).toBe(0);
      expect(documents.stdout).toMatch(new RegExp(`│ ${created.body.id} │ Storage plan │ 1\\s+│`));
      const search = await aikb(['search', 'quarterly storage', '-k', '3'], env);
      expect(search.code).toBe(0);
      expect(search.stdout).toMatch(/│ \d\.\d{4} │ Storage plan │/);
      expect(search.stderr).toMatch(/^hybrid search, .*, complete, /);
      const json = JSON.parse((await aikb(['search', 'quarterly storage', '--json'], env)).stdout);
      expect(json.results[0]).toMatchObject({ documentId: created.body.id });

      const anonymous = await aikb(['documents', 'list'], { AIKB_URL: server.url, AIKB_USER_TOKEN_FILE: path.join(home, 'none') });
      expect(anonymous.code).toBe(1);
      expect(oneLine(anonymous)).toMatch(/^aikb: the user token was refused: run aikb login --email <email>, or set AIKB_USER_TOKEN \(no token:/);
    });

    it('uploads a file, finds it by search, replays the upload for its Idempotency-Key, and deletes it', async () => {
      const tokenFile = path.join(home, 'uploader', 'user-token');
      const env = { AIKB_URL: server.url, AIKB_USER_TOKEN_FILE: tokenFile };
      expect((await aikb(['login', '--email', 'test@example.com', '--password-stdin'], env, `${USER_PASSWORD}\n`)).code).toBe(0);
      const file = path.join(home, 'turbine-notes.md');
      writeFileSync(file, '# Turbine notes\n\nThe flywheel maintenance window moves to Thursday.\n');
      const args = ['documents', 'upload', file, '--title', 'Turbine notes', '--acl', 'role:user', '--idempotency-key', 'turbine-1', '--json'];
      const uploaded = await aikb(args, env);
      expect(uploaded).toMatchObject({ code: 0, stderr: '' });
      const document = JSON.parse(uploaded.stdout);
      expect(document).toMatchObject({ title: 'Turbine notes', contentType: 'text/markdown', chunks: 1, sagaId: expect.any(String) });
      // The same key again: the first answer, nothing stored twice.
      expect(JSON.parse((await aikb(args, env)).stdout)).toEqual(document);

      const found = JSON.parse((await aikb(['search', 'flywheel maintenance', '--json'], env)).stdout);
      expect(found.results.map((r: { documentId: string }) => r.documentId)).toContain(document.id);
      expect((await aikb(['documents', 'list'], env)).stdout).toMatch(new RegExp(`│ ${document.id} │ Turbine notes │`));

      const refused = await aikb(['documents', 'upload', file, '--acl', 'public'], env);
      expect(refused.code).toBe(1);
      expect(oneLine(refused)).toMatch(/^aikb: .*public/);

      expect(await aikb(['documents', 'delete', document.id], env)).toMatchObject({ code: 0, stdout: `deleted document ${document.id}\n` });
      const gone = JSON.parse((await aikb(['search', 'flywheel maintenance', '--json'], env)).stdout);
      expect(gone.results.map((r: { documentId: string }) => r.documentId)).not.toContain(document.id);
      expect((await aikb(['documents', 'delete', document.id], env)).code).toBe(1);
    });
  });
});

describe('aikb when the server cannot answer', () => {
  it('says no server is listening, exit 1', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const run = await aikb(['health'], { AIKB_URL: url });
    expect(run.code).toBe(1);
    expect(oneLine(run)).toBe(`aikb: no aikb server at ${url}: is it running? (ECONNREFUSED; set AIKB_URL or --url)`);
  });

  it('gives up after --timeout, exit 1', async () => {
    const { url } = await fakeServer(() => {}); // accepts, never answers
    const run = await aikb(['--timeout', '0.3', 'flags', 'list'], { AIKB_URL: url, ADMIN_TOKEN });
    expect(run.code).toBe(1);
    expect(oneLine(run)).toBe(`aikb: no answer from ${url} within 0.3 s (raise it with --timeout <seconds>)`);
  });
});

describe('aikb against an answer too large to be one', () => {
  it('stops reading past 16 MiB and says so, exit 1', async () => {
    const { url } = await fakeServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length to check up front
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const more = () => {
        while (sent < 32 && res.write(chunk)) sent++;
        if (sent < 32) res.once('drain', more);
        else res.end();
      };
      res.on('close', () => (sent = 32));
      more();
    });
    const run = await aikb(['health'], { AIKB_URL: url });
    expect(run.code).toBe(1);
    expect(oneLine(run)).toBe('aikb: the answer is larger than 16 MiB');
  });
});

describe('aikb documents upload and delete (against the upload contract, on a fake server)', () => {
  const USER_TOKEN = 'a-user-token-for-the-fake-server';
  const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }> = [];
  let url: string;
  beforeAll(async () => {
    ({ url } = await fakeServer((req, res, body) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.method === 'POST' && req.url === '/api/documents/upload') {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'doc-1', title: 'Q3 report', sagaId: 'saga-1', chunks: 2, bytes: body.length, contentType: 'text/markdown' }));
      } else if (req.method === 'DELETE' && req.url === '/api/documents/doc-1') {
        res.writeHead(204).end();
      } else {
        res.writeHead(404, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: 'urn:aikb:problem:not-found', title: 'Not found', status: 404, detail: 'no document with this id' }));
      }
    }));
  });

  it('sends the title and acl before the file part, with the user token and the idempotency key', async () => {
    const file = path.join(home, 'q3-report.md');
    writeFileSync(file, '# Q3\n\nrevenue grew\n');
    const run = await aikb(
      ['documents', 'upload', file, '--title', 'Q3 report', '--acl', 'role:eng', '--acl', 'user:42', '--idempotency-key', 'k-1', '--json'],
      {
        AIKB_URL: url,
        AIKB_USER_TOKEN: USER_TOKEN,
      },
    );
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(run.stdout)).toMatchObject({ id: 'doc-1', sagaId: 'saga-1', chunks: 2 });
    const upload = seen.at(-1)!;
    expect(upload).toMatchObject({ method: 'POST', url: '/api/documents/upload' });
    expect(upload.headers).toMatchObject({ authorization: `Bearer ${USER_TOKEN}`, 'idempotency-key': 'k-1' });
    expect(upload.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    const raw = upload.body.toString('latin1');
    const order = ['name="title"', 'name="acl"', 'name="file"'].map((part) => raw.indexOf(part));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    const form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': upload.headers['content-type']! }, body: upload.body }).formData();
    expect(form.get('title')).toBe('Q3 report');
    expect(JSON.parse(form.get('acl') as string)).toEqual(['role:eng', 'user:42']);
    const sent = form.get('file') as File;
    expect(sent).toMatchObject({ name: 'q3-report.md', type: 'text/markdown' });
    expect(await sent.text()).toBe('# Q3\n\nrevenue grew\n');

    const table = await aikb(['documents', 'upload', file], { AIKB_URL: url, AIKB_USER_TOKEN: USER_TOKEN });
    expect(table.stdout).toMatch(/│ sagaId\s+│ saga-1\s+│/);
    const defaults = await new Request('http://x/', {
      method: 'POST',
      headers: { 'content-type': seen.at(-1)!.headers['content-type']! },
      body: seen.at(-1)!.body,
    }).formData();
    expect(defaults.get('title')).toBe('q3-report.md');
    expect(defaults.has('acl')).toBe(false);
    expect(seen.at(-1)!.headers['idempotency-key']).toBeUndefined();
  });

  it('refuses a file it cannot read with exit 2, sending nothing', async () => {
    const before = seen.length;
    const run = await aikb(['documents', 'upload', path.join(home, 'missing.pdf')], { AIKB_URL: url, AIKB_USER_TOKEN: USER_TOKEN });
    expect(run.code).toBe(2);
    expect(oneLine(run)).toMatch(/^aikb: cannot read .*missing\.pdf \(ENOENT\)$/);
    expect(seen.length).toBe(before);
  });

  it('deletes a document (204), and says so on a 404', async () => {
    expect(await aikb(['documents', 'delete', 'doc-1'], { AIKB_URL: url, AIKB_USER_TOKEN: USER_TOKEN })).toMatchObject({
      code: 0,
      stdout: 'deleted document doc-1\n',
    });
    expect(seen.at(-1)).toMatchObject({ method: 'DELETE', url: '/api/documents/doc-1', headers: { authorization: `Bearer ${USER_TOKEN}` } });
    const missing = await aikb(['documents', 'delete', 'a/b'], { AIKB_URL: url, AIKB_USER_TOKEN: USER_TOKEN });
    expect(seen.at(-1)!.url).toBe('/api/documents/a%2Fb');
    expect(missing.code).toBe(1);
    expect(oneLine(missing)).toBe('aikb: not found: no document with this id');
  });
});

/** Rolls back, checks every gated flag is at 0 with its audit record, undoes, checks every value is back. */
async function rollbackAndUndo(server: ServerProcess): Promise<void> {
  const before = (await send(server, 'GET', '/api/admin/feature-flags', { token: ADMIN_TOKEN })).body.flags as Array<{
    name: string;
    rolloutPercentage: number;
  }>;
  const gated = before.filter((f) => f.name.startsWith('priority_') && f.rolloutPercentage > 0);
  expect(gated.length).toBeGreaterThanOrEqual(4);

  const rollback = await asAdmin(server, ['rollback']);
  expect(rollback).toMatchObject({ code: 0, stderr: '' });
  expect(rollback.stdout).toMatch(/│ flag\s+│ previous rollout % │ rollout % │/);
  for (const flag of gated) expect(rollback.stdout).toMatch(new RegExp(`│ ${flag.name}\\s+│ ${flag.rolloutPercentage}\\s+│ 0\\s+│`));
  const after = (await send(server, 'GET', '/api/admin/feature-flags', { token: ADMIN_TOKEN })).body.flags as Array<{
    name: string;
    rolloutPercentage: number;
  }>;
  expect(after.filter((f) => f.name.startsWith('priority_')).every((f) => f.rolloutPercentage === 0)).toBe(true);
  const [record] = (await send(server, 'GET', `/api/admin/feature-flags/${gated[0]!.name}/history`, { token: ADMIN_TOKEN })).body.history;
  expect(record).toMatchObject({ actor: 'rollback:admin-token', before: { rolloutPercentage: gated[0]!.rolloutPercentage }, after: { rolloutPercentage: 0 } });
  const again = await asAdmin(server, ['rollback', '--json']);
  expect(JSON.parse(again.stdout)).toMatchObject({ pattern: 'priority_*', rolledBack: [] });

  const undo = await asAdmin(server, ['rollback', '--undo']);
  expect(undo).toMatchObject({ code: 0, stderr: '' });
  for (const flag of gated) expect(undo.stdout).toMatch(new RegExp(`│ ${flag.name}\\s+│ ${flag.rolloutPercentage}\\s+│ admin-token\\s+│`));
  const restored = (await send(server, 'GET', '/api/admin/feature-flags', { token: ADMIN_TOKEN })).body.flags as Array<{
    name: string;
    rolloutPercentage: number;
  }>;
  expect(restored.map((f) => [f.name, f.rolloutPercentage])).toEqual(before.map((f) => [f.name, f.rolloutPercentage]));
  expect(await asAdmin(server, ['rollback', '--undo'])).toMatchObject({
    code: 0,
    stdout: 'nothing to undo: no flag has a rollback as its latest change\n',
    stderr: '',
  });
}

describe.runIf(testDatabaseUrl && testRedisUrl)('aikb against two instances on PostgreSQL and Redis', () => {
  let database: { url: string; drop(): Promise<void> };
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    database = await createTemporaryDatabase(testDatabaseUrl!);
    cleanups.push(() => database.drop());
    // One JWT secret for both (else each would keep one in a data dir of the working directory).
    const env = {
      ...embedded(),
      DATABASE_URL: database.url,
      REDIS_URL: testRedisUrl!,
      ADMIN_TOKEN,
      AUTH_JWT_SECRET: 'e2e-jwt-secret-for-the-aikb-cli-test-0123456789',
    };
    a = await startServer(env);
    b = await startServer(env);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop('SIGTERM'), b?.stop('SIGTERM')]);
  });

  it('rolls back through one instance and the other serves rollout 0 at once; --undo restores both', async () => {
    await rollbackAndUndo(a);
    // The other instance serves what the undo restored, from its cache (pushed over Redis).
    const status = await send(b, 'GET', '/api/admin/feature-flags/priority_2_1_saga_pattern/status?userId=u-1', { token: ADMIN_TOKEN });
    expect(status.body).toMatchObject({ enabled: true, rolloutPercentage: 100 });
    await asAdmin(a, ['rollback']);
    const rolledBack = await send(b, 'GET', '/api/admin/feature-flags/priority_2_1_saga_pattern/status?userId=u-1', { token: ADMIN_TOKEN });
    expect(rolledBack.body).toMatchObject({ enabled: false, rolloutPercentage: 0 });
    expect((await asAdmin(b, ['rollback', '--undo'])).code).toBe(0);
  });

  it('lists, shows, retries and resolves a saga left failed in the database', async () => {
    const id = '5b0f6a7e-1d2c-4e3f-8a9b-0c1d2e3f4a5b';
    await writeCompensationFailedUpload(database.url, id, 'cli-e2e');
    const list = await asAdmin(a, ['sagas', 'list', '--state', 'compensation_failed', '--resolved', 'false']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`│ ${id} │ document_upload │ compensation_failed │`));
    const shown = await asAdmin(b, ['sagas', 'show', id]);
    expect(shown.stdout).toMatch(/│ error\.message\s+│ Failed to delete from Drive/);
    expect(shown.stdout).toMatch(/│ 1 │ rows\s+│ action\s+│ failed\s+│/);
    expect(shown.stdout).toMatch(/│ 0 │ drive\s+│ compensation │ failed\s+│/);
    const retry = await asAdmin(a, ['sagas', 'retry', id]);
    expect(retry.code).toBe(1);
    expect(oneLine(retry)).toMatch(/^aikb: 409 /);
    const resolved = await asAdmin(a, ['sagas', 'resolve', id, '--note', 'deleted in Drive by hand', '--json']);
    expect(JSON.parse(resolved.stdout)).toMatchObject({ resolvedBy: 'admin-token', resolutionNote: 'deleted in Drive by hand' });
    expect((await asAdmin(a, ['sagas', 'list', '--resolved', 'false'])).stdout).toBe('(none)\n');
  });
});
