import express from 'express';
import request from 'supertest';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Principal } from '@aikb/core';
import { ensureVectorExtension, migrate } from '@aikb/core/db';
import { createHashingEmbedder, createPostgresSearchStore, searchStoreMigrations, type SearchStore } from '@aikb/core/search';
import { createRecordingLogger, describeEachDatabase, servicesRequired } from '@aikb/test-support';
import { errorHandler } from './error-handler';
import { searchAdminRouter, searchIndexAdminRouter, searchRouter } from './search-router';

const D = 32;
const USERS: Record<string, Principal> = {
  alice: { userId: 'alice', roles: ['engineering'] },
  bob: { userId: 'bob', roles: ['sales'] },
};

describeEachDatabase('searchRouter', (db, backend) => {
  let available = true;
  let search: SearchStore;
  const flags = { validation: true, rbac: true };

  beforeAll(async () => {
    const support = await ensureVectorExtension(db().pool);
    if (!support.available) {
      if (backend === 'pglite' || servicesRequired) throw new Error(`pgvector is required: ${support.reason}`);
      available = false;
      return;
    }
    await migrate(db().pool, searchStoreMigrations({ dimensions: D }));
  });
  beforeEach(async (context) => {
    if (!available) context.skip();
    await db().pool.query('TRUNCATE aikb_search_chunks, aikb_search_acl, aikb_search_principal_chunks, aikb_search_documents');
    search = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }) });
    flags.validation = true;
    flags.rbac = true;
    await search.indexDocument({ id: 'pool', title: 'Pool runbook', text: 'The connection pool is exhausted.', acl: ['role:engineering'] });
    await search.indexDocument({ id: 'pricing', title: 'Pricing', text: 'Enterprise pricing and discounts.', acl: ['role:sales'] });
  });

  /** `x-user` stands in for user authentication. */
  const app = () =>
    express()
      .use(
        '/api',
        searchRouter({
          search,
          principal: (req) => USERS[req.get('x-user') ?? ''],
          vectorValidation: () => flags.validation,
          rbacFiltering: () => flags.rbac,
        }),
      )
      .use('/api/admin/documents', searchAdminRouter({ search }))
      .use(errorHandler());

  async function rowCounts() {
    const { rows } = await db().pool.query<{ d: number; c: number }>(
      'SELECT (SELECT count(*)::int FROM aikb_search_documents) AS d, (SELECT count(*)::int FROM aikb_search_chunks) AS c',
    );
    return rows[0];
  }

  it('indexes through the admin route and answers searches with only what the caller may read', async () => {
    const created = await request(app())
      .post('/api/admin/documents')
      .send({ title: 'Leak hunt', text: 'Find the connection leak in the pool.', acl: ['user:bob'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ chunks: 1, outcome: 'created', id: expect.any(String) as string });

    const bob = await request(app()).post('/api/search').set('x-user', 'bob').send({ query: 'connection pool', k: 10 });
    expect(bob.status).toBe(200);
    expect(bob.body).toMatchObject({ complete: true, mode: 'hybrid', strategy: 'exact' });
    expect(bob.body.tookMs).toEqual(expect.any(Number));
    expect(bob.body.results.map((r: { documentId: string }) => r.documentId).sort()).toEqual([created.body.id, 'pricing'].sort());

    const listed = await request(app()).get('/api/documents?limit=1').set('x-user', 'alice');
    expect(listed.body.documents.map((d: { id: string }) => d.id)).toEqual(['pool']);
    expect(listed.body.nextCursor).toBeUndefined();
  });

  it('answers 404, never 403, for a document the caller may not read, exactly as for one that does not exist', async () => {
    const hidden = await request(app()).get('/api/documents/pricing').set('x-user', 'alice');
    const missing = await request(app()).get('/api/documents/nothing-here').set('x-user', 'alice');
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect({ ...hidden.body, instance: undefined }).toEqual({ ...missing.body, instance: undefined });
    expect((await request(app()).get('/api/documents/pricing').set('x-user', 'bob')).body).toMatchObject({ id: 'pricing', title: 'Pricing' });
  });

  it('answers 401 without a caller, and 400 for an unknown field', async () => {
    expect((await request(app()).post('/api/search').send({ query: 'x' })).status).toBe(401);
    const unknown = await request(app())
      .post('/api/search')
      .set('x-user', 'alice')
      .send({ query: 'x', principal: { userId: 'bob', roles: ['sales'] } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.field).toBe('principal');
  });

  const vectorOf = (fill: string) => `[${Array.from({ length: D }, (_, i) => (i === 0 ? fill : '0.5')).join(',')}]`;
  const hostile: [string, string, string][] = [
    ['NaN as a string', `{"vector": ${vectorOf('"NaN"')}}`, 'not_a_number'],
    ['Infinity as a string', `{"vector": ${vectorOf('"Infinity"')}}`, 'not_a_number'],
    ['1e999', `{"vector": ${vectorOf('1e999')}}`, 'not_finite'],
    ['a wrong dimension', '{"vector": [0.1, 0.2, 0.3]}', 'wrong_dimension'],
    ['an empty array', '{"vector": []}', 'wrong_dimension'],
    ['100 000 elements', `{"vector": [${Array.from({ length: 100_000 }, () => '0.5').join(',')}]}`, 'wrong_dimension'],
    ['nested arrays', `{"vector": [${Array.from({ length: D }, () => '[0.5]').join(',')}]}`, 'not_a_number'],
    ['a string vector', '{"vector": "0.5,0.5"}', 'not_an_array'],
    ['k of 0', '{"query": "pool", "k": 0}', 'bad_k'],
    ['k of -1', '{"query": "pool", "k": -1}', 'bad_k'],
    ['k of 10 000', '{"query": "pool", "k": 10000}', 'bad_k'],
    ['k of "10"', '{"query": "pool", "k": "10"}', 'bad_k'],
    ['a 1 MB query', JSON.stringify({ query: 'pool '.repeat(200_000) }), 'bad_query'],
    ['an unknown mode', '{"query": "pool", "mode": "semantic"}', 'bad_request'],
  ];

  describe.each([true, false])('with priority_1_1_vector_validation %s', (validation) => {
    it.each(hostile)('answers 400 to %s, never 500, and writes nothing', async (_name, body, problem) => {
      flags.validation = validation;
      const before = await rowCounts();
      const response = await request(app()).post('/api/search').set('x-user', 'alice').set('content-type', 'application/json').send(body);
      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
      // Validated in the app, each problem is named; unvalidated, pgvector's refusal is mapped as well as it can be.
      if (validation || problem.startsWith('bad_')) expect(response.body.problem).toBe(problem);
      else expect(response.body).toMatchObject({ field: 'vector', problem: expect.any(String) as string });
      expect(await rowCounts()).toEqual(before);
    });
  });

  it('refuses a zero vector when validation is on, and searches it as it is when off', async () => {
    const zero = { vector: Array.from({ length: D }, () => 0) };
    const on = await request(app()).post('/api/search').set('x-user', 'alice').send(zero);
    expect(on.status).toBe(400);
    expect(on.body).toMatchObject({ field: 'vector', problem: 'zero_vector' });
    flags.validation = false;
    const off = await request(app()).post('/api/search').set('x-user', 'alice').send(zero);
    expect(off.status).toBe(200);
    expect(off.body.results.map((r: { documentId: string }) => r.documentId)).toEqual(['pool']);
  });

  it('filters in the application when priority_2_2_rbac_api_filtering is off, still returning only readable rows', async () => {
    flags.rbac = false;
    const response = await request(app()).post('/api/search').set('x-user', 'alice').send({ query: 'pricing', mode: 'vector', k: 5 });
    expect(response.status).toBe(200);
    expect(response.body.strategy).toBe('overfetch');
    expect(response.body.results.map((r: { documentId: string }) => r.documentId)).toEqual(['pool']);
  });

  it('refuses bad documents on the admin route with a 400 naming the field', async () => {
    const before = await rowCounts();
    for (const [body, field] of [
      [{ title: 't', text: 'x', acl: ['everyone'] }, 'acl[0]'],
      [{ title: 't', text: '', acl: [] }, 'text'],
      [{ title: 't', text: 'x', acl: [], extra: 1 }, 'extra'],
      [[1, 2], 'body'],
    ] as const) {
      const response = await request(app()).post('/api/admin/documents').send(body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.field).toBe(field);
    }
    expect(await rowCounts()).toEqual(before);
    expect(
      (
        await request(app())
          .put('/api/admin/documents/pool/acl')
          .send({ acl: ['user:bob'] })
      ).status,
    ).toBe(204);
    expect((await request(app()).get('/api/documents/pool').set('x-user', 'bob')).status).toBe(200);
    expect((await request(app()).delete('/api/admin/documents/pool')).status).toBe(204);
    expect((await request(app()).delete('/api/admin/documents/pool')).status).toBe(404);
  });

  it('builds, lists and drops principal indexes through the admin route, answering 202 for a build that outlives waitMs', async () => {
    const logger = createRecordingLogger();
    // The real store; with waitMs, one whose builds end 300 ms after the real build (an index of a
    // few chunks builds faster than any timer on PGlite).
    const slow: SearchStore = {
      ...search,
      createPrincipalIndex: async (principal) => {
        const index = await search.createPrincipalIndex(principal);
        await new Promise((resolve) => setTimeout(resolve, 300));
        return index;
      },
    };
    const indexes = (waitMs?: number) =>
      express()
        .use('/api/admin/search/indexes', searchIndexAdminRouter(waitMs === undefined ? { search, logger } : { search: slow, logger, waitMs }))
        .use(errorHandler());
    try {
      const built = await request(indexes()).put('/api/admin/search/indexes/role:engineering');
      expect(built.status).toBe(200);
      expect(built.body).toMatchObject({ principal: 'role:engineering', chunks: 1, ready: true });
      expect((await request(indexes()).put('/api/admin/search/indexes/role:engineering')).body).toEqual(built.body);
      // The answer comes before the build ends; the build goes on and is logged.
      const later = await request(indexes(50)).put(`/api/admin/search/indexes/${encodeURIComponent("role:o'brien sales")}`);
      expect(later.status).toBe(202);
      expect(later.body).toEqual({ principal: "role:o'brien sales", ready: false });
      await expect.poll(() => logger.lines.some((l) => l.msg === 'principal index ready'), { timeout: 10_000 }).toBe(true);
      const listed = await request(indexes()).get('/api/admin/search/indexes');
      expect(listed.body.indexes.map((i: { principal: string; ready: boolean }) => [i.principal, i.ready])).toEqual([
        ['role:engineering', true],
        ["role:o'brien sales", true],
      ]);
      for (const bad of ['admin', 'role:', '%ZZ', `role:${'x'.repeat(201)}`]) {
        const refused = await request(indexes()).put(`/api/admin/search/indexes/${bad}`);
        expect(refused.status, bad).toBe(400);
        expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
        expect(refused.body.field).toBe('principal');
      }
      expect((await request(indexes()).delete('/api/admin/search/indexes/role:engineering')).status).toBe(204);
      expect((await request(indexes()).delete('/api/admin/search/indexes/role:engineering')).status).toBe(404);
    } finally {
      for (const index of await search.listPrincipalIndexes()) await search.dropPrincipalIndex(index.principal);
    }
  });
});

describeEachDatabase('searchIndexAdminRouter: tuning', (db, backend) => {
  let search: SearchStore | undefined;
  beforeAll(async () => {
    const support = await ensureVectorExtension(db().pool);
    if (!support.available) {
      if (backend === 'pglite' || servicesRequired) throw new Error(`pgvector is required: ${support.reason}`);
      return;
    }
    await migrate(db().pool, searchStoreMigrations({ dimensions: D }));
    search = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }) });
    await search.indexDocument({ id: 'pool', title: 'Pool runbook', text: 'The connection pool is exhausted.', acl: ['role:engineering'] });
    await search.indexDocument({ id: 'pricing', title: 'Pricing', text: 'Enterprise pricing and discounts.', acl: ['role:sales'] });
  });

  it('plans with dryRun, tunes, and refuses a bad body with 400 naming the field, changing nothing', async (context) => {
    if (!search) return context.skip();
    const app = express().use('/api/admin/search/indexes', searchIndexAdminRouter({ search })).use(errorHandler());
    const range = { minShare: 0.4, maxShare: 0.6, minChunks: 1 };
    for (const [body, field] of [
      [{ minShare: 2 }, 'minShare'],
      [{ maxShare: '0.5' }, 'maxShare'],
      [{ minShare: 0.6, maxShare: 0.4 }, 'minShare'],
      [{ minChunks: -1 }, 'minChunks'],
      [{ minChunks: 1.5 }, 'minChunks'],
      [{ drop: 'yes' }, 'drop'],
      [{ dryrun: true }, 'dryrun'],
      [[1], 'body'],
    ] as const) {
      const refused = await request(app).post('/api/admin/search/indexes/_tune').send(body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.field).toBe(field);
    }
    const plan = await request(app)
      .post('/api/admin/search/indexes/_tune')
      .send({ ...range, dryRun: true });
    expect(plan.status).toBe(200);
    expect(plan.body).toEqual({ created: ['role:engineering', 'role:sales'], dropped: [], kept: [], skipped: [] });
    expect((await request(app).get('/api/admin/search/indexes')).body).toEqual({ indexes: [] });
    try {
      const tuned = await request(app).post('/api/admin/search/indexes/_tune').send(range);
      expect(tuned.status).toBe(200);
      expect(tuned.body).toEqual(plan.body);
      const listed = await request(app).get('/api/admin/search/indexes');
      expect(listed.body.indexes.map((i: { principal: string; ready: boolean }) => [i.principal, i.ready])).toEqual([
        ['role:engineering', true],
        ['role:sales', true],
      ]);
    } finally {
      for (const index of await search.listPrincipalIndexes()) await search.dropPrincipalIndex(index.principal);
    }
  });
});

describe('searchRouter options', () => {
  it('names a missing or invalid option (principal defaults to getPrincipal)', () => {
    expect(() => searchRouter({} as never)).toThrow(/search/);
    const store = { search() {}, getDocument() {}, listDocuments() {} };
    expect(() => searchRouter({ search: store } as never)).not.toThrow();
    expect(() => searchRouter({ search: store, principal: 'me' } as never)).toThrow(/principal/);
    expect(() => searchAdminRouter({ search: {} } as never)).toThrow(/search/);
    expect(() => searchIndexAdminRouter({ search: {} } as never)).toThrow(/search/);
    expect(() =>
      searchIndexAdminRouter({
        search: { createPrincipalIndex() {}, dropPrincipalIndex() {}, listPrincipalIndexes() {}, tunePrincipalIndexes() {} },
        waitMs: -1,
      } as never),
    ).toThrow(/waitMs/);
  });
});
