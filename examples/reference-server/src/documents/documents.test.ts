/**
 * Uploads and deletes in-process, on both databases: the routes over a memory Drive, the real
 * document table, search store and saga runner, with faults injected into Drive, the table, the
 * embedder and the index. After every failure `checkDrive` must find nothing orphaned and the
 * document must not be searchable.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { metrics } from '@opentelemetry/api';
import express from 'express';
import pino from 'pino';
import { Registry } from 'prom-client';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AikbError, UnavailableError, type Principal } from '@aikb/core';
import type { SessionVerifier, VerifiedSession } from '@aikb/core/auth';
import { ensureVectorExtension, migrate } from '@aikb/core/db';
import { createMemoryDriveStore, type DriveStore } from '@aikb/core/drive';
import { createMemorySagaLog, createPostgresSagaLog, createSagaRunner } from '@aikb/core/saga';
import { createFeatureFlagClient, createMemoryFlagStore, type FeatureFlagClient } from '@aikb/core/flags';
import { createStatusRegistry } from '@aikb/core/health';
import { createErrorMetrics, type ErrorMetrics } from '@aikb/core/metrics';
import { createHashingEmbedder, createPostgresSearchStore, searchStoreMigrations, type Embedder, type SearchStore } from '@aikb/core/search';
import { errorHandler, httpMetrics, notFound, requestLogging, requireUser } from '@aikb/express';
import { createPrometheusMeterProvider } from '@aikb/prometheus';
import { describeEachDatabase, until } from '@aikb/test-support';
import type { Infrastructure } from '../infrastructure';
import type { PinoLogger } from '../logger';
import { serverMigrations } from '../migrations';
import { sagaSubsystem, type SagaSubsystem } from '../subsystems/saga';
import { createPostgresDocumentFileStore, type DocumentFileStore } from './document-store';
import { checkDrive } from './drive-check';
import { documentRoutes } from './routes';
import { SAGA_FLAG, createDocumentService, idempotentIds, type DocumentService } from './service';
import { makeImageOnlyPdf, makeTextPdf } from '../../test/pdf-fixtures';

const MAX_BYTES = 64 * 1024;
const MARKDOWN = Buffer.from('# Quarterly plan\n\nThe widget team ships the sprocket integration in March.\n');

const USERS: Record<string, Principal> = {
  alice: { userId: 'alice', roles: ['user', 'eng'] },
  bob: { userId: 'bob', roles: ['user', 'eng'] },
  carol: { userId: 'carol', roles: ['user'] },
  root: { userId: 'root', roles: ['admin'] },
};

/** Any token names its user. */
const sessions = {
  verify: (token: string) => {
    const principal = USERS[token];
    if (!principal) return Promise.reject(new AikbError('UNAUTHENTICATED', 'unknown token'));
    return Promise.resolve({ principal } as unknown as VerifiedSession);
  },
  invalidate: () => undefined,
} as unknown as SessionVerifier;

/** The document routes as the server mounts them under `/api`: the user check first, then the routes. */
const documentsRouter = (service: DocumentService) =>
  express
    .Router()
    .use('/documents', requireUser({ sessions }))
    .use(documentRoutes({ service, maxBytes: MAX_BYTES }));

/** Faults by `object.method`: a function run before the real call (it throws, or hangs). */
type Faults = Map<string, () => unknown>;

function faulty<T extends object>(name: string, target: T, faults: Faults): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        await faults.get(`${name}.${String(property)}`)?.();
        return (value as (...a: unknown[]) => unknown).apply(object, args);
      };
    },
  });
}

const outage = (what: string) => () => {
  throw new UnavailableError(`${what} is down (injected)`);
};
const hang = () => new Promise<never>(() => undefined);

describeEachDatabase('document uploads', (db) => {
  const faults: Faults = new Map();
  let lines: Array<Record<string, unknown>>;
  let drive: DriveStore;
  let files: DocumentFileStore;
  let search: SearchStore;
  let realSearch: SearchStore;
  let sagas: SagaSubsystem;
  let flags: FeatureFlagClient;
  let service: DocumentService;
  let errors: ErrorMetrics;
  let registry: Registry;
  let app: express.Express;

  /**
   * Runs `fn` against `app` listening on a port of its own, then closes it; `bytesRead()` is what
   * the server has read off its sockets so far, whatever the kernel buffered on the way.
   */
  async function onOwnPort<T>(fn: (port: number, bytesRead: () => number) => Promise<T>): Promise<T> {
    const server = app.listen(0);
    const sockets: Socket[] = [];
    server.on('connection', (socket) => void sockets.push(socket));
    try {
      return await fn((server.address() as AddressInfo).port, () => sockets.reduce((sum, socket) => sum + socket.bytesRead, 0));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  beforeAll(async () => {
    const { pool } = db();
    await migrate(pool, serverMigrations);
    await ensureVectorExtension(pool);
    await migrate(pool, searchStoreMigrations({ dimensions: 256 }));
    lines = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }) as unknown as PinoLogger;
    registry = new Registry();
    const meter = createPrometheusMeterProvider({ registry }).getMeter('documents-test');
    const hashing = createHashingEmbedder({ dimensions: 256 });
    const embedder: Embedder = faulty('embedder', hashing, faults);
    realSearch = createPostgresSearchStore({ pool, embedder });
    await realSearch.start();
    search = faulty('search', realSearch, faults);
    drive = faulty('drive', createMemoryDriveStore({ maxTotalBytes: 4 * MAX_BYTES }), faults);
    files = faulty('files', createPostgresDocumentFileStore({ pool }), faults);
    const infra = { db: db(), migrated: Promise.resolve() } as unknown as Infrastructure;
    ({ sagas } = await sagaSubsystem.start({ config: { sagaLeaseMs: 30_000 }, logger, infra, status: createStatusRegistry(), meter }));
    errors = createErrorMetrics();
    sagas.reportErrorsTo(errors);
    flags = createFeatureFlagClient({ store: createMemoryFlagStore() });
    await flags.start();
    await flags.putFlag(SAGA_FLAG, { enabled: true, rolloutPercentage: 100 });
    service = createDocumentService({
      drive,
      files,
      search,
      runner: sagas.runner,
      register: (definition, options) => sagas.register(definition, options),
      flags,
      meter,
      logger,
      maxBytes: MAX_BYTES,
      driveTimeoutMs: 10_000,
      // Short, for the steps made to hang; long enough for a PDF's first parse on a loaded
      // machine (500 ms timed one out once, with a benchmark running beside the tests).
      stepTimeoutMs: 2000,
      searchUnavailable: () => undefined,
    });
    app = express();
    app.use(requestLogging({ logger }), httpMetrics({ meter, errorMetrics: errors }));
    app.use('/api', documentsRouter(service));
    app.use(notFound());
    app.use(errorHandler({ logger }));
  });
  afterAll(async () => {
    await sagas?.runner.close({ drainMs: 1000 });
    await flags?.close();
  });
  beforeEach(async () => {
    faults.clear();
    lines.length = 0;
    await flags.putFlag(SAGA_FLAG, { enabled: true, rolloutPercentage: 100 });
  });

  const upload = (
    user: string,
    {
      title = 'Quarterly plan',
      acl,
      file = MARKDOWN,
      filename = 'plan.md',
      key,
    }: { title?: string; acl?: string; file?: Buffer; filename?: string; key?: string } = {},
  ) => {
    let req = request(app).post('/api/documents/upload').set('Authorization', `Bearer ${user}`);
    if (key !== undefined) req = req.set('Idempotency-Key', key);
    req = req.field('title', title);
    if (acl !== undefined) req = req.field('acl', acl);
    return req.attach('file', file, { filename, contentType: 'text/markdown' });
  };
  /** Whether the index holds the document at all, whoever may read it. */
  const searchable = async (id: string) => (await db().pool.query('SELECT 1 FROM aikb_search_documents WHERE id = $1', [id])).rows.length > 0;
  const expectClean = async () => {
    const check = await checkDrive({ drive, pool: db().pool });
    expect({ ...check.counts, inFlight: check.inFlight.length }).toEqual({
      filesWithoutRows: 0,
      rowsWithoutFiles: 0,
      indexedWithoutRows: 0,
      rowsNotIndexed: 0,
      needOperator: 0,
      inFlight: 0,
    });
    return check;
  };

  describe('POST /api/documents/upload', () => {
    it('stores, rows and indexes a Markdown file, answering 201 with the saga id', async () => {
      const res = await upload('alice');
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ title: 'Quarterly plan', chunks: 1, bytes: MARKDOWN.length, contentType: 'text/markdown', sagaId: expect.any(String) });
      const found = await realSearch.search({ principal: USERS.alice!, query: 'sprocket integration' });
      expect(found.results.map((r) => r.documentId)).toContain(res.body.id);
      // Only the uploader by default.
      expect(await realSearch.getDocument(USERS.bob!, res.body.id as string)).toBeUndefined();
      expect(await files.get(res.body.id as string)).toMatchObject({ ownerId: 'alice', acl: ['user:alice'], sagaId: res.body.sagaId });
      await expectClean();
    });

    it.each([
      ['a missing title', (r: request.Test) => r.attach('file', MARKDOWN, 'a.md'), 'title'],
      ['an acl that is not JSON', (r: request.Test) => r.field('title', 't').field('acl', '[user:alice').attach('file', MARKDOWN, 'a.md'), 'acl'],
      ['an acl entry that is no principal', (r: request.Test) => r.field('title', 't').field('acl', '["everyone"]').attach('file', MARKDOWN, 'a.md'), 'acl'],
      ['the file before the fields', (r: request.Test) => r.attach('file', MARKDOWN, 'a.md').field('title', 't'), 'title'],
      ['no file', (r: request.Test) => r.field('title', 't'), 'file'],
      ['two files', (r: request.Test) => r.field('title', 't').attach('file', MARKDOWN, 'a.md').attach('file', MARKDOWN, 'b.md'), 'file'],
      ['an unknown field', (r: request.Test) => r.field('title', 't').field('owner', 'bob').attach('file', MARKDOWN, 'a.md'), 'owner'],
      ['an empty file', (r: request.Test) => r.field('title', 't').attach('file', Buffer.alloc(0), 'a.md'), 'file'],
    ])('answers 400 naming the field for %s, writing nothing', async (_what, build, field) => {
      const before = (await drive.list('documents/')).items;
      const res = await build(request(app).post('/api/documents/upload').set('Authorization', 'Bearer alice'));
      expect(res.status).toBe(400);
      expect(res.type).toBe('application/problem+json');
      expect(res.body.field).toBe(field);
      await expectClean();
      expect((await drive.list('documents/')).items).toEqual(before);
    });

    it('refuses a principal the uploader may not grant with 403 naming it; admins may grant anything', async () => {
      for (const acl of ['["public"]', '["user:bob"]', '["role:admin"]']) {
        const res = await upload('alice', { acl });
        expect(res.status).toBe(403);
        expect(res.body).toMatchObject({ field: 'acl', principal: JSON.parse(acl)[0] });
      }
      expect((await upload('alice', { acl: '["user:alice","role:eng"]' })).status).toBe(201);
      const admin = await upload('root', { acl: '["public"]' });
      expect(admin.status).toBe(201);
      expect(await realSearch.getDocument(USERS.carol!, admin.body.id as string)).toBeDefined();
      await expectClean();
    });

    it('answers 415 for a binary file and 422 for a file without text, undone by the saga', async () => {
      const binary = await upload('alice', { file: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1, 2, 3]), filename: 'x.png' });
      expect(binary.status).toBe(415);
      expect(binary.body).toMatchObject({ field: 'file', undone: true, sagaId: expect.any(String) });
      const blank = await upload('alice', { file: Buffer.from('   \n\n  ') });
      expect(blank.status).toBe(422);
      expect((await sagas.runner.get(blank.body.sagaId as string))?.state).toBe('compensated');
      await expectClean();
    });

    it('indexes the text of an HTML page and of a PDF, sniffed from the content whatever the name says', async () => {
      const html = Buffer.from(
        '<!DOCTYPE html><html><head><title>Pool tuning</title><script>var hidden = "zeppelin";</script></head>' +
          '<body><h1>Connection pools</h1><p>Raise &amp; monitor the gearbox limit.</p></body></html>',
      );
      const page = await upload('alice', { title: 'Pool page', file: html, filename: 'notes.txt' });
      expect(page.status).toBe(201);
      expect(page.body).toMatchObject({ contentType: 'text/html', bytes: html.length });
      const words = await realSearch.search({ principal: USERS.alice!, query: 'gearbox', mode: 'text' });
      expect(words.results.map((r) => r.documentId)).toContain(page.body.id);
      // Script text is markup, not content: it is not indexed.
      expect((await realSearch.search({ principal: USERS.alice!, query: 'zeppelin', mode: 'text' })).results).toEqual([]);

      const pdf = makeTextPdf(['Escalation policy for the turbine fleet'], ['Second page about flywheels']);
      const paper = await upload('alice', { title: 'Policy', file: pdf, filename: 'policy.md' });
      expect(paper.status).toBe(201);
      expect(paper.body).toMatchObject({ contentType: 'application/pdf', bytes: pdf.length });
      for (const word of ['turbine', 'flywheels']) {
        const found = await realSearch.search({ principal: USERS.alice!, query: word, mode: 'text' });
        expect(found.results.map((r) => r.documentId)).toContain(paper.body.id);
      }
      await expectClean();
    });

    it('answers 422 for a PDF without a text layer, saying so, and keeps nothing', async () => {
      const before = (await drive.list('documents/')).items;
      const scanned = await upload('alice', { title: 'Scan', file: makeImageOnlyPdf(), filename: 'scan.pdf' });
      expect(scanned.status).toBe(422);
      expect(scanned.type).toBe('application/problem+json');
      expect(scanned.body).toMatchObject({ field: 'file', undone: true });
      expect(scanned.body.detail).toMatch(/text layer/);
      expect((await sagas.runner.get(scanned.body.sagaId as string))?.state).toBe('compensated');
      expect((await drive.list('documents/')).items).toEqual(before);
      await expectClean();
    });

    it('cuts a file over the limit off with 413 while it streams, without reading the client to the end', async () => {
      await onOwnPort(async (port, bytesRead) => {
        // Far more than socket buffers hold: a server that read it all would let the client send it all.
        const total = 1024 * MAX_BYTES;
        let serverRead = 0;
        const answer = await new Promise<{ status: number; body: string; sent: number }>((resolve, reject) => {
          const boundary = 'b0undary';
          const req = httpRequest({
            port,
            method: 'POST',
            path: '/api/documents/upload',
            headers: { authorization: 'Bearer alice', 'content-type': `multipart/form-data; boundary=${boundary}` },
          });
          let sent = 0;
          let answered = false;
          req.on('response', (res) => {
            answered = true;
            serverRead = bytesRead();
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body, sent }));
          });
          req.on('error', (error) => (answered ? undefined : reject(error)));
          req.write(`--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nBig\r\n`);
          req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n`);
          const chunk = Buffer.alloc(16 * 1024, 'a');
          const pump = () => {
            while (!answered && sent < total) {
              sent += chunk.length;
              if (!req.write(chunk)) return void req.once('drain', pump);
            }
            if (!answered) req.end(`\r\n--${boundary}--\r\n`);
          };
          pump();
        });
        expect(answer.status).toBe(413);
        expect(JSON.parse(answer.body)).toMatchObject({ field: 'file', limit: MAX_BYTES, undone: true });
        expect(answer.sent).toBeLessThan(total);
        expect(serverRead).toBeLessThan(16 * MAX_BYTES);
      });

      await expectClean();
    });

    it('answers a declared length over the limit with 413 before reading anything, whatever the content type', async () => {
      await onOwnPort(async (port, bytesRead) => {
        for (const type of ['text/plain', 'multipart/form-data; boundary=b0undary', 'application/octet-stream']) {
          const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
            const req = httpRequest({
              port,
              method: 'POST',
              path: '/api/documents/upload',
              headers: { authorization: 'Bearer alice', 'content-type': type, 'content-length': String(1024 * MAX_BYTES) },
            });
            req.on('response', (res) => {
              let body = '';
              res.on('data', (chunk: Buffer) => (body += chunk.toString()));
              res.on('end', () => resolve({ status: res.statusCode!, body }));
            });
            req.on('error', reject);
            req.write(Buffer.alloc(1024, 'a'));
          });
          expect(answer.status, type).toBe(413);
          expect(JSON.parse(answer.body)).toMatchObject({ field: 'body', limit: MAX_BYTES });
        }
        // Headers and at most the first written chunk: nothing of a body was asked for.
        expect(bytesRead()).toBeLessThan(3 * 4096);
      });
      await expectClean();
    });

    it('answers a refused small upload while its client is still sending, reading the rest, so the client gets the 403 and keeps the connection', async () => {
      const server = app.listen(0);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const { port } = server.address() as AddressInfo;
        const boundary = 'b0undary';
        const head = Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nT\r\n` +
            `--${boundary}\r\nContent-Disposition: form-data; name="acl"\r\n\r\n["public"]\r\n` +
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.md"\r\n\r\n# a`,
        );
        const tail = Buffer.concat([Buffer.alloc(32 * 1024, 'a'), Buffer.from(`\r\n--${boundary}--\r\n`)]);
        const answer = await new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
          const req = httpRequest({
            port,
            agent,
            method: 'POST',
            path: '/api/documents/upload',
            headers: {
              authorization: 'Bearer alice',
              'content-type': `multipart/form-data; boundary=${boundary}`,
              'content-length': String(head.length + tail.length),
            },
          });
          req.on('error', reject);
          // The rest of the body only once the answer is in: a server that closed would fail this write.
          req.on('response', (res) => {
            let body = '';
            let ended = false;
            let sent = false;
            const done = () => ended && sent && resolve({ status: res.statusCode!, connection: res.headers.connection, body });
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => ((ended = true), done()));
            req.end(tail, () => ((sent = true), done()));
          });
          req.write(head);
        });
        expect(answer.status).toBe(403);
        expect(answer.connection).not.toBe('close');
        expect(JSON.parse(answer.body)).toMatchObject({ field: 'acl', principal: 'public' });
        // The same connection serves the next request.
        const next = await new Promise<number>((resolve, reject) =>
          httpRequest({ port, agent, method: 'DELETE', path: '/api/documents/missing', headers: { authorization: 'Bearer alice' } }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          })
            .on('error', reject)
            .end(),
        );
        expect(next).toBe(404);
      } finally {
        agent.destroy();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      await expectClean();
    });

    it('replays a completed upload for the same Idempotency-Key, refuses the key with another title, and 400s a bad key', async () => {
      const first = await upload('alice', { key: 'retry-1' });
      expect(first.status).toBe(201);
      const again = await upload('alice', { key: 'retry-1' });
      expect(again.status).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(first.body.id).toBe(idempotentIds('alice', 'retry-1').documentId);
      // Another user's same key is another upload.
      const other = await upload('bob', { key: 'retry-1' });
      expect(other.body.id).not.toBe(first.body.id);
      const changed = await upload('alice', { key: 'retry-1', title: 'Another title' });
      expect(changed.status).toBe(422);
      expect(changed.body).toMatchObject({ field: 'Idempotency-Key', detail: expect.stringMatching(/reused with a different request/) });
      const bad = await request(app)
        .post('/api/documents/upload')
        .set('Authorization', 'Bearer alice')
        .set('Idempotency-Key', 'é'.repeat(3))
        .field('title', 't')
        .attach('file', MARKDOWN, 'a.md');
      expect(bad.status).toBe(400);
      expect(bad.body.field).toBe('Idempotency-Key');
      await expectClean();
    });

    it('answers 409 with Retry-After to the same key while its first upload still runs', async () => {
      let entered = false;
      let release = () => undefined as void;
      faults.set('drive.put', () => {
        entered = true;
        return new Promise<void>((resolve) => (release = resolve));
      });
      const first = upload('alice', { key: 'concurrent-1' }).then((res) => res);
      await until(() => entered, 'the first upload reached Drive');
      const second = await upload('alice', { key: 'concurrent-1' });
      expect(second.status).toBe(409);
      expect(second.headers['retry-after']).toBe('5');
      expect(second.body).toMatchObject({ field: 'Idempotency-Key', detail: expect.stringMatching(/still in progress/) });
      release();
      faults.clear();
      expect((await first).status).toBe(201);
      await expectClean();
    });

    it('answers a retry of an undone upload with the same key: undone, upload again with a new key', async () => {
      faults.set('search.indexDocument', outage('the index'));
      expect((await upload('alice', { key: 'undone-1' })).status).toBe(503);
      faults.clear();
      const retry = await upload('alice', { key: 'undone-1' });
      expect(retry.status).toBe(409);
      expect(retry.body.detail).toMatch(/undone.*new Idempotency-Key/);
      // The server-side cause stays in the saga log.
      expect(retry.body.detail).not.toMatch(/injected/);
      await expectClean();
    });

    describe('undoes every step when a later one fails', () => {
      it.each<[string, string, () => unknown, number]>([
        ['Drive is unwritable', 'drive.put', outage('Drive'), 503],
        ['the document table is down', 'files.insert', outage('the database'), 503],
        ['Drive cannot be read back', 'drive.get', outage('Drive'), 503],
        ['the embedder fails', 'embedder.embed', outage('the embedder'), 503],
        ['the index is down', 'search.indexDocument', outage('the index'), 503],
        ['the index times out', 'search.indexDocument', hang, 504],
        ['the row times out', 'files.insert', hang, 504],
      ])('%s', async (_what, where, fault, status) => {
        faults.set(where, fault);
        const res = await upload('alice', { acl: '["role:eng"]' });
        expect(res.status).toBe(status);
        expect(res.type).toBe('application/problem+json');
        expect(res.body).toMatchObject({ undone: true, sagaId: expect.any(String), detail: expect.stringMatching(/undone; nothing was stored/) });
        faults.clear();
        expect((await sagas.runner.get(res.body.sagaId as string))?.state).toBe('compensated');
        const id = ((await sagas.runner.get(res.body.sagaId as string))?.input as { documentId: string }).documentId;
        expect(await searchable(id)).toBe(false);
        await expectClean();
      });

      it('Drive is full', async () => {
        const res = await upload('alice', { file: Buffer.alloc(MAX_BYTES - 10, 'x'), filename: 'a.txt' });
        expect(res.status).toBe(201);
        const full = await upload('alice', { file: Buffer.alloc(MAX_BYTES - 10, 'y'), filename: 'b.txt' });
        const fuller = await upload('alice', { file: Buffer.alloc(MAX_BYTES - 10, 'z'), filename: 'c.txt' });
        const last = await upload('alice', { file: Buffer.alloc(MAX_BYTES - 10, 'w'), filename: 'd.txt' });
        const statuses = [full.status, fuller.status, last.status];
        expect(statuses).toContain(503);
        await expectClean();
        for (const id of [res.body.id, full.body.id, fuller.body.id].filter(Boolean)) await service.delete(USERS.alice!, id as string);
        await expectClean();
      });
    });

    it('logs the runbook line and counts SagaCompensationError under the route when an undo fails', async () => {
      faults.set('search.indexDocument', outage('the index'));
      faults.set('drive.delete', outage('Drive'));
      const res = await upload('alice');
      expect(res.status).toBe(500);
      expect(res.body).toMatchObject({ sagaId: expect.any(String), step: 'drive', sagaName: 'document_upload' });
      const line = lines.find((l) => l.error === 'SagaCompensationError');
      expect(line).toMatchObject({
        level: 50,
        requestId: expect.stringMatching(/^req-/),
        endpoint: '/api/documents/upload',
        message: 'Failed to delete file from Drive',
        sagaId: res.body.sagaId,
      });
      const report = errors.report('5m').errors.find((e) => e.endpoint === '/api/documents/upload');
      expect(report?.topErrors).toContainEqual(expect.objectContaining({ type: 'SagaCompensationError', message: 'Failed to delete file from Drive' }));
      // Not clean until an operator retries the undo.
      const check = await checkDrive({ drive, pool: db().pool });
      expect(check.counts.needOperator).toBe(1);
      expect(check.clean).toBe(false);
      faults.clear();
      expect((await sagas.runner.retry(res.body.sagaId as string)).state).toBe('compensated');
      await expectClean();
      expect(await registry.metrics()).toMatch(/^aikb_documents_uploads_total\{outcome="compensation_failed",path="saga"\} [1-9]/m);
    });
  });

  describe('with priority_2_1_saga_pattern off', () => {
    beforeEach(() => flags.putFlag(SAGA_FLAG, { enabled: false, rolloutPercentage: 0 }));

    it('uploads directly, without a saga', async () => {
      const res = await upload('alice');
      expect(res.status).toBe(201);
      expect(res.body.sagaId).toBeNull();
      expect(await searchable(res.body.id as string)).toBe(true);
      await expectClean();
    });

    it('still changes nothing on bad input (415, 422)', async () => {
      expect((await upload('alice', { file: Buffer.from([0, 1, 2, 3]) })).status).toBe(415);
      expect((await upload('alice', { file: Buffer.from('  \n') })).status).toBe(422);
      await expectClean();
    });

    it('leaves what it wrote when the index or the table is down, and counts it; drive check finds exactly those', async () => {
      const before = service.stats().orphans;
      faults.set('search.indexDocument', outage('the index'));
      const indexDown = await upload('alice');
      expect(indexDown.status).toBe(503);
      faults.clear();
      faults.set('files.insert', outage('the database'));
      const tableDown = await upload('alice');
      expect(tableDown.status).toBe(503);
      faults.clear();
      expect(service.stats().orphans).toEqual({ drive_file: before.drive_file + 2, document_row: before.document_row + 1 });
      const metrics = await registry.metrics();
      expect(metrics).toMatch(/^aikb_documents_orphans_total\{resource="drive_file"\} [1-9]/m);
      const check = await checkDrive({ drive, pool: db().pool });
      expect(check.rowsNotIndexed).toHaveLength(1);
      expect(check.filesWithoutRows).toHaveLength(1);
      expect(check.counts).toMatchObject({ rowsWithoutFiles: 0, indexedWithoutRows: 0 });
      // Clean up by hand, as an operator would with the list.
      const rowId = check.rowsNotIndexed[0]!;
      await files.delete(rowId);
      await drive.delete(`documents/${rowId}`);
      await drive.delete(check.filesWithoutRows[0]!);
      await expectClean();
    });
  });

  describe('DELETE /api/documents/:id', () => {
    it('lets the owner and an admin delete; 403 for a reader, 404 for anyone else and for a missing one', async () => {
      const shared = await upload('alice', { acl: '["user:alice","role:eng"]' });
      const id = shared.body.id as string;
      expect((await request(app).delete(`/api/documents/${id}`).set('Authorization', 'Bearer bob')).status).toBe(403);
      expect((await request(app).delete(`/api/documents/${id}`).set('Authorization', 'Bearer carol')).status).toBe(404);
      expect((await request(app).delete(`/api/documents/${id}`).set('Authorization', 'Bearer alice')).status).toBe(204);
      expect(await searchable(id)).toBe(false);
      expect((await request(app).delete(`/api/documents/${id}`).set('Authorization', 'Bearer alice')).status).toBe(404);
      const other = await upload('alice');
      expect((await request(app).delete(`/api/documents/${other.body.id}`).set('Authorization', 'Bearer root')).status).toBe(204);
      await expectClean();
      expect(await drive.exists(`documents/${id}`)).toBe(false);
    });

    it('finishes a delete whose process died after deleting the row, deleting the file too (recovery: resume)', async () => {
      const res = await upload('alice');
      const id = res.body.id as string;
      // What a killed instance left: the index entry and the row gone, the row step never logged.
      await realSearch.deleteDocument(id);
      await files.delete(id);
      const log = createPostgresSagaLog({ pool: db().pool });
      const lease = { owner: 'killed-instance', nowMs: Date.now() - 60_000, leaseExpiresAtMs: Date.now() - 30_000 };
      const sagaId = randomUUID();
      await log.create({
        id: sagaId,
        name: 'document_delete',
        version: 1,
        idempotencyKey: null,
        policy: 'resume',
        input: { documentId: id },
        ...lease,
        firstStep: 'index',
      });
      await log.finishStep(sagaId, { ...lease, index: 0, phase: 'action', status: 'succeeded', output: { removed: true } });
      await log.startStep(sagaId, { ...lease, index: 1, name: 'rows', phase: 'action' });
      expect(await drive.exists(`documents/${id}`)).toBe(true);
      await sagas.runner.recover();
      expect(await sagas.runner.get(sagaId)).toMatchObject({ state: 'completed', recoveries: 1 });
      expect(await drive.exists(`documents/${id}`)).toBe(false);
      await expectClean();
    });

    it('puts the document back when Drive cannot delete its file, so it stays searchable with its file', async () => {
      const res = await upload('alice');
      const id = res.body.id as string;
      faults.set('drive.delete', outage('Drive'));
      const failed = await request(app).delete(`/api/documents/${id}`).set('Authorization', 'Bearer alice');
      expect(failed.status).toBe(503);
      expect(await searchable(id)).toBe(true);
      expect(await files.get(id)).toBeDefined();
      faults.clear();
      await expectClean();
      expect((await request(app).delete(`/api/documents/${id}`).set('Authorization', 'Bearer alice')).status).toBe(204);
      await expectClean();
    });
  });
});

describe('document uploads while search is unavailable (no pgvector)', () => {
  it('answers 503 before reading the file, writing nothing', async () => {
    const drive = createMemoryDriveStore();
    const runner = createSagaRunner({ log: createMemorySagaLog(), recoveryIntervalMs: 0 });
    const flags = createFeatureFlagClient({ store: createMemoryFlagStore() });
    const service = createDocumentService({
      drive,
      files: {
        insert: () => Promise.reject(new Error('not reached')),
        get: () => Promise.resolve(undefined),
        delete: () => Promise.resolve(false),
        listKeys: () => Promise.resolve([]),
      },
      search: {} as SearchStore,
      runner,
      register: (definition) => runner.register(definition),
      flags,
      meter: metrics.getMeter('documents-test'),
      logger: pino({ level: 'silent' }),
      maxBytes: MAX_BYTES,
      driveTimeoutMs: 10_000,
      searchUnavailable: () => 'search is unavailable: this PostgreSQL server has no pgvector extension',
    });
    const app = express();
    app.use('/api', documentsRouter(service));
    app.use(errorHandler());
    try {
      const res = await request(app).post('/api/documents/upload').set('Authorization', 'Bearer alice').field('title', 't').attach('file', MARKDOWN, 'a.md');
      expect(res.status).toBe(503);
      expect(res.type).toBe('application/problem+json');
      expect((await drive.list('')).items).toEqual([]);
      expect((await runner.list()).items).toEqual([]);
      expect(service.stats().uploads.saga.rejected).toBe(1);
    } finally {
      await runner.close();
      await flags.close();
    }
  });
});
