import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRecordingMeter, describeEachDatabase, servicesRequired } from '@aikb/test-support';
import type { Database, Queryable } from '../db/database';
import { migrate } from '../db/migrations';
import { AikbError, NotFoundError, ValidationError, VectorValidationError } from '../errors';
import type { Principal } from '../principal';
import { createHashingEmbedder } from './hashing-embedder';
import { createPostgresSearchStore, searchStoreMigrations } from './postgres-search-store';
import type { SearchStore } from './search';
import {
  clearSearchTables,
  createTableEmbedder,
  exactNearest,
  prepareSearchDatabase,
  randomUnitVector,
  seededRandom,
  skipWithoutVector,
} from './search-store.contract';

const D = 32;
const alice: Principal = { userId: 'alice', roles: ['engineering'] };
const bob: Principal = { userId: 'bob', roles: ['sales'] };
const eve: Principal = { userId: 'eve', roles: [] };

const POOL_TEXT = 'The connection pool is exhausted when every client is checked out.\n\nRaise max or find the leak.';
const SALES_TEXT = 'Quarterly pricing for enterprise customers and discount approvals.';

/** A statement as a search sends it: a text, or a named prepared statement with its values. */
interface SentQuery {
  name?: string;
  text: string;
  values?: unknown[];
}
type ConnectionQuery = (text: string, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

/**
 * `pool`, but each query sent on one of its connections goes to `intercept` with the statement,
 * `send` (which sends it as it was given) and `query` (for more queries on the same connection, in
 * the same transaction).
 */
function intercepting(pool: Queryable, intercept: (sql: SentQuery, send: () => Promise<unknown>, query: ConnectionQuery) => Promise<unknown>): Queryable {
  return {
    query: pool.query.bind<Queryable['query']>(pool),
    connect: (async () => {
      const client = await pool.connect();
      const query = client.query.bind(client) as (text: unknown, values?: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;
      return new Proxy(client, {
        get(target, property, receiver) {
          if (property !== 'query') return Reflect.get(target, property, receiver) as unknown;
          return (text: unknown, values?: unknown[]) =>
            intercept(typeof text === 'string' ? { text, ...(values ? { values } : {}) } : (text as SentQuery), () => query(text, values), query);
        },
      });
    }) as Queryable['connect'],
  };
}

describeEachDatabase('PostgresSearchStore', (db, backend) => {
  let state: { available: boolean } | undefined;
  let store: SearchStore;
  beforeAll(async () => {
    state = await prepareSearchDatabase(db(), backend, D);
  });
  skipWithoutVector(() => state);
  beforeEach(async () => {
    await clearSearchTables(db());
    store = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }) });
  });

  describe('start', () => {
    it('refuses an embedder whose dimension differs from the schema, naming both', async () => {
      const wrong = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: 64 }) });
      await expect(wrong.start()).rejects.toThrow(/stores 32-dimension vectors but the embedder hashing-v1\/64 makes 64-dimension/);
      await expect(wrong.search({ principal: alice, query: 'pool' })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    });

    it('keeps D from the first migration: running the migrations again with another D changes nothing', async () => {
      const result = await migrate(db().pool, searchStoreMigrations({ dimensions: 64 }));
      expect(result.applied).toEqual([]);
      await expect(store.start()).resolves.toBeUndefined();
    });

    it('upgrades a database migrated before search.0002: its HNSW index is rebuilt with ef_construction 128 and still finds its chunks', async () => {
      const hnswOptions = async () =>
        (await db().pool.query<{ options: string[] | null }>(`SELECT reloptions AS options FROM pg_class WHERE relname = 'aikb_search_chunks_embedding'`))
          .rows[0]?.options ?? null;
      expect(await hnswOptions()).toEqual(['m=16', 'ef_construction=128']);
      await store.indexDocument({ id: 'pool', title: 'Pool runbook', text: POOL_TEXT, acl: ['role:engineering'] });
      // The database as search.0001 alone left it: pgvector's default build, 0002 not recorded.
      await db().pool.query(`DROP INDEX aikb_search_chunks_embedding;
        CREATE INDEX aikb_search_chunks_embedding ON aikb_search_chunks USING hnsw (embedding vector_cosine_ops);
        DELETE FROM aikb_migrations WHERE id = 'search.0002_hnsw_ef_construction'`);
      expect(await hnswOptions()).toBeNull();
      const result = await migrate(db().pool, searchStoreMigrations({ dimensions: D }));
      expect(result.applied).toEqual(['search.0002_hnsw_ef_construction']);
      expect(await hnswOptions()).toEqual(['m=16', 'ef_construction=128']);
      const forced = createPostgresSearchStore({
        pool: db().pool,
        embedder: createHashingEmbedder({ dimensions: D }),
        exactScanMaxChunks: 0,
        exactScanFraction: 0,
      });
      const answer = await forced.search({ principal: alice, query: 'connection pool exhausted', mode: 'vector', k: 1 });
      expect(answer.strategy).toBe('hnsw');
      expect(answer.results.map((r) => r.documentId)).toEqual(['pool']);
    });
  });

  describe('upgrade to search.0003', () => {
    it('refuses to start on tables migrated before search.0003, saying to migrate; after migrate() it starts', async () => {
      await db().pool.query(`DROP TABLE aikb_search_principal_indexes; DELETE FROM aikb_migrations WHERE id = 'search.0003_principal_indexes'`);
      const old = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }) });
      await expect(old.start()).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringMatching(/older than this version.*run migrate/) });
      const result = await migrate(db().pool, searchStoreMigrations({ dimensions: D }));
      expect(result.applied).toEqual(['search.0003_principal_indexes']);
      await expect(old.start()).resolves.toBeUndefined();
      await expect(old.listPrincipalIndexes()).resolves.toEqual([]);
    });
  });

  describe('indexDocument', () => {
    it('splits, embeds and stores a document; indexing the same input again changes nothing', async () => {
      const first = await store.indexDocument({ id: 'pool', title: 'Pool runbook', text: POOL_TEXT, acl: ['role:engineering'], metadata: { team: 'sre' } });
      expect(first).toEqual({ id: 'pool', chunks: 1, outcome: 'created' });
      const again = await store.indexDocument({ id: 'pool', title: 'Pool runbook', text: POOL_TEXT, acl: ['role:engineering'], metadata: { team: 'sre' } });
      expect(again.outcome).toBe('unchanged');
      const { rows } = await db().pool.query<{ n: number }>('SELECT count(*)::int AS n FROM aikb_search_chunks');
      expect(rows[0]!.n).toBe(1);
      expect(await store.getDocument(alice, 'pool')).toMatchObject({ id: 'pool', title: 'Pool runbook', metadata: { team: 'sre' }, chunks: 1 });
    });

    it('replaces the chunks and the ACL when the document changes', async () => {
      await store.indexDocument({ id: 'doc', title: 'Doc', text: POOL_TEXT, acl: ['role:engineering'] });
      const long = Array.from({ length: 40 }, (_, i) => `Sentence number ${i} talks about pools and leaks.`).join(' ');
      const replaced = await store.indexDocument({ id: 'doc', title: 'Doc', text: long, acl: ['user:bob'] });
      expect(replaced.outcome).toBe('replaced');
      expect(replaced.chunks).toBeGreaterThan(1);
      expect(await store.getDocument(alice, 'doc')).toBeUndefined();
      expect((await store.search({ principal: bob, query: 'leaks', k: 100 })).results.length).toBe(replaced.chunks);
      const counts = await db().pool.query<{ principal: string; chunks: string }>(
        'SELECT principal, chunks FROM aikb_search_principal_chunks ORDER BY principal',
      );
      expect(counts.rows.map((r) => [r.principal, Number(r.chunks)])).toEqual([
        ['#total', replaced.chunks],
        ['role:engineering', 0],
        ['user:bob', replaced.chunks],
      ]);
    });

    it('refuses bad documents and writes nothing', async () => {
      const bad = [
        { id: '', title: 't', text: 'x', acl: [] },
        { id: 'a', title: 't', text: '   ', acl: [] },
        { id: 'a', title: 't', text: 'x', acl: ['admin'] },
        { id: 'a', title: 't', text: 'x', acl: ['user:'] },
        { id: 'a', title: 't', text: 'nul \u0000 here', acl: [] },
        { id: 'a', title: 't', text: 'x', acl: [], metadata: [] as unknown as Record<string, unknown> },
        { id: 'a', title: 't', text: 'x', acl: [], metadata: { s: 'a\u0000b' } },
      ];
      for (const document of bad) await expect(store.indexDocument(document)).rejects.toBeInstanceOf(ValidationError);
      const { rows } = await db().pool.query<{ n: number }>('SELECT count(*)::int AS n FROM aikb_search_documents');
      expect(rows[0]!.n).toBe(0);
    });

    it('reindexDocument needs an existing document', async () => {
      await expect(store.reindexDocument({ id: 'nope', title: 't', text: 'x', acl: [] })).rejects.toBeInstanceOf(NotFoundError);
      await store.indexDocument({ id: 'yes', title: 't', text: 'first', acl: ['public'] });
      expect((await store.reindexDocument({ id: 'yes', title: 't', text: 'second', acl: ['public'] })).outcome).toBe('replaced');
    });

    it('fails with an AikbError and writes nothing when the embedder returns a bad vector', async () => {
      const broken = createPostgresSearchStore({
        pool: db().pool,
        embedder: { id: 'broken', dimensions: D, embed: (texts) => Promise.resolve(texts.map(() => Array.from({ length: D }, () => Number.NaN))) },
      });
      await expect(broken.indexDocument({ id: 'x', title: 't', text: 'text', acl: ['public'] })).rejects.toMatchObject({ code: 'INTERNAL' });
      const { rows } = await db().pool.query<{ n: number }>('SELECT count(*)::int AS n FROM aikb_search_documents');
      expect(rows[0]!.n).toBe(0);
    });
  });

  describe('setAcl and deleteDocument', () => {
    it('an ACL change takes effect on the next query', async () => {
      await store.indexDocument({ id: 'pool', title: 'Pool runbook', text: POOL_TEXT, acl: ['role:engineering'] });
      expect((await store.search({ principal: bob, query: 'connection pool' })).results).toEqual([]);
      await store.setAcl('pool', ['user:bob']);
      expect((await store.search({ principal: bob, query: 'connection pool' })).results.map((r) => r.documentId)).toEqual(['pool']);
      expect((await store.search({ principal: alice, query: 'connection pool' })).results).toEqual([]);
      await expect(store.setAcl('missing', ['public'])).rejects.toBeInstanceOf(NotFoundError);
    });

    it('deletes a document with its chunks and counts', async () => {
      await store.indexDocument({ id: 'pool', title: 'Pool runbook', text: POOL_TEXT, acl: ['public'] });
      expect(await store.deleteDocument('pool')).toBe(true);
      expect(await store.deleteDocument('pool')).toBe(false);
      expect((await store.search({ principal: eve, query: 'pool' })).results).toEqual([]);
      const { rows } = await db().pool.query<{ n: number }>('SELECT count(*)::int AS n FROM aikb_search_chunks');
      expect(rows[0]!.n).toBe(0);
    });
  });

  describe('getDocument and listDocuments', () => {
    it('shows only readable documents, by keyset pages', async () => {
      for (const id of ['a', 'b', 'c', 'd', 'e'])
        await store.indexDocument({ id, title: id, text: `text ${id}`, acl: id === 'c' ? ['user:bob'] : ['role:engineering'] });
      const first = await store.listDocuments(alice, { limit: 2 });
      expect(first.documents.map((d) => d.id)).toEqual(['a', 'b']);
      const second = await store.listDocuments(alice, { limit: 2, after: first.nextCursor! });
      expect(second.documents.map((d) => d.id)).toEqual(['d', 'e']);
      expect(second.nextCursor).toBeUndefined();
      expect(await store.getDocument(alice, 'c')).toBeUndefined();
      expect(await store.getDocument(bob, 'c')).toMatchObject({ id: 'c' });
      expect(await store.getDocument(bob, 'x'.repeat(500))).toBeUndefined();
      await expect(store.listDocuments(alice, { limit: 0 })).rejects.toBeInstanceOf(ValidationError);
      await expect(store.listDocuments(alice, { after: '!!!' })).rejects.toBeInstanceOf(ValidationError);
    });

    it('pages through every document whatever the collation of the database (keyset in byte order)', async () => {
      // A linguistic collation (ICU, PostgreSQL only) orders 'a' before 'B': the cursor must still compare in byte order.
      if (backend === 'postgres') await db().pool.query('ALTER TABLE aikb_search_documents ALTER COLUMN id TYPE text COLLATE "en-x-icu"');
      for (const id of ['a', 'B', 'C', 'b', 'A']) await store.indexDocument({ id, title: id, text: `text ${id}`, acl: ['public'] });
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.listDocuments(eve, { limit: 2, ...(after ? { after } : {}) });
        seen.push(...page.documents.map((d) => d.id));
        after = page.nextCursor;
      } while (after);
      expect(seen).toEqual(['A', 'B', 'C', 'a', 'b']);
    });
  });

  describe('search', () => {
    beforeEach(async () => {
      await store.indexDocument({ id: 'pool', title: 'Pool runbook', text: POOL_TEXT, acl: ['role:engineering'] });
      await store.indexDocument({ id: 'sales', title: 'Pricing', text: SALES_TEXT, acl: ['role:sales', 'user:alice'] });
      await store.indexDocument({ id: 'open', title: 'Welcome', text: 'Welcome to the knowledge base. Search for pools or pricing.', acl: ['public'] });
    });

    it('finds by text, by vector and by both, only among readable documents, naming the leg', async () => {
      const text = await store.search({ principal: alice, query: 'exhausted pool', mode: 'text' });
      expect(text.results[0]).toMatchObject({ documentId: 'pool', title: 'Pool runbook', leg: 'text' });
      expect(text.results[0]!.snippet).toMatch(/\*\*exhausted\*\*/);
      expect(text).toMatchObject({ strategy: 'text', complete: true, mode: 'text', filtering: 'database' });

      const vector = await store.search({ principal: bob, query: 'connection pool exhausted', mode: 'vector', k: 10 });
      expect(vector.results.map((r) => r.documentId).sort()).toEqual(['open', 'sales']);
      expect(vector.results.every((r) => r.leg === 'vector')).toBe(true);
      expect(vector.complete).toBe(true);

      const hybrid = await store.search({ principal: alice, query: 'pricing discount' });
      expect(hybrid.mode).toBe('hybrid');
      expect(hybrid.results[0]).toMatchObject({ documentId: 'sales', leg: 'both' });
      expect(hybrid.results.length).toBe(3);
    });

    it('returns exactly min(k, readable) on the vector leg', async () => {
      expect((await store.search({ principal: eve, query: 'anything', mode: 'vector', k: 5 })).results.map((r) => r.documentId)).toEqual(['open']);
      expect((await store.search({ principal: alice, query: 'anything', mode: 'vector', k: 2 })).results).toHaveLength(2);
    });

    it('takes a vector, checks it, and refuses what must not reach SQL', async () => {
      const [vector] = await createHashingEmbedder({ dimensions: D }).embed(['pool exhausted']);
      const found = await store.search({ principal: alice, vector: vector!, k: 1 });
      expect(found.results[0]!.documentId).toBe('pool');
      const bad: unknown[] = [
        [1, 2],
        [],
        Array.from({ length: D }, () => 0),
        Array.from({ length: D }, (_, i) => (i === 3 ? Number.NaN : 1)),
        Array.from({ length: D }, (_, i) => (i === 3 ? '1' : 1)),
        'x',
      ];
      for (const v of bad) await expect(store.search({ principal: alice, vector: v as number[] })).rejects.toBeInstanceOf(VectorValidationError);
      for (const k of [0, -1, 10_000, 1.5, '10'])
        await expect(store.search({ principal: alice, query: 'pool', k: k as number })).rejects.toMatchObject({ problem: 'bad_k' });
      await expect(store.search({ principal: alice, query: 'x'.repeat(1_000_000) })).rejects.toMatchObject({ problem: 'bad_query' });
      await expect(store.search({ principal: alice, vector: vector!, mode: 'text' })).rejects.toBeInstanceOf(VectorValidationError);
      await expect(store.search({ principal: { userId: '', roles: [] }, query: 'pool' })).rejects.toBeInstanceOf(VectorValidationError);
    });

    it('without validation, hands the vector to the database: refusals are VectorValidationErrors, a zero vector is searched', async () => {
      const cases: [unknown, string][] = [
        [[1, 2], 'wrong_dimension'],
        [Array.from({ length: D }, (_, i) => (i === 0 ? Number.POSITIVE_INFINITY : 1)), 'not_a_number'],
        [Array.from({ length: D }, (_, i) => (i === 0 ? 'NaN' : 1)), 'not_a_number'],
        [[[1]], 'not_a_number'],
      ];
      for (const [vector, problem] of cases) {
        await expect(store.search({ principal: alice, vector: vector as number[], validate: false })).rejects.toMatchObject({
          name: 'VectorValidationError',
          problem,
        });
      }
      const zero = await store.search({ principal: alice, vector: Array.from({ length: D }, () => 0), validate: false, k: 10 });
      expect(zero.results).toHaveLength(3);
      // The connection survived each refusal (on PGlite a refused parameter used to break it).
      expect((await store.search({ principal: alice, query: 'pool', mode: 'text' })).results.length).toBeGreaterThan(0);
    });

    it('filters in the application on request, returning only readable rows, and says when it came back short', async () => {
      const app = await store.search({ principal: alice, query: 'pool', mode: 'vector', filtering: 'application', k: 3 });
      expect(app).toMatchObject({ strategy: 'overfetch', filtering: 'application', complete: true });
      expect(app.results.map((r) => r.documentId).sort()).toEqual(['open', 'pool', 'sales']);
      for (let i = 0; i < 12; i++) await store.indexDocument({ id: `hidden-${i}`, title: 'pool pool', text: `pool exhausted pool ${i}`, acl: ['user:nobody'] });
      // k × overfetch = 2 rows from the index, both unreadable to eve: short, and it says so.
      const narrow = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }), overfetch: 1 });
      const short = await narrow.search({ principal: eve, query: 'pool exhausted pool', mode: 'vector', filtering: 'application', k: 2 });
      expect(short).toMatchObject({ results: [], complete: false, strategy: 'overfetch' });
      expect((await narrow.search({ principal: eve, query: 'pool exhausted pool', mode: 'vector', k: 2 })).results.map((r) => r.documentId)).toEqual(['open']);
      const shortText = await store.search({ principal: eve, query: 'pool', mode: 'text', filtering: 'application', k: 1 });
      expect(shortText.results).toEqual(expect.arrayContaining([]));
      expect(shortText.results.every((r) => r.documentId === 'open')).toBe(true);
    });

    it('on the application path, a text answer whose over-fetch held only unreadable matches is complete when the caller can read no match', async () => {
      for (let i = 0; i < 4; i++) await store.indexDocument({ id: `golf-${i}`, title: 't', text: `golf ${i}`, acl: ['user:nobody'] });
      // k × overfetch = 4 rows matched, none readable by eve: nothing was cut, so the answer is complete.
      const none = await store.search({ principal: eve, query: 'golf', mode: 'text', filtering: 'application', k: 1 });
      expect(none).toMatchObject({ results: [], complete: true, strategy: 'text' });
      await store.indexDocument({ id: 'golf-open', title: 't', text: 'golf open', acl: ['public'] });
      const open = await store.search({ principal: eve, query: 'golf', mode: 'text', filtering: 'application', k: 1 });
      expect(open.complete).toBe(open.results.length === 1);
    });

    it('on the application path, a hybrid answer with k results is complete even when the vector leg came back short', async () => {
      const embedder = createTableEmbedder(D, new Map([['far', Array.from({ length: D }, (_, i) => (i === 0 ? -1 : 0))]]));
      const table = createPostgresSearchStore({ pool: db().pool, embedder });
      await clearSearchTables(db());
      // The query and the hidden chunks get the same vector: the vector leg's over-fetch (4 rows)
      // holds only hidden chunks and is short; the text leg finds the one readable chunk.
      for (let i = 0; i < 4; i++) await table.indexDocument({ id: `hidden-${i}`, title: 't', text: `bravo ${i}`, acl: ['user:nobody'] });
      await table.indexDocument({ id: 'readable', title: 't', text: 'alpha vec:far', acl: ['public'] });
      const answer = await table.search({ principal: eve, query: 'alpha', mode: 'hybrid', filtering: 'application', k: 1 });
      expect(answer.results.map((r) => [r.documentId, r.leg])).toEqual([['readable', 'text']]);
      expect(answer.complete).toBe(true);
    });

    it('records spans, outcomes and latency through the meter, and counts in stats()', async () => {
      const recording = createRecordingMeter();
      const measured = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }), meter: recording.meter });
      await measured.search({ principal: alice, query: 'pool' });
      await measured.search({ principal: alice, query: 'pool', k: 0 }).catch(() => {});
      expect(await recording.total('aikb.vector_search.requests', { outcome: 'success' })).toBe(1);
      expect(await recording.total('aikb.vector_search.requests', { outcome: 'validation_failure' })).toBe(1);
      expect(await recording.total('aikb.vector_search.duration')).toBe(2);
      expect(measured.stats()).toMatchObject({ dimensions: D, searches: { success: 1, validationFailure: 1, error: 0 } });
      await recording.shutdown();
    });

    it('traces each search with its strategy, readable-set estimate and candidates', async () => {
      const ended: ReadableSpan[] = [];
      const provider = new BasicTracerProvider({
        spanProcessors: [{ onStart() {}, onEnd: (span) => void ended.push(span), forceFlush: async () => {}, shutdown: async () => {} }],
      });
      const traced = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }), tracer: provider.getTracer('test') });
      await traced.search({ principal: alice, query: 'pool', k: 2 });
      const span = ended.find((s) => s.name === 'aikb.search');
      expect(span?.attributes).toMatchObject({
        'aikb.search.mode': 'hybrid',
        'aikb.search.k': 2,
        'aikb.search.strategy': 'exact',
        'aikb.search.readable_estimate': 3,
        'aikb.search.complete': true,
        'aikb.search.results': 2,
      });
      expect(span?.attributes['aikb.search.candidates']).toBeGreaterThanOrEqual(2);
      await provider.shutdown();
    });
  });

  describe('strategy', () => {
    /** Options that send every search through HNSW, stop its iterative scan after one pass and never fall back to an exact scan. */
    const NO_EXACT_SCAN_ONE_PASS = { exactScanMaxChunks: 0, exactScanFraction: 0, exactFallbackMaxChunks: 0, efSearch: 1, maxScanTuples: 1 } as const;

    it('scans exactly when the readable set is small, uses HNSW when it is large, and falls back to an exact scan when the index comes back short', async () => {
      const random = seededRandom(7);
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < 60; i++) vectors.set(`v${i}`, randomUnitVector(random, D));
      const embedder = createTableEmbedder(D, vectors);
      const tuned = createPostgresSearchStore({ pool: db().pool, embedder, exactScanMaxChunks: 5, exactScanFraction: 0, maxScanTuples: 1, efSearch: 1 });
      for (let i = 0; i < 60; i++) await tuned.indexDocument({ id: `d${i}`, title: 't', text: `vec:v${i}`, acl: i < 3 ? ['role:few'] : ['role:many'] });
      const query = randomUnitVector(random, D);
      const few = await tuned.search({ principal: { userId: 'u', roles: ['few'] }, vector: query, k: 10 });
      expect(few).toMatchObject({ strategy: 'exact', complete: true, readableEstimate: 3 });
      expect(few.results).toHaveLength(3);
      const many = await tuned.search({ principal: { userId: 'u', roles: ['many'] }, vector: query, k: 10 });
      expect(['hnsw', 'hnsw+exact']).toContain(many.strategy);
      expect(many.results).toHaveLength(10);
      expect(many.complete).toBe(true);
      const bounded = createPostgresSearchStore({
        pool: db().pool,
        embedder,
        ...NO_EXACT_SCAN_ONE_PASS,
      });
      const cut = await bounded.search({ principal: { userId: 'u', roles: ['few'] }, vector: query, k: 10 });
      expect(cut.strategy).toBe('hnsw');
      // The bound may or may not cut this small index; when it does, the answer says so.
      expect(cut.complete).toBe(cut.results.length === 3);
    });

    it('returns from the exact scan no chunk whose own access list leaves the caller out, even when the ACL table would let it in', async () => {
      // The exact scan finds readable documents through the ACL table and checks the copy of the
      // access list on each chunk it keeps. Both are written in one transaction; here the copy on
      // one chunk is made to disagree by hand, as a bug would, and that chunk must not come back.
      const random = seededRandom(3);
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < 6; i++) vectors.set(`v${i}`, randomUnitVector(random, D));
      const embedder = createTableEmbedder(D, vectors);
      const exact = createPostgresSearchStore({ pool: db().pool, embedder });
      for (let i = 0; i < 6; i++) await exact.indexDocument({ id: `d${i}`, title: 't', text: `vec:v${i}`, acl: ['role:team'] });
      await db().pool.query(`UPDATE aikb_search_chunks SET readers = '{role:other}' WHERE document_id = 'd2'`);
      const answer = await exact.search({ principal: { userId: 'u', roles: ['team'] }, vector: vectors.get('v2')!, k: 10 });
      expect(answer.strategy).toBe('exact');
      expect(answer.results.map((r) => r.documentId).sort()).toEqual(['d0', 'd1', 'd3', 'd4', 'd5']);
    });

    it('walks the HNSW index whenever the answer says hnsw or overfetch, even on a small table without statistics', async () => {
      // The plan of every index-ordered query, EXPLAINed on the search's own connection just
      // before it runs (same transaction, same settings). Without statistics, a small table's
      // cheapest plan is a sort of the filtered rows: an exact answer labelled `hnsw`.
      const plans: string[] = [];
      const explaining = intercepting(db().pool, async (sql, send, query) => {
        if (/ORDER BY embedding <=>/.test(sql.text)) {
          const { rows } = await query(`EXPLAIN ${sql.text}`, sql.values);
          plans.push(rows.map((r) => String(r['QUERY PLAN'])).join('\n'));
        }
        return send();
      });
      const pool = db().pool;
      const random = seededRandom(11);
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < 40; i++) vectors.set(`v${i}`, randomUnitVector(random, D));
      const embedder = createTableEmbedder(D, vectors);
      const writer = createPostgresSearchStore({ pool, embedder });
      for (let i = 0; i < 40; i++) await writer.indexDocument({ id: `d${i}`, title: 't', text: `vec:v${i}`, acl: i % 4 === 0 ? ['role:few'] : ['role:many'] });
      const forced = createPostgresSearchStore({ pool: explaining, embedder, exactScanMaxChunks: 0, exactScanFraction: 0, exactFallbackMaxChunks: 0 });
      const query = randomUnitVector(random, D);
      const vector = await forced.search({ principal: { userId: 'u', roles: ['few'] }, vector: query, k: 5 });
      const hybrid = await forced.search({ principal: { userId: 'u', roles: ['many'] }, vector: query, query: 'vec', k: 5 });
      const older = await forced.search({ principal: { userId: 'u', roles: ['many'] }, vector: query, k: 5, filtering: 'application' });
      expect([vector.strategy, hybrid.strategy, older.strategy]).toEqual(['hnsw', 'hnsw', 'overfetch']);
      expect(plans).toHaveLength(3);
      for (const plan of plans) {
        expect(plan).toMatch(/Index Scan using \S*embedding\S* on aikb_search_chunks/);
        // Disabled sorts raise the plan's cost past jit_above_cost: JIT would compile it (≈ 100 ms).
        expect(plan).not.toMatch(/JIT:/);
      }
      // The text leg of the hybrid search still found its rows, and nothing unreadable came back.
      expect(hybrid.results.length).toBe(5);
      expect(vector.results.length).toBe(5);
    });

    it('says complete: false when the iterative scan stops short of k and the readable set is too large to scan exactly', async () => {
      // The caller reads only chunks far from the query; the nearest ones are hidden. Every
      // vector lies on the unit circle of the first two dimensions, so the HNSW graph is local:
      // hidden chunks on the arc around the query, readable ones on the opposite arc, the arcs
      // meeting nowhere near the query. With max_scan_tuples at 1 the iterative scan stops after
      // its first pass, whose candidates (ef_search = k: 10, above k ÷ twice the readable share) are hidden
      // chunks next to the query, and the readable set is above exactFallbackMaxChunks: the
      // answer is short and must say so.
      const hiddenCount = 1000;
      const readableCount = 2000;
      const onCircle = (angle: number) => Array.from({ length: D }, (_, i) => (i === 0 ? Math.cos(angle) : i === 1 ? Math.sin(angle) : 0));
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < hiddenCount; i++) vectors.set(`h${i}`, onCircle(-0.5 + i / hiddenCount));
      for (let i = 0; i < readableCount; i++) vectors.set(`r${i}`, onCircle(Math.PI - 1 + (2 * i) / readableCount));
      const embedder = createTableEmbedder(D, vectors);
      const bounded = createPostgresSearchStore({
        pool: db().pool,
        embedder,
        chunkSize: 20,
        chunkOverlap: 0,
        ...NO_EXACT_SCAN_ONE_PASS,
      });
      const paragraphs = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `vec:${prefix}${i} .....`).join('\n\n');
      const hidden = await bounded.indexDocument({ id: 'hidden', title: 't', text: paragraphs('h', hiddenCount), acl: ['role:hidden'] });
      const shown = await bounded.indexDocument({ id: 'shown', title: 't', text: paragraphs('r', readableCount), acl: ['role:reader'] });
      expect([hidden.chunks, shown.chunks]).toEqual([hiddenCount, readableCount]);
      // As autovacuum would: with statistics the planner sees the filter keeps most rows and
      // walks the HNSW index (without them it may sort the GIN filter's rows, an exact answer).
      await db().pool.query('ANALYZE aikb_search_chunks');
      const reader: Principal = { userId: 'u', roles: ['reader'] };
      const k = 10;
      const query = onCircle(0.001);
      const answer = await bounded.search({ principal: reader, vector: query, k });
      expect(answer.strategy).toBe('hnsw');
      expect(answer.readableEstimate).toBe(readableCount);
      expect(answer.results.length).toBeLessThan(Math.min(k, readableCount));
      expect(answer.complete).toBe(false);
      expect(answer.results.every((r) => r.documentId === 'shown')).toBe(true);
      expect(bounded.stats().incomplete).toBe(1);
    }, 120_000);
  });

  describe('prepared statements', () => {
    it('sends the estimate and the index query as named statements, or as plain text with prepareStatements: false, with the same answers', async () => {
      const sent: { name?: string; text: string }[] = [];
      const pool = db().pool;
      const recording = intercepting(pool, (sql, send) => {
        sent.push(sql);
        return send();
      });
      const random = seededRandom(3);
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < 30; i++) vectors.set(`v${i}`, randomUnitVector(random, D));
      const embedder = createTableEmbedder(D, vectors);
      const writer = createPostgresSearchStore({ pool, embedder });
      for (let i = 0; i < 30; i++) await writer.indexDocument({ id: `d${i}`, title: `t${i}`, text: `vec:v${i}`, acl: ['role:r'] });
      const query = randomUnitVector(random, D);
      const answers = [];
      for (const prepareStatements of [true, false]) {
        sent.length = 0;
        const store = createPostgresSearchStore({ pool: recording, embedder, exactScanMaxChunks: 0, exactScanFraction: 0, prepareStatements });
        // Twice: the second search reuses the statements the first one prepared on its connection.
        for (let i = 0; i < 2; i++) answers.push(await store.search({ principal: { userId: 'u', roles: ['r'] }, vector: query, k: 5 }));
        const estimate = sent.filter((q) => q.text.includes('aikb_search_principal_chunks'));
        const index = sent.filter((q) => /ORDER BY embedding <=>/.test(q.text));
        expect([estimate.length, index.length]).toEqual([2, 2]);
        for (const q of [...estimate, ...index]) {
          if (prepareStatements) expect(q.name).toMatch(/^aikb_search_[0-9a-f]{16}$/);
          else expect(q.name).toBeUndefined();
        }
        if (prepareStatements) expect(new Set(estimate.map((q) => q.name)).size).toBe(1);
      }
      expect(answers.map((a) => a.strategy)).toEqual(['hnsw', 'hnsw', 'hnsw', 'hnsw']);
      const ids = answers.map((a) => a.results.map((r) => r.chunkId));
      expect(ids[0]).toHaveLength(5);
      for (const other of ids.slice(1)) expect(other).toEqual(ids[0]);
    });

    it('runs the index query on a generic plan, made once per connection, and plans every other query of the search as usual', async () => {
      // Before each query of a search: the plan_cache_mode it runs under. After each named index
      // query: how many times its connection ran it on the generic plan.
      const seen: { kind: 'index' | 'text' | 'exact' | 'other'; mode: string; genericPlans?: number }[] = [];
      const pool = db().pool;
      const recording = intercepting(pool, async (sql, send, query) => {
        const kind = /ORDER BY embedding <=>/.test(sql.text)
          ? 'index'
          : /ts_rank_cd/.test(sql.text)
            ? 'text'
            : /\+ 0, id LIMIT/.test(sql.text)
              ? 'exact'
              : 'other';
        if (kind !== 'other' || /aikb_search_principal_chunks/.test(sql.text)) {
          const { rows } = await query(`SELECT current_setting('plan_cache_mode') AS mode`);
          seen.push({ kind, mode: String(rows[0]!.mode) });
        }
        const result = await send();
        if (kind === 'index' && sql.name) {
          const { rows } = await query('SELECT generic_plans FROM pg_prepared_statements WHERE name = $1', [sql.name]);
          seen[seen.length - 1]!.genericPlans = Number(rows[0]!.generic_plans);
        }
        return result;
      });
      const random = seededRandom(5);
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < 30; i++) vectors.set(`v${i}`, randomUnitVector(random, D));
      const embedder = createTableEmbedder(D, vectors);
      const writer = createPostgresSearchStore({ pool, embedder });
      for (let i = 0; i < 30; i++) await writer.indexDocument({ id: `d${i}`, title: `t${i}`, text: `vec:v${i}`, acl: i < 2 ? ['role:few'] : ['role:r'] });
      const query = randomUnitVector(random, D);
      const hnsw = createPostgresSearchStore({ pool: recording, embedder, exactScanMaxChunks: 5, exactScanFraction: 0 });
      const many: Principal = { userId: 'u', roles: ['r'] };
      const first = await hnsw.search({ principal: many, vector: query, k: 5 });
      const second = await hnsw.search({ principal: many, vector: query, k: 5 });
      const hybrid = await hnsw.search({ principal: many, vector: query, query: 'vec', k: 5 });
      const exact = await hnsw.search({ principal: { userId: 'u', roles: ['few'] }, vector: query, k: 5 });
      expect([first.strategy, second.strategy, hybrid.strategy, exact.strategy]).toEqual(['hnsw', 'hnsw', 'hnsw', 'exact']);
      expect(second.results).toEqual(first.results);
      expect(exact.results).toHaveLength(2);
      const index = seen.filter((s) => s.kind === 'index');
      expect(index).toHaveLength(3);
      for (const s of index) {
        expect(s.mode).toBe('force_generic_plan');
        expect(s.genericPlans).toBeGreaterThanOrEqual(1);
      }
      // The estimate, the hybrid search's text leg and the exact scan: the server's default.
      const others = seen.filter((s) => s.kind !== 'index');
      expect(others.map((s) => s.kind).sort()).toEqual(['exact', 'other', 'other', 'other', 'other', 'text']);
      for (const s of others) expect(s.mode).toBe('auto');
    });
  });

  describe('principal indexes', () => {
    afterEach(async () => {
      // Indexes outlive the tables' rows: drop them so that no other test searches one.
      for (const index of await store.listPrincipalIndexes()) await store.dropPrincipalIndex(index.principal);
      await db().pool.query('DELETE FROM aikb_search_principal_indexes');
    });

    /** 200 documents: role:mid reads one in five, role:wide all of them, user:u a few of its own; vectors random. */
    async function corpus(seed: number) {
      const random = seededRandom(seed);
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < 200; i++) vectors.set(`v${i}`, randomUnitVector(random, D));
      const embedder = createTableEmbedder(D, vectors);
      const writer = createPostgresSearchStore({ pool: db().pool, embedder });
      const aclOf = (i: number) => [
        'role:wide',
        ...(i % 5 === 0 ? ['role:mid'] : []),
        ...(i % 50 === 7 ? ['user:u'] : []),
        ...(i === 3 ? ["role:o'brien\\x"] : []),
      ];
      for (let i = 0; i < 200; i++) await writer.indexDocument({ id: `d${i}`, title: 't', text: `vec:v${i}`, acl: aclOf(i) });
      await db().pool.query('ANALYZE aikb_search_chunks');
      // Every strategy but the exact scan (the readable sets here are small); role:wide's 200 chunks
      // are too many to scan beside a principal index.
      const indexed = createPostgresSearchStore({ pool: db().pool, embedder, exactScanMaxChunks: 0, exactScanFraction: 0, exactRestMaxChunks: 100 });
      return { random, vectors, embedder, writer, indexed, aclOf };
    }

    it("searches the index of a caller's entry, with its other entries' chunks scanned exactly: the same answers as the exact scan", async () => {
      const { random, vectors, indexed, aclOf } = await corpus(5);
      const built = await indexed.createPrincipalIndex('role:mid');
      expect(built).toMatchObject({ principal: 'role:mid', chunks: 40, ready: true });
      expect(built.index).toMatch(/^aikb_search_chunks_p_[0-9a-f]{16}$/);
      const caller: Principal = { userId: 'u', roles: ['mid'] };
      const readable = new Map([...vectors].filter(([key]) => aclOf(Number(key.slice(1))).some((e) => e === 'role:mid' || e === 'user:u')));
      let found = 0;
      for (let q = 0; q < 10; q++) {
        const query = randomUnitVector(random, D);
        const answer = await indexed.search({ principal: caller, vector: query, k: 10 });
        expect(answer).toMatchObject({ strategy: 'principal-index', complete: true, readableEstimate: 44 });
        expect(answer.results).toHaveLength(10);
        const truth = exactNearest(query, readable, 10);
        const got = new Set(answer.results.map((r) => `v${r.documentId.slice(1)}`));
        found += truth.filter((t) => got.has(t)).length;
      }
      expect(found / 100).toBeGreaterThanOrEqual(0.95);
      // A chunk only the caller's user entry reads comes from the exact leg, first when it is the query.
      for (const own of [7, 57, 107, 157]) {
        const answer = await indexed.search({ principal: caller, vector: vectors.get(`v${own}`)!, k: 3 });
        expect(answer.strategy).toBe('principal-index');
        expect(answer.results[0]!.documentId).toBe(`d${own}`);
      }
      // No entry indexed, or other entries reading more than exactRestMaxChunks: the shared index.
      const wide = await indexed.search({ principal: { userId: 'u', roles: ['mid', 'wide'] }, vector: randomUnitVector(random, D), k: 10 });
      expect(wide.strategy).toBe('hnsw');
      const tight = createPostgresSearchStore({
        pool: db().pool,
        embedder: createTableEmbedder(D, vectors),
        exactScanMaxChunks: 0,
        exactScanFraction: 0,
        exactRestMaxChunks: 3,
      });
      expect((await tight.search({ principal: caller, vector: randomUnitVector(random, D), k: 10 })).strategy).toBe('hnsw');
      expect((await tight.search({ principal: { userId: 'nobody', roles: ['mid'] }, vector: randomUnitVector(random, D), k: 10 })).strategy).toBe(
        'principal-index',
      );
      // A small readable set is still scanned exactly.
      expect(
        (
          await createPostgresSearchStore({ pool: db().pool, embedder: createTableEmbedder(D, vectors) }).search({
            principal: caller,
            vector: randomUnitVector(random, D),
            k: 5,
          })
        ).strategy,
      ).toBe('exact');
      expect(indexed.stats().strategies['principal-index']).toBe(14);
    });

    it("walks the principal's own index, on a generic plan, whose entry may hold quotes and backslashes", async () => {
      const { random, vectors, embedder } = await corpus(6);
      await store.createPrincipalIndex('role:mid');
      const odd = await store.createPrincipalIndex("role:o'brien\\x");
      const plans: string[] = [];
      const explaining = intercepting(db().pool, async (sql, send, query) => {
        if (/readers && ARRAY\[/.test(sql.text)) {
          const { rows } = await query(`EXPLAIN ${sql.text}`, sql.values);
          plans.push(rows.map((r) => String(r['QUERY PLAN'])).join('\n'));
        }
        return send();
      });
      const forced = createPostgresSearchStore({ pool: explaining, embedder, exactScanMaxChunks: 0, exactScanFraction: 0 });
      const mid = await forced.search({ principal: { userId: 'x', roles: ['mid'] }, vector: randomUnitVector(random, D), k: 5 });
      const both = await forced.search({ principal: { userId: 'x', roles: ['mid', "o'brien\\x"] }, vector: vectors.get('v3')!, k: 5 });
      expect([mid.strategy, both.strategy]).toEqual(['principal-index', 'principal-index']);
      expect(both.results[0]!.documentId).toBe('d3');
      expect(plans).toHaveLength(2);
      expect(plans[0]).toMatch(/Index Scan using aikb_search_chunks_p_[0-9a-f]{16} on aikb_search_chunks/);
      expect(plans[0]).not.toMatch(/aikb_search_chunks_embedding/);
      expect(plans[1]).toContain(`Index Scan using ${odd.index} on aikb_search_chunks`);
      for (const plan of plans) expect(plan).not.toMatch(/JIT:/);
    });

    it("follows access-list changes at once: a chunk leaves and joins the principal's index with its ACL", async () => {
      const { vectors, indexed, aclOf } = await corpus(7);
      await indexed.createPrincipalIndex('role:mid');
      const caller: Principal = { userId: 'someone', roles: ['mid'] };
      const top = async (i: number) => (await indexed.search({ principal: caller, vector: vectors.get(`v${i}`)!, k: 1 })).results[0]?.documentId;
      expect(await top(10)).toBe('d10');
      await indexed.setAcl('d10', ['role:wide']);
      expect(await top(10)).not.toBe('d10');
      expect(await top(11)).not.toBe('d11');
      await indexed.setAcl('d11', [...aclOf(11), 'role:mid']);
      expect(await top(11)).toBe('d11');
      await indexed.deleteDocument('d11');
      expect(await top(11)).not.toBe('d11');
      const [listed] = await indexed.listPrincipalIndexes();
      expect(listed).toMatchObject({ principal: 'role:mid', chunks: 39, ready: true });
    });

    it('creates idempotently, lists, drops, refuses bad entries, and keeps to maxPrincipalIndexes', async () => {
      const { indexed } = await corpus(8);
      const capped = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }), maxPrincipalIndexes: 2 });
      const first = await capped.createPrincipalIndex('role:mid');
      expect(await capped.createPrincipalIndex('role:mid')).toEqual(first);
      await capped.createPrincipalIndex('user:u');
      await expect(capped.createPrincipalIndex('role:wide')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', details: { maxPrincipalIndexes: 2 } });
      expect((await capped.listPrincipalIndexes()).map((i) => [i.principal, i.chunks, i.ready])).toEqual([
        ['role:mid', 40, true],
        ['user:u', 4, true],
      ]);
      for (const bad of ['admin', 'role:', 'role:a\u0000b', 'user:a\nb', `role:${'x'.repeat(201)}`, 42, undefined]) {
        await expect(capped.createPrincipalIndex(bad as string)).rejects.toBeInstanceOf(ValidationError);
        await expect(capped.dropPrincipalIndex(bad as string)).rejects.toBeInstanceOf(ValidationError);
      }
      expect(await capped.dropPrincipalIndex('role:mid')).toBe(true);
      expect(await capped.dropPrincipalIndex('role:mid')).toBe(false);
      const { rows } = await db().pool.query(`SELECT 1 FROM pg_class WHERE relname = $1`, [first.index]);
      expect(rows).toHaveLength(0);
      const answer = await indexed.search({ principal: { userId: 'x', roles: ['mid'] }, vector: randomUnitVector(seededRandom(1), D), k: 10 });
      expect(answer.strategy).toBe('hnsw');
      expect(() => createPostgresSearchStore({ pool: db().pool, maxPrincipalIndexes: -1 })).toThrow(/maxPrincipalIndexes/);
      expect(() => createPostgresSearchStore({ pool: db().pool, exactRestMaxChunks: 1.5 })).toThrow(/exactRestMaxChunks/);
    });

    it('tunes the indexes to the entries reading a mid-sized share: dry run, build, keep, skip past the cap, drop out of range', async () => {
      const { indexed } = await corpus(11);
      const range = { minShare: 0.1, maxShare: 0.3, minChunks: 10 };
      expect(await indexed.tunePrincipalIndexes({ ...range, dryRun: true })).toEqual({ created: ['role:mid'], dropped: [], kept: [], skipped: [] });
      expect(await indexed.listPrincipalIndexes()).toEqual([]);
      expect(await indexed.tunePrincipalIndexes(range)).toEqual({ created: ['role:mid'], dropped: [], kept: [], skipped: [] });
      expect(await indexed.listPrincipalIndexes()).toMatchObject([{ principal: 'role:mid', ready: true, chunks: 40 }]);
      expect(await indexed.tunePrincipalIndexes(range)).toEqual({ created: [], dropped: [], kept: ['role:mid'], skipped: [] });
      // role:mid reads 20 %: above a 0.15 maximum but inside its slack (1.5 ×), so its index stays;
      // beyond 1.5 × 0.1, so it is dropped.
      expect(await indexed.tunePrincipalIndexes({ ...range, maxShare: 0.15 })).toEqual({ created: [], dropped: [], kept: ['role:mid'], skipped: [] });
      expect(await indexed.tunePrincipalIndexes({ ...range, maxShare: 0.1 })).toEqual({ created: [], dropped: ['role:mid'], kept: [], skipped: [] });
      expect(await indexed.listPrincipalIndexes()).toEqual([]);
      const capped = createPostgresSearchStore({ pool: db().pool, embedder: createHashingEmbedder({ dimensions: D }), maxPrincipalIndexes: 1 });
      expect(await capped.tunePrincipalIndexes({ minShare: 0.01, maxShare: 0.3, minChunks: 1 })).toEqual({
        created: ['role:mid'],
        dropped: [],
        kept: [],
        skipped: [{ principal: 'user:u', reason: 'maxPrincipalIndexes (1) reached' }],
      });
      await expect(indexed.tunePrincipalIndexes({ minShare: 2 })).rejects.toThrow(/minShare/);
      await expect(indexed.tunePrincipalIndexes({ minShare: 0.5, maxShare: 0.2 })).rejects.toThrow(/must not exceed maxShare/);
    });

    it('ignores an index whose build did not finish, and builds it again on the next create', async () => {
      const { random, indexed } = await corpus(9);
      // As a build cut short leaves it: registered, not ready, no valid index.
      await db().pool.query(`INSERT INTO aikb_search_principal_indexes (principal, index_name) VALUES ('role:mid', 'aikb_search_chunks_p_0000000000000000')`);
      expect(await indexed.listPrincipalIndexes()).toMatchObject([{ principal: 'role:mid', ready: false }]);
      const caller: Principal = { userId: 'x', roles: ['mid'] };
      expect((await indexed.search({ principal: caller, vector: randomUnitVector(random, D), k: 10 })).strategy).toBe('hnsw');
      const rebuilt = await indexed.createPrincipalIndex('role:mid');
      expect(rebuilt).toMatchObject({ principal: 'role:mid', ready: true, chunks: 40 });
      expect(rebuilt.index).not.toBe('aikb_search_chunks_p_0000000000000000');
      expect((await indexed.search({ principal: caller, vector: randomUnitVector(random, D), k: 10 })).strategy).toBe('principal-index');
    });

    // PostgreSQL only: it needs a second database session to hold the lock, and PGlite's pool is
    // one session (an advisory lock is re-entrant within its session, so nothing would be refused).
    it.runIf(backend === 'postgres')('refuses, without waiting, to build while another session builds or drops one', async () => {
      await corpus(10);
      const other = await db().pool.connect();
      try {
        await other.query(`SELECT pg_advisory_lock(hashtextextended('aikb_search_principal_indexes', 0))`);
        await expect(store.createPrincipalIndex('role:mid')).rejects.toMatchObject({ code: 'UNAVAILABLE', details: { retryable: true } });
        await expect(store.dropPrincipalIndex('role:mid')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
        await other.query(`SELECT pg_advisory_unlock(hashtextextended('aikb_search_principal_indexes', 0))`);
        await expect(store.createPrincipalIndex('role:mid')).resolves.toMatchObject({ ready: true });
      } finally {
        other.release();
      }
    });
  });

  describe('recall', () => {
    it('finds the true nearest readable chunks at 50 %, 10 %, 1 % and 0.1 % readable, exactly min(k, readable) of them', async () => {
      const N = 2000;
      const random = seededRandom(42);
      const vectors = new Map<string, number[]>();
      for (let i = 0; i < N; i++) vectors.set(`v${i}`, randomUnitVector(random, D));
      const embedder = createTableEmbedder(D, vectors);
      const fill = createPostgresSearchStore({ pool: db().pool, embedder });
      const shares = [
        { role: 'half', every: 2 },
        { role: 'tenth', every: 10 },
        { role: 'hundredth', every: 100 },
        { role: 'thousandth', every: 1000 },
      ];
      for (let i = 0; i < N; i++) {
        const acl = shares.filter((s) => i % s.every === 0).map((s) => `role:${s.role}`);
        await fill.indexDocument({ id: `d${i}`, title: 't', text: `vec:v${i}`, acl });
      }
      const configurations = [
        { name: 'default', store: fill },
        { name: 'hnsw forced', store: createPostgresSearchStore({ pool: db().pool, embedder, exactScanMaxChunks: 0, exactScanFraction: 0 }) },
      ];
      for (const { name, store: s } of configurations) {
        for (const share of shares) {
          const readable = new Map([...vectors].filter(([key]) => Number(key.slice(1)) % share.every === 0));
          let found = 0;
          let expected = 0;
          for (let q = 0; q < 10; q++) {
            const query = randomUnitVector(random, D);
            const answer = await s.search({ principal: { userId: 'u', roles: [share.role] }, vector: query, k: 10 });
            const truth = exactNearest(query, readable, 10);
            expect(answer.results, `${name} ${share.role}`).toHaveLength(Math.min(10, readable.size));
            expect(answer.complete).toBe(true);
            const got = new Set(answer.results.map((r) => `v${r.documentId.slice(1)}`));
            found += truth.filter((t) => got.has(t)).length;
            expected += truth.length;
          }
          expect(found / expected, `${name} recall@10 at ${share.role}`).toBeGreaterThanOrEqual(0.95);
        }
      }
    }, 240_000);
  });
});

describe('createPostgresSearchStore options', () => {
  it('names a bad option', () => {
    const pool = { query: () => {}, connect: () => {} } as never;
    expect(() => createPostgresSearchStore({ pool, maxK: 0 })).toThrow(/maxK/);
    expect(() => createPostgresSearchStore({ pool, chunkOverlap: 900 })).toThrow(/overlap/);
    expect(() => createPostgresSearchStore({ pool: undefined as never })).toThrow(/pool/);
    expect(() => createPostgresSearchStore({ pool, embedder: { id: 'x', dimensions: 0, embed: () => Promise.resolve([]) } })).toThrow(/dimensions/);
    expect(() => createPostgresSearchStore({ pool, prepareStatements: 'yes' as never })).toThrow(/prepareStatements/);
    expect(() => searchStoreMigrations({ dimensions: 0 })).toThrow(TypeError);
    expect(AikbError).toBeDefined();
  });
});

describe('prepareSearchDatabase on a server without pgvector', () => {
  const withoutVector = {
    pool: { query: () => Promise.reject(Object.assign(new Error('extension "vector" is not available'), { code: '0A000' })) },
  } as unknown as Database;

  it('fails on PGlite, which always ships pgvector', async () => {
    await expect(prepareSearchDatabase(withoutVector, 'pglite', D)).rejects.toThrow(/pgvector is required/);
  });

  it(servicesRequired ? 'fails on PostgreSQL when services are required (CI)' : 'skips on PostgreSQL when services are not required', async () => {
    const prepared = prepareSearchDatabase(withoutVector, 'postgres', D);
    if (servicesRequired) await expect(prepared).rejects.toThrow(/pgvector is required/);
    else await expect(prepared).resolves.toEqual({ available: false });
  });
});
