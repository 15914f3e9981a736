/**
 * Property-based fuzzing of every route of the reference server, in process over embedded PGlite
 * (the backend where a refused parameter also breaks the connection): malformed paths, queries,
 * headers (Content-Type, Content-Encoding, Authorization) and bodies, with and without the admin
 * token. Whatever the request: never a 5xx, a problem+json body for every 4xx, no database or
 * driver message in any answer, and nothing changed by a request that was refused.
 *
 * `AIKB_FUZZ_RUNS` sets the number of requests (default 300, for CI); `AIKB_FUZZ_SEED` replays a
 * failing run (fast-check prints the seed and the shrunk counterexample), or `random` for a new one:
 * `AIKB_FUZZ_RUNS=5000 AIKB_FUZZ_SEED=random npx vitest run examples/reference-server/test/fuzz.test.ts`.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresUserStore } from '@aikb/core/auth';
import { createPostgresFlagStore } from '@aikb/core/flags';
import { createApp } from '../src/app';
import { loadConfig } from '../src/config';
import type { ServerContext } from '../src/context';
import type { Infrastructure } from '../src/infrastructure';
import { startSubsystems, type StartedSubsystems } from '../src/lifecycle';
import { contextSubsystems, createInitialContext } from '../src/server';

const RUNS = Number(process.env.AIKB_FUZZ_RUNS ?? 300);
const SEED = process.env.AIKB_FUZZ_SEED === 'random' ? undefined : Number(process.env.AIKB_FUZZ_SEED ?? 20_261_127);
const ADMIN_TOKEN = 'fuzz-admin-token-0123456789abcdef';

/** Every route of the app, as `METHOD template`. The test below fails when the app has one this table lacks. */
const ROUTES = [
  'POST /auth/login',
  'GET /api/health',
  'GET /api/health/pool-stats',
  'GET /metrics',
  'GET /api/admin/feature-flags',
  'GET /api/admin/feature-flags/:name',
  'POST /api/admin/feature-flags/:name',
  'PUT /api/admin/feature-flags/:name',
  'GET /api/admin/feature-flags/:name/status',
  'GET /api/admin/feature-flags/:name/history',
  'POST /api/admin/feature-flags/_rollback',
  'POST /api/admin/cache/invalidate',
  'GET /api/admin/traces',
  'GET /api/admin/metrics/errors',
  'GET /api/admin/system/status',
  'POST /api/admin/pool/leak-hunting',
  'POST /api/admin/users',
  'GET /api/admin/users',
  'GET /api/admin/users/:id',
  'GET /api/admin/users/:id/history',
  'PATCH /api/admin/users/:id',
  'DELETE /api/admin/users/:id',
  'GET /api/admin/sagas',
  'GET /api/admin/sagas/:id',
  'POST /api/admin/sagas/:id/retry',
  'POST /api/admin/sagas/:id/cancel',
  'POST /api/admin/sagas/:id/resolve',
  'POST /api/search',
  'POST /api/documents/upload',
  'DELETE /api/documents/:id',
  'GET /api/documents',
  'GET /api/documents/:id',
  'POST /api/admin/documents',
  'PUT /api/admin/documents/:id/acl',
  'DELETE /api/admin/documents/:id',
  'GET /api/admin/search/indexes',
  'POST /api/admin/search/indexes/_tune',
  'PUT /api/admin/search/indexes/:principal',
  'DELETE /api/admin/search/indexes/:principal',
] as const;
type Route = (typeof ROUTES)[number];

interface Layer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: unknown;
}

/** Lists the app's routes by walking its router (mount paths + route paths, as declared). */
function routesOf(stack: Layer[], prefix = ''): string[] {
  return stack.flatMap((layer) => {
    const here = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
    if (layer.route) {
      const template = `${prefix}${String(layer.route.path)}`.replace(/(.)\/$/, '$1');
      return Object.keys(layer.route.methods)
        .filter((m) => m !== '_all')
        .map((m) => `${m.toUpperCase()} ${template}`);
    }
    return Array.isArray(layer.handle?.stack) ? routesOf(layer.handle.stack, `${prefix}${here}`) : [];
  });
}

let root: string;
let started: StartedSubsystems<ServerContext> | undefined;
let infra: Infrastructure;
let server: Server;
let routes: string[];
/** The id of a real user, so PATCH and DELETE sometimes hit one. */
let targetId: string;
/** A user token of the fuzz target, for the search routes (`USER_TOKEN` in the generator). */
let userToken: string;
const errors: unknown[] = [];

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'aikb-fuzz-'));
  const config = loadConfig({ AIKB_DATA_DIR: path.join(root, 'data'), ADMIN_TOKEN, LOG_LEVEL: 'error', PORT: '0' }, '/');
  const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line)) });
  // The server's own subsystems, in its order (embedded: started on a migrated schema).
  started = await startSubsystems(contextSubsystems, createInitialContext(config, logger), { logger });
  const { ctx } = started;
  infra = ctx.infra;
  const app = createApp(ctx);
  routes = routesOf((app as unknown as { router: { stack: Layer[] } }).router.stack);
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  // A user to aim PATCH and DELETE at, and a flag with some history.
  const target = await ctx.auth.users.add({ email: 'fuzz-target@example.com', password: 'correct horse battery', roles: ['user'] });
  targetId = target.id;
  userToken = (await ctx.auth.tokens.issue(target)).token;
  // A document the target may read, one it may not, so the search routes have something to find.
  await ctx.search.store.indexDocument({ id: targetId, title: 'Pool runbook', text: 'The connection pool is exhausted.', acl: ['role:user'] });
  await ctx.search.store.indexDocument({ id: 'hidden', title: 'Hidden', text: 'Nobody reads this pool.', acl: ['user:nobody'] });
}, 120_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await started?.close();
  rmSync(root, { recursive: true, force: true });
});

interface Answer {
  status: number;
  type: string;
  text: string;
}

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

function send({ method, path: target, headers, body }: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        method,
        path: target,
        agent: false,
        headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Everything a refused request must leave as it was: flags with their history, and users. */
async function snapshot(): Promise<string> {
  const flagStore = createPostgresFlagStore({ pool: infra.db.pool });
  const list = await flagStore.list();
  const history = await Promise.all(list.map((flag) => flagStore.history(flag.name, { limit: 1000 })));
  const users = await createPostgresUserStore({ pool: infra.db.pool }).list();
  const documents = (
    await infra.db.pool.query(
      'SELECT d.id, d.title, d.content_hash, array(SELECT principal FROM aikb_search_acl a WHERE a.document_id = d.id ORDER BY 1) AS acl FROM aikb_search_documents d ORDER BY d.id',
    )
  ).rows;
  const files = (await infra.db.pool.query('SELECT id, drive_key, title, acl FROM aikb_document_files ORDER BY id')).rows;
  const drive = (await started!.ctx.documents.drive.list('documents/', { limit: 1000 })).items;
  return JSON.stringify({ list, history, users, documents, files, drive });
}

// ---- generators ----

const nasty = fc.constantFrom(
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff x',
  '__proto__',
  'constructor',
  'toString',
  '%00',
  '%ZZ',
  '../..',
  '',
  ' ',
  'x'.repeat(3000),
  'é',
  '😀',
  '\u202e',
  'NaN',
  '-1',
  '1e400',
);
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), nasty);
/** A path segment as a client can put it on the request line: encoded, malformed or plain. */
const segment = fc.oneof(
  text.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'))),
  fc.constantFrom('%ZZ', '%', '%E2%82', '%C0%80', '%00', 'a%00b', '%2F', '%252F', '..', '.', 'priority_1_1_vector_validation', 'PRIORITY_1_1', 'x'.repeat(300)),
  fc.stringMatching(/^[a-z0-9_.-]{1,20}$/),
);
const queryValue = fc.oneof(
  segment,
  fc.constantFrom('5m', '1h', '24h', '__proto__', 'constructor', 'toString', 'cache-info', '10', '-1', '1.5', '99999999999', ''),
);
const queryKey = fc.oneof(
  fc.constantFrom('window', 'limit', 'include', 'userId', 'minConnections', 'minDurationMs', 'status', '__proto__', 'constructor', 'a[b]', 'limit[]'),
  segment,
);
const query = fc
  .array(fc.tuple(queryKey, queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 3 }), text, fc.constant(null), fc.integer(), fc.boolean());
const field = (names: string[]) =>
  fc.dictionary(fc.oneof(fc.constantFrom(...names), fc.constantFrom('__proto__', 'constructor', 'extra')), jsonish, { maxKeys: 5 });
const bodies: Partial<Record<string, fc.Arbitrary<unknown>>> = {
  flag: fc.oneof(
    fc.record(
      {
        enabled: fc.oneof(fc.boolean(), jsonish),
        rolloutPercentage: fc.oneof(fc.integer({ min: -5, max: 105 }), jsonish),
        description: fc.oneof(text, jsonish),
      },
      { requiredKeys: [] },
    ),
    field(['enabled', 'rolloutPercentage', 'description']),
  ),
  user: fc.oneof(
    fc.record(
      {
        email: fc.oneof(fc.emailAddress(), text, jsonish),
        password: fc.oneof(text, jsonish),
        roles: fc.oneof(fc.array(text, { maxLength: 3 }), jsonish),
        disabled: fc.oneof(fc.boolean(), jsonish),
      },
      { requiredKeys: [] },
    ),
    field(['email', 'password', 'roles', 'disabled']),
  ),
  keys: fc.oneof(
    fc.record({
      keys: fc.oneof(fc.array(fc.oneof(text, fc.constantFrom('feature_flags:*', 'feature_flags:priority_1_1_vector_validation')), { maxLength: 3 }), jsonish),
    }),
    field(['keys']),
  ),
  leakHunt: fc.oneof(
    fc.record({ enabled: fc.oneof(fc.boolean(), jsonish), minutes: fc.oneof(fc.integer({ min: -5, max: 2000 }), fc.double(), jsonish) }, { requiredKeys: [] }),
    field(['enabled', 'minutes']),
  ),
  login: fc.record({ email: fc.oneof(fc.emailAddress(), text), password: text }, { requiredKeys: [] }),
  search: fc.oneof(
    fc.record(
      {
        query: fc.oneof(text, jsonish),
        vector: fc.oneof(fc.array(fc.oneof(fc.double(), jsonish), { maxLength: 300 }), jsonish),
        k: fc.oneof(fc.integer({ min: -5, max: 20_000 }), jsonish),
        mode: fc.oneof(fc.constantFrom('vector', 'text', 'hybrid'), jsonish),
      },
      { requiredKeys: [] },
    ),
    field(['query', 'vector', 'k', 'mode']),
  ),
  document: fc.oneof(
    fc.record(
      {
        id: fc.oneof(text, jsonish),
        title: fc.oneof(text, jsonish),
        text: fc.oneof(text, jsonish),
        acl: fc.oneof(fc.array(fc.oneof(text, fc.constantFrom('public', 'role:user', 'user:')), { maxLength: 3 }), jsonish),
        metadata: jsonish,
      },
      { requiredKeys: [] },
    ),
    field(['id', 'title', 'text', 'acl', 'metadata']),
  ),
};
/** A multipart upload (boundary `x`): its parts in any order, any names, any values, closed or not. */
const MARKDOWN_FILE = '# Fuzz\n\nThe sprocket plan.\n';
const uploadPart = fc.oneof(
  fc.record({
    name: fc.constantFrom('title', 'title', 'acl', 'owner', ''),
    value: fc.oneof(
      text,
      jsonish.map((v) => JSON.stringify(v) ?? 'null'),
    ),
  }),
  fc.record({ name: fc.constant('acl'), value: fc.constantFrom('[]', '["public"]', '["role:user"]', '["user:x"]', '[', '{"a":1}', '["role:user","public"]') }),
  fc.record({
    name: fc.constantFrom('file', 'file', 'upload'),
    filename: fc.oneof(fc.constantFrom('a.md', 'a.txt', '', '../../etc/passwd', 'x.pdf'), text),
    value: fc.oneof(fc.constant(MARKDOWN_FILE), text, fc.constantFrom('%PDF-1.4 nothing', '<html><body>hi</body></html>', '\u0000\u0001binary', '')),
  }),
);
bodies.upload = fc.tuple(fc.array(uploadPart, { maxLength: 5 }), fc.constantFrom('--x--\r\n', '--x--\r\n', '', '--x')).map(([parts, end]) =>
  parts
    .map((part) => {
      const filename = 'filename' in part ? `; filename="${part.filename.replace(/["\r\n]/g, '')}"` : '';
      return `--x\r\nContent-Disposition: form-data; name="${part.name.replace(/["\r\n]/g, '')}"${filename}\r\n\r\n${part.value}\r\n`;
    })
    .join('')
    .concat(end),
);

function bodyKind(route: Route): string | undefined {
  if (route === 'POST /api/documents/upload') return 'upload';
  if (route.includes('feature-flags/:name') && !route.startsWith('GET')) return 'flag';
  if (route.includes('/users') && !route.startsWith('GET') && !route.startsWith('DELETE')) return 'user';
  if (route.includes('cache')) return 'keys';
  if (route.includes('login')) return 'login';
  if (route.includes('leak-hunting')) return 'leakHunt';
  if (route === 'POST /api/search') return 'search';
  if (route.includes('/api/admin/documents') && !route.startsWith('DELETE')) return 'document';
  return undefined;
}

type Coding =
  'none' | 'identity' | 'gzip' | 'x-gzip' | 'deflate' | 'br' | 'gzip-garbage' | 'gzip-truncated' | 'br-garbage' | 'deflate-garbage' | 'compress' | 'gzip, br';
const coding = fc.constantFrom<Coding>(
  'none',
  'none',
  'none',
  'identity',
  'gzip',
  'x-gzip',
  'deflate',
  'br',
  'gzip-garbage',
  'gzip-truncated',
  'br-garbage',
  'deflate-garbage',
  'compress',
  'gzip, br',
);
function encode(raw: Buffer, how: Coding): { body: Buffer; header?: string } {
  switch (how) {
    case 'none':
      return { body: raw };
    case 'identity':
      return { body: raw, header: 'identity' };
    case 'gzip':
    case 'x-gzip':
      return { body: gzipSync(raw), header: how };
    case 'deflate':
      return { body: deflateSync(raw), header: how };
    case 'br':
      return { body: brotliCompressSync(raw), header: how };
    case 'gzip-garbage':
      return { body: raw, header: 'gzip' };
    case 'gzip-truncated':
      return { body: gzipSync(raw).subarray(0, Math.max(1, Math.floor(gzipSync(raw).length / 2))), header: 'gzip' };
    case 'br-garbage':
      return { body: Buffer.concat([Buffer.from([0xff, 0xfe]), raw]), header: 'br' };
    case 'deflate-garbage':
      return { body: raw, header: 'deflate' };
    default:
      return { body: gzipSync(raw), header: how };
  }
}

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/merge-patch+json',
  'application/json; charset=latin1',
  '*/*',
  'garbage',
);
const authorization = fc.constantFrom(
  undefined,
  'USER_TOKEN',
  'USER_TOKEN',
  `Bearer ${ADMIN_TOKEN}`,
  `Bearer ${ADMIN_TOKEN}`,
  `Bearer ${ADMIN_TOKEN}`,
  'Bearer',
  'Bearer x',
  `Basic ${ADMIN_TOKEN}`,
  'Bearer a.b.c',
  'Bearer eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJhZG1pbiJdfQ.',
  `bearer ${ADMIN_TOKEN}`,
  `Bearer ${ADMIN_TOKEN} extra`,
);

/** Mostly the routes' own methods; sometimes another one. */
const methodFor = (route: Route) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(route.split(' ')[0]!) },
    { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') },
  );

/** The route's path with random casing, its parameters filled by `segment`. */
function pathFor(route: Route): fc.Arbitrary<string> {
  const parts = route.split(' ')[1]!.split('/').filter(Boolean);
  return fc
    .tuple(
      fc.tuple(
        ...parts.map((part) =>
          part === ':id'
            ? fc.oneof(segment, fc.constant(targetId))
            : part.startsWith(':')
              ? segment
              : fc.oneof({ weight: 5, arbitrary: fc.constant(part) }, { weight: 1, arbitrary: fc.constant(part.toUpperCase()) }),
        ),
      ),
      fc.constantFrom('', '', '', '/', '//'),
    )
    .map(([values, trailing]) => `/${values.join('/')}${trailing}`);
}

function request(exclude: readonly Route[]): fc.Arbitrary<Sent> {
  return fc.constantFrom(...ROUTES.filter((r) => !exclude.includes(r))).chain((route) =>
    fc
      .record({
        method: methodFor(route),
        path: pathFor(route),
        query,
        body: fc.oneof(
          {
            weight: 6,
            arbitrary: (bodies[bodyKind(route) ?? ''] ?? jsonish).map((value) =>
              Buffer.from(bodyKind(route) === 'upload' ? (value as string) : (JSON.stringify(value) ?? 'null')),
            ),
          },
          { weight: 2, arbitrary: jsonish.map((value) => Buffer.from(JSON.stringify(value) ?? 'null')) },
          { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
          { weight: 1, arbitrary: fc.constantFrom('{"a":', '{"enabled":tru}', '', '{}', '[]', 'null', '{"rolloutPercentage": 10}').map((s) => Buffer.from(s)) },
          { weight: 1, arbitrary: fc.constant(Buffer.from(JSON.stringify({ description: 'x'.repeat(150 * 1024) }))) },
          { weight: 2, arbitrary: fc.constant(undefined) },
        ),
        coding,
        contentType:
          route === 'POST /api/documents/upload'
            ? fc.oneof({ weight: 3, arbitrary: fc.constant('multipart/form-data; boundary=x') }, contentType)
            : contentType,
        authorization,
        requestId: fc.option(
          fc.string({ maxLength: 200 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
          { nil: undefined },
        ),
      })
      .map(({ method, path: target, query: q, body, coding: how, contentType: type, authorization: auth, requestId }) => {
        const headers: Record<string, string> = {};
        if (type) headers['Content-Type'] = type;
        if (auth) headers.Authorization = auth === 'USER_TOKEN' ? `Bearer ${userToken}` : auth;
        if (requestId) headers['X-Request-ID'] = requestId;
        let payload: Buffer | undefined = body;
        if (body) {
          const encoded = encode(body, how);
          payload = encoded.body;
          if (encoded.header) headers['Content-Encoding'] = encoded.header;
        }
        return { method, path: `${target}${q}`, headers, body: payload };
      }),
  );
}

/** What a database or driver says, and must never reach a client. */
const DRIVER_TEXT = /byte sequence|syntax for type|SQLSTATE|violates|relation "|column "|pglite|\bECONN[A-Z]+|Connection terminated|message from backend/;

async function check(sent: Sent): Promise<void> {
  const before = await snapshot();
  const answer = await send(sent);
  const context = `${sent.method} ${sent.path} ${JSON.stringify(sent.headers)} → ${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, context).toBeLessThan(500);
  if (answer.status >= 400) {
    expect(answer.text, context).not.toMatch(DRIVER_TEXT);
    if (sent.method !== 'HEAD') {
      expect(answer.type, context).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(answer.text) as { status?: unknown; type?: unknown; title?: unknown };
      expect(problem, context).toMatchObject({ status: answer.status, type: expect.stringMatching(/^urn:aikb:problem:/), title: expect.any(String) });
    }
    expect(await snapshot(), `state changed by a refused request: ${context}`).toBe(before);
  }
}

describe('reference server under malformed requests', () => {
  it('has no route the fuzz table lacks', () => {
    expect([...new Set(routes)].filter((r) => !(ROUTES as readonly string[]).includes(r))).toEqual([]);
    expect(ROUTES.filter((r) => !routes.includes(r))).toEqual([]);
  });

  it(`answers ${RUNS} malformed requests on every route (login aside) without a 5xx, with problem+json, changing nothing when refused`, async () => {
    await fc.assert(fc.asyncProperty(request(['POST /auth/login']), check), { numRuns: RUNS, seed: SEED, endOnFailure: true });
    expect(errors.filter((line) => (line as { level: number }).level >= 50)).toEqual([]);
  }, 600_000);

  it('answers malformed logins the same way (a few: each takes 500 ms)', async () => {
    const login = fc.constant<Route>('POST /auth/login').chain(() => request(ROUTES.filter((r) => r !== 'POST /auth/login')));
    await fc.assert(fc.asyncProperty(login, check), { numRuns: Math.max(8, Math.ceil(RUNS / 30)), seed: SEED, endOnFailure: true });
  }, 600_000);
});

describe('reference server: the cases of issue 8', () => {
  const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
  const json = { 'Content-Type': 'application/json' };
  const post = (target: string, body: Buffer | string, headers: Record<string, string>, method = 'POST') =>
    send({ method, path: target, headers, body: typeof body === 'string' ? Buffer.from(body) : body });

  it('answers a bad Content-Encoding with a 4xx on any path, and reads no admin body before the guard', async () => {
    const bad = [
      ['gzip', Buffer.from('{"enabled":true}')],
      ['gzip', gzipSync('{"enabled":true,"rolloutPercentage":5}').subarray(0, 12)],
      ['deflate', Buffer.from('nope')],
      ['br', Buffer.from([0xff, 0xff, 0x00])],
    ] as const;
    for (const [codingName, body] of bad) {
      const headers = { ...json, 'Content-Encoding': codingName };
      // No token: the guard answers first, whatever the body.
      expect((await post('/api/admin/feature-flags/priority_2_1_saga_pattern', body, headers)).status).toBe(401);
      expect((await post('/api/admin/users', body, headers)).status).toBe(401);
      expect((await post('/api/health', body, headers)).status).toBe(404);
      // With it: the body does not decode, a 400 naming it.
      const res = await post('/api/admin/feature-flags/priority_2_1_saga_pattern', body, { ...headers, ...admin });
      expect([res.status, JSON.parse(res.text).field]).toEqual([400, 'body']);
      expect((await post('/api/admin/users', body, { ...headers, ...admin })).status).toBe(400);
    }
    expect((await post('/api/admin/cache/invalidate', gzipSync('{}'), { ...json, ...admin, 'Content-Encoding': 'compress' })).status).toBe(415);
  });

  it('answers an oversized body with 413 whatever its type (a small body of another type than JSON is a 415)', async () => {
    const big = JSON.stringify({ description: 'x'.repeat(200 * 1024) });
    for (const [type, status] of [
      ['application/json', 413],
      ['application/x-www-form-urlencoded', 413],
      ['text/plain', 413],
      ['application/octet-stream', 413],
      ['', 413],
    ] as const) {
      for (const [target, method] of [
        ['/api/admin/feature-flags/priority_2_1_saga_pattern', 'POST'],
        ['/api/admin/users', 'POST'],
        ['/api/admin/cache/invalidate', 'POST'],
      ] as const) {
        const res = await post(target, big, { ...(type ? { 'Content-Type': type } : {}), ...admin }, method);
        expect([res.status, res.type]).toEqual([status, expect.stringMatching(/problem\+json/)]);
      }
    }
    expect((await post('/api/admin/cache/invalidate', '{"keys":["x"]}', { 'Content-Type': 'text/plain', ...admin })).status).toBe(415);
    // The users router's own, smaller limit (16 KiB) holds inside the server too.
    const mid = JSON.stringify({ email: 'a@example.com', password: 'x'.repeat(20 * 1024), roles: ['user'] });
    expect((await post('/api/admin/users', mid, { ...json, ...admin })).status).toBe(413);
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect((await post('/api/admin/users', bomb, { ...json, ...admin, 'Content-Encoding': 'gzip' })).status).toBe(413);
  });

  it('answers malformed percent-encoding, NUL bytes and object-member windows with 400 naming the field', async () => {
    const before = await snapshot();
    const cases: Array<[Sent, string]> = [
      [{ method: 'GET', path: '/api/admin/feature-flags/%ZZ', headers: admin, body: undefined }, 'path'],
      [{ method: 'DELETE', path: '/api/admin/users/%E2%82', headers: admin, body: undefined }, 'id'],
      [{ method: 'PATCH', path: '/api/admin/users/a%00b', headers: { ...admin, ...json }, body: Buffer.from('{"disabled":true}') }, 'path'],
      [
        {
          method: 'POST',
          path: '/api/admin/users',
          headers: { ...admin, ...json },
          body: Buffer.from('{"email":"a\\u0000@example.com","password":"long enough pass","roles":["user"]}'),
        },
        'email',
      ],
      [
        {
          method: 'POST',
          path: '/api/admin/feature-flags/priority_2_1_saga_pattern',
          headers: { ...admin, ...json },
          body: Buffer.from('{"description":"x\\u0000y"}'),
        },
        'description',
      ],
      [{ method: 'GET', path: '/api/admin/feature-flags/priority_2_1_saga_pattern/status?userId=%00', headers: admin, body: undefined }, 'userId'],
      ...['__proto__', 'constructor', 'toString'].map((w): [Sent, string] => [
        { method: 'GET', path: `/api/admin/metrics/errors?window=${w}`, headers: admin, body: undefined },
        'window',
      ]),
    ];
    for (const [sent, field] of cases) {
      const res = await send(sent);
      expect([res.status, JSON.parse(res.text).field], `${sent.method} ${sent.path}`).toEqual([400, field]);
      expect(res.text).not.toMatch(DRIVER_TEXT);
    }
    expect(await snapshot()).toBe(before);
  });

  it('keeps http_route to the route templates whatever URLs were sent', async () => {
    for (let i = 0; i < 200; i++) {
      const cased = [...'/api/health/pool-stats'].map((c, k) => ((i >> (k % 12)) & 1 ? c.toUpperCase() : c)).join('');
      await send({ method: 'GET', path: cased, headers: {}, body: undefined });
      await send({ method: 'GET', path: `/nowhere/${i}`, headers: {}, body: undefined });
    }
    const metrics = await send({ method: 'GET', path: '/metrics', headers: {}, body: undefined });
    const labels = new Set([...metrics.text.matchAll(/http_route="([^"]*)"/g)].map((m) => m[1]));
    const templates = new Set([...ROUTES.map((r) => r.split(' ')[1]), '(unmatched)']);
    expect([...labels].filter((label) => !templates.has(label))).toEqual([]);
    expect(labels.size).toBeLessThanOrEqual(templates.size);
  });
});
