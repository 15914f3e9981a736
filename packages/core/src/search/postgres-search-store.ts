import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { metrics, type Span } from '@opentelemetry/api';
import type { PoolClient } from 'pg';
import { withTransaction } from '../db/transaction';
import { translatePgError } from '../db/internal/pg-errors';
import { AikbError, NotFoundError, ValidationError, VectorValidationError, type VectorProblem } from '../errors';
import { noopLogger } from '../logger';
import { checkOptions } from '../options';
import type { Principal } from '../principal';
import { withSpan } from '../tracing/with-span';
import { chunkText } from './chunker';
import { createHashingEmbedder } from './hashing-embedder';
import { checkRequest, readersOf, type CheckedRequest } from './internal/request';
import { HNSW_BUILD, TOTAL_KEY, TS_CONFIG } from './internal/schema';
import type {
  DocumentInput,
  DocumentPage,
  DocumentSummary,
  IndexResult,
  PostgresSearchStoreOptions,
  PrincipalIndex,
  SearchLeg,
  TunePrincipalIndexesOptions,
  TunePrincipalIndexesResult,
  SearchResponse,
  SearchResult,
  SearchStats,
  SearchStore,
  SearchStrategy,
} from './search';
import { validateVector } from './validate-vector';

export { searchStoreMigrations } from './internal/schema';

const MAX_ID = 200;
const MAX_TITLE = 1000;
const MAX_ACL = 1000;
const MAX_METADATA_BYTES = 16 * 1024;
const MAX_CHUNKS = 20_000;
const INSERT_BATCH = 200;
const RRF_K = 60;
// An entry's name holds no control character (C0, DEL or C1).
const ACL_ENTRY = /^(?:public|(?:user|role):\P{Cc}{1,200})$/u;

/** One row a leg found, before details are read. */
interface Hit {
  id: string;
  score: number;
  /** Read with the hit when the leg's query could join them in (saves a round trip). */
  detail?: Detail;
}

interface Detail {
  document_id: string;
  title: string;
  snippet: string;
}

const HEADLINE_OPTIONS = 'StartSel=**, StopSel=**, MaxWords=35, MinWords=15, MaxFragments=2';

/** The snippet of chunk `c`: the query's matched terms highlighted, or the chunk's start. */
function snippetSql(queryParam: string | undefined): string {
  return queryParam === undefined
    ? 'left(c.text, 300)'
    : `ts_headline('${TS_CONFIG}', c.text, websearch_to_tsquery('${TS_CONFIG}', ${queryParam}), '${HEADLINE_OPTIONS}')`;
}

/**
 * `inner` (rows `id, score`, at most k) with each row's document, title and snippet, best first;
 * with `readersParam`, only the rows whose chunk those readers may read.
 */
function withDetails(inner: string, queryParam: string | undefined, readersParam?: string): string {
  return `WITH nearest AS MATERIALIZED (${inner})
    SELECT c.id::text, c.document_id, d.title, ${snippetSql(queryParam)} AS snippet, nearest.score
    FROM nearest JOIN aikb_search_chunks c ON c.id = nearest.id JOIN aikb_search_documents d ON d.id = c.document_id
    ${readersParam === undefined ? '' : `WHERE c.readers && ${readersParam}::text[]`}
    ORDER BY nearest.score DESC, c.id`;
}

/**
 * Set for the index query of the `hnsw` and `overfetch` strategies: with sorts disabled, a query
 * that has an index-ordered plan (`ORDER BY embedding <=> …`) walks the HNSW index even where the
 * planner would rather sort the filtered rows (a small or unanalysed table), so the strategy named
 * in the answer is the one that ran. {@link ANY_ORDER} restores it before any other query.
 * The disabled sort's cost (10^10) would also push the query past `jit_above_cost`, and PostgreSQL
 * would spend ~100 ms compiling it: JIT is off in the search's transaction (none of its queries is
 * long enough to gain from it).
 *
 * With it, `plan_cache_mode` is `force_generic_plan`: the index query's plan is made once per
 * connection and reused, rather than planned again for every search (PostgreSQL keeps planning a
 * custom plan for it, whose estimated cost always beats the generic one's; ≈ 0.3 ms of each search
 * on PostgreSQL 15). With sorts disabled the only plan without a sort is the HNSW walk, whatever
 * the parameters, so the generic plan is that walk. Other queries plan as usual ({@link ANY_ORDER}).
 */
const INDEX_ORDER = { enable_sort: 'off', plan_cache_mode: 'force_generic_plan' } as const;
const ANY_ORDER = { enable_sort: 'on', plan_cache_mode: 'auto' } as const;

/**
 * The readable-set estimate, with the index scan's settings riding along (see runSearch). The
 * estimate sums the caller's per-entry chunk counts; `$2` names the row holding the total.
 * `indexed` lists the caller's entries with a ready principal index that can read a chunk, and
 * `rest` what its other entries can read: the principal-index strategy runs when there is such an
 * entry, the readable set is too large to scan exactly, and the rest is at most `$9` chunks.
 */
const ESTIMATE_SQL = `WITH mine AS (
    SELECT pc.principal, pc.chunks, coalesce(pi.ready, false) AS indexed
    FROM aikb_search_principal_chunks pc LEFT JOIN aikb_search_principal_indexes pi ON pi.principal = pc.principal
    WHERE pc.principal = ANY($1::text[])),
  est AS (
    SELECT coalesce(sum(chunks) FILTER (WHERE principal <> $2), 0) AS readable, coalesce(max(chunks) FILTER (WHERE principal = $2), 0) AS total,
      coalesce(sum(chunks) FILTER (WHERE principal <> $2 AND NOT indexed), 0) AS rest,
      coalesce(array_agg(principal ORDER BY principal) FILTER (WHERE indexed AND principal <> $2 AND chunks > 0), '{}') AS indexed
    FROM mine),
  choice AS (
    SELECT readable, total, rest, indexed, $6::boolean AND least(readable, total) > $7::bigint AND least(readable, total) > $8::float8 * total AS index_order FROM est),
  plan AS (
    SELECT *, index_order AND cardinality(indexed) > 0 AND rest <= $9::bigint AS by_principal FROM choice)
  SELECT readable, total, CASE WHEN by_principal THEN indexed ELSE '{}' END AS indexed, rest,
    set_config('hnsw.iterative_scan', 'relaxed_order', true),
    set_config('hnsw.ef_search', CASE WHEN by_principal THEN $3::int ELSE least(1000, greatest($3::int, ceil($4::int * total::float8 / (2 * greatest(least(readable, total), 1))))) END::int::text, true),
    set_config('hnsw.max_scan_tuples', $5, true),
    set_config('jit', 'off', true),
    set_config('plan_cache_mode', CASE WHEN index_order THEN '${INDEX_ORDER.plan_cache_mode}' ELSE current_setting('plan_cache_mode') END, true),
    set_config('enable_sort', CASE WHEN index_order THEN '${INDEX_ORDER.enable_sort}' ELSE 'on' END, true) AS sort
  FROM plan`;

/** The name of the principal index of `entry`: a hash, as an entry may hold any printable character. */
const principalIndexName = (entry: string) => `aikb_search_chunks_p_${createHash('sha256').update(entry).digest('hex').slice(0, 16)}`;

/**
 * `value` as an SQL string literal, whatever `standard_conforming_strings` says: `E'…'` with
 * quotes and backslashes doubled (as node-postgres' `escapeLiteral`; `pg` is an optional peer).
 * Only access-list entries, which hold no control character (checked), are quoted this way.
 */
const sqlLiteral = (value: string) => `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** Serialises the principal-index DDL of every store on a database (`pg_advisory_lock` key). */
const PRINCIPAL_INDEX_LOCK = 'aikb_search_principal_indexes';

/** Per search: whether sorts are disabled on its connection now (see {@link INDEX_ORDER}). */
interface PlanState {
  sortDisabled: boolean;
  /** The caller's entries whose principal index the vector leg searches (empty: not that strategy). */
  indexed: string[];
  /** Chunks the caller's other entries can read (scanned exactly beside the principal indexes). */
  rest: number;
}

type DetailRow = Detail & { id: string; score: number };
const detailedHits = (rows: readonly DetailRow[]): Hit[] =>
  rows.map((r) => ({ id: r.id, score: Number(r.score), detail: { document_id: r.document_id, title: r.title, snippet: r.snippet } }));

interface LegResult {
  hits: Hit[];
  complete: boolean;
  candidates: number;
  strategy: SearchStrategy;
}

interface DocumentRow {
  id: string;
  title: string;
  metadata: Record<string, unknown>;
  chunk_count: number;
  updated_at: Date | string;
}

function summary(row: DocumentRow): DocumentSummary {
  return {
    id: row.id,
    title: row.title,
    metadata: row.metadata,
    chunks: Number(row.chunk_count),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

function checkId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID || /\p{Cc}/u.test(id)) {
    throw new ValidationError(field, `${field} must be a string of 1 to ${MAX_ID} printable characters`);
  }
  return id;
}

function checkAcl(acl: unknown): string[] {
  if (!Array.isArray(acl) || acl.length > MAX_ACL) throw new ValidationError('acl', `acl must be an array of at most ${MAX_ACL} entries`);
  acl.forEach((entry: unknown, i) => {
    if (typeof entry !== 'string' || !ACL_ENTRY.test(entry)) {
      throw new ValidationError(`acl[${i}]`, `acl[${i}] must be "public", "user:<id>" or "role:<name>" (at most 200 printable characters after the colon)`);
    }
  });
  return [...new Set(acl as string[])].sort();
}

/** Where a pgvector refusal of an unvalidated query vector came from, read from its SQLSTATE and wording. */
function databaseVectorProblem(error: unknown): VectorProblem | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(code.startsWith('22') || code === '54000')) return undefined;
  const message = error instanceof Error ? error.message : '';
  // Only the start of pgvector's wording: the rest may quote the input.
  if (/^(?:expected \d+ dimensions|different vector dimensions|vector cannot have more than|vector must have at least)/.test(message)) return 'wrong_dimension';
  if (/^(?:NaN not allowed|infinite value not allowed|value out of range)/.test(message)) return 'not_finite';
  return 'not_a_number';
}

const DATABASE_PROBLEM: Readonly<Record<string, string>> = {
  wrong_dimension: 'vector has the wrong number of dimensions',
  not_finite: 'vector holds NaN, an infinite or an out-of-range element',
  not_a_number: 'vector is not an array of numbers',
};

/**
 * A {@link SearchStore} on PostgreSQL with pgvector: documents, access lists and chunk embeddings
 * in the tables of {@link searchStoreMigrations}, and search that applies the caller's access
 * inside SQL.
 *
 * ## Access
 * Every document has an access list of `user:<id>`, `role:<name>` and `public` entries; a caller
 * (a {@link Principal}) reads a document when one entry is `public`, its user or one of its
 * roles. The list is copied onto each chunk (`readers text[]`, GIN-indexed), so every leg of a
 * search filters in the same statement that finds the rows: an unreadable row never leaves the
 * database on the default path.
 *
 * ## Strategy
 * Indexing keeps a count of chunks per access-list entry; a search sums the caller's counts (an
 * over-estimate when a chunk is readable through several entries). A small readable set
 * (`exactScanMaxChunks`, or `exactScanFraction` of all chunks) is scanned exactly; a larger one
 * goes through the HNSW index with pgvector's iterative scan (`hnsw.iterative_scan =
 * relaxed_order`, `hnsw.ef_search`, `hnsw.max_scan_tuples`, all `SET LOCAL` in the search's
 * transaction). If that scan stops short of k while the caller can read more, the readable set is
 * scanned exactly when it is at most `exactFallbackMaxChunks`; otherwise the answer comes back with
 * `complete: false`. Never a silently short answer.
 *
 * ## Failure policy
 * A bad request is a {@link VectorValidationError} and touches nothing. Database and embedder
 * failures are thrown as `AikbError`s (`UNAVAILABLE`, ...). Each write is one transaction.
 *
 * @throws {TypeError} when an option is invalid
 * @example
 * ```ts
 * const embedder = createHashingEmbedder({ dimensions: 256 })
 * await migrate(db.pool, searchStoreMigrations({ dimensions: embedder.dimensions }))
 * const search = createPostgresSearchStore({ pool: db.pool, embedder, logger })
 * await search.start()
 * await search.indexDocument({ id: 'runbook', title: 'Runbook', text, acl: ['role:sre'] })
 * const { results, complete } = await search.search({ principal: { userId: 'u1', roles: ['sre'] }, query: 'pool exhausted' })
 * ```
 */
export function createPostgresSearchStore(options: PostgresSearchStoreOptions): SearchStore {
  const check = checkOptions('createPostgresSearchStore', options);
  check.object('pool', 'a pg.Pool', true, ['query', 'connect']);
  check.object('embedder', 'an Embedder', false, ['embed']);
  check.object('logger', 'a Logger', false, ['warn', 'info']);
  check.object('meter', 'an OpenTelemetry Meter', false, ['createCounter', 'createHistogram']);
  check.object('tracer', 'an OpenTelemetry Tracer', false, ['startSpan']);
  check.number('chunkSize', { min: 20, max: 100_000, integer: true });
  check.number('chunkOverlap', { min: 0, integer: true });
  check.number('embedBatchSize', { min: 1, max: 4096, integer: true });
  check.number('maxDocumentLength', { min: 1, integer: true });
  check.number('maxK', { min: 1, max: 1000, integer: true });
  check.number('maxQueryLength', { min: 1, max: 100_000, integer: true });
  check.number('exactScanMaxChunks', { min: 0, integer: true });
  check.number('exactScanFraction', { min: 0, max: 1 });
  check.number('exactFallbackMaxChunks', { min: 0, integer: true });
  check.number('exactRestMaxChunks', { min: 0, integer: true });
  check.number('maxPrincipalIndexes', { min: 0, max: 1000, integer: true });
  check.number('efSearch', { min: 1, max: 1000, integer: true });
  check.number('maxScanTuples', { min: 1, integer: true });
  check.number('overfetch', { min: 1, max: 100, integer: true });
  check.boolean('prepareStatements');
  const {
    pool,
    embedder = createHashingEmbedder(),
    logger = noopLogger,
    meter = metrics.getMeter('@aikb/core'),
    tracer,
    chunkSize = 1000,
    chunkOverlap = 150,
    embedBatchSize = 64,
    maxDocumentLength = 5_000_000,
    maxK = 100,
    maxQueryLength = 2000,
    exactScanMaxChunks = 1000,
    exactScanFraction = 0.02,
    exactFallbackMaxChunks = 100_000,
    exactRestMaxChunks = 1000,
    maxPrincipalIndexes = 16,
    efSearch = 40,
    maxScanTuples = 20_000,
    overfetch = 4,
    prepareStatements = true,
  } = options;
  const dimensions = embedder.dimensions;
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 2000) {
    throw new TypeError(`createPostgresSearchStore: embedder.dimensions must be a whole number from 1 to 2000 (got ${String(dimensions)})`);
  }
  if (typeof embedder.id !== 'string' || embedder.id.length === 0) throw new TypeError('createPostgresSearchStore: embedder.id must be a non-empty string');
  // Fails here, at construction, rather than on the first document.
  chunkText('', { size: chunkSize, overlap: chunkOverlap });

  const hnswSql = (withQuery: boolean) =>
    `SELECT id::text, document_id, (SELECT d.title FROM aikb_search_documents d WHERE d.id = nearest.document_id) AS title, snippet, score
       FROM (SELECT c.id, c.document_id, ${snippetSql(withQuery ? '$4' : undefined)} AS snippet, 1 - (c.embedding <=> $1::vector(${dimensions})) AS score
             FROM aikb_search_chunks c WHERE c.readers && $2::text[] ORDER BY embedding <=> $1::vector(${dimensions}) LIMIT $3) nearest
       ORDER BY nearest.score DESC, nearest.id`;
  /**
   * The statements run on every search, made once here: named prepared statements when
   * `prepareStatements` is on (PostgreSQL parses each once per connection instead of on every
   * search). A name is a hash of its text, so two texts (another D, another store version on the
   * same pool) never share one.
   */
  const prepared = (text: string) => ({
    text,
    ...(prepareStatements ? { name: `aikb_search_${createHash('sha256').update(text).digest('hex').slice(0, 16)}` } : {}),
  });
  const STATEMENTS = { estimate: prepared(ESTIMATE_SQL), vector: prepared(hnswSql(false)), vectorWithQuery: prepared(hnswSql(true)) } as const;
  const statement = (which: keyof typeof STATEMENTS, values: unknown[]) => ({ ...STATEMENTS[which], values });
  /** {@link principalStatement}'s results by shape (indexed entries, rest leg, query): built and hashed once, not per search. */
  const principalStatements = new LRUCache<string, { text: string; name?: string }>({ max: 256 });

  const searches = meter.createCounter('aikb.vector_search.requests', {
    unit: '{request}',
    description: 'Searches, by outcome (success, validation_failure, error) and mode',
  });
  const duration = meter.createHistogram('aikb.vector_search.duration', { unit: 's', description: 'Time to answer a search' });
  const incompleteCounter = meter.createCounter('aikb.vector_search.incomplete', {
    unit: '{request}',
    description: 'Successful searches a scan bound cut short (complete: false)',
  });
  const indexedChunks = meter.createCounter('aikb.vector_search.chunks.indexed', { unit: '{chunk}', description: 'Chunks embedded and written' });

  const counts = { success: 0, validationFailure: 0, error: 0 };
  const strategies: Record<SearchStrategy, number> = { exact: 0, hnsw: 0, 'principal-index': 0, 'hnsw+exact': 0, overfetch: 0, text: 0 };
  let incomplete = 0;
  let documentsIndexed = 0;
  let chunksIndexed = 0;

  const transaction = <T>(fn: (client: PoolClient) => Promise<T>, isolationLevel?: 'repeatable read') =>
    withTransaction(pool, fn, { logger, retries: 3, ...(isolationLevel ? { isolationLevel } : {}) }).catch((error: unknown) =>
      translatePgError(error, { what: 'the search database' }),
    );

  let startup: Promise<void> | undefined;
  function start(): Promise<void> {
    startup ??= checkSchema().catch((error: unknown) => {
      startup = undefined;
      throw error;
    });
    return startup;
  }

  async function checkSchema(): Promise<void> {
    await transaction(async (client) => {
      const { rows: present } = await client.query<{ ok: boolean }>("SELECT to_regclass('aikb_search_config') IS NOT NULL AS ok");
      if (!present[0]?.ok) {
        throw new AikbError(
          'FAILED_PRECONDITION',
          `the search tables do not exist: run migrate(pool, searchStoreMigrations({ dimensions: ${dimensions} })) first`,
        );
      }
      const { rows: current } = await client.query<{ ok: boolean }>("SELECT to_regclass('aikb_search_principal_indexes') IS NOT NULL AS ok");
      if (!current[0]?.ok) {
        throw new AikbError(
          'FAILED_PRECONDITION',
          `the search tables are older than this version of @aikb/core: run migrate(pool, searchStoreMigrations({ dimensions: ${dimensions} })) to apply the new migrations`,
        );
      }
      const { rows } = await client.query<{ dimensions: number; embedder: string | null }>('SELECT dimensions, embedder FROM aikb_search_config FOR UPDATE');
      const config = rows[0];
      if (!config) throw new AikbError('FAILED_PRECONDITION', 'the search configuration row is missing (aikb_search_config)');
      if (config.dimensions !== dimensions) {
        throw new AikbError(
          'FAILED_PRECONDITION',
          `the search schema stores ${config.dimensions}-dimension vectors but the embedder ${embedder.id} makes ${dimensions}-dimension ones: configure an embedder of ${config.dimensions} dimensions, or use a new database`,
          { details: { schemaDimensions: config.dimensions, embedderDimensions: dimensions } },
        );
      }
      if (config.embedder === null) await client.query('UPDATE aikb_search_config SET embedder = $1', [embedder.id]);
      else if (config.embedder !== embedder.id) {
        logger.warn(
          { stored: config.embedder, configured: embedder.id },
          'documents were embedded by another embedder: reindex them, or their vectors are not comparable with queries',
        );
      }
    });
  }

  async function embedAll(texts: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (let start = 0; start < texts.length; start += embedBatchSize) {
      const batch = texts.slice(start, start + embedBatchSize);
      const vectors = await embedder.embed(batch);
      if (!Array.isArray(vectors) || vectors.length !== batch.length) {
        throw new AikbError('INTERNAL', `embedder ${embedder.id} returned ${Array.isArray(vectors) ? vectors.length : 'no'} vectors for ${batch.length} texts`);
      }
      for (const vector of vectors) {
        try {
          out.push(JSON.stringify(validateVector(vector, dimensions, 'embedding')));
        } catch (error) {
          throw new AikbError('INTERNAL', `embedder ${embedder.id} returned an unusable vector: ${(error as Error).message}`, { cause: error });
        }
      }
    }
    return out;
  }

  function checkDocument(document: DocumentInput) {
    if (document === null || typeof document !== 'object') throw new ValidationError('document', 'the document must be an object');
    const id = checkId(document.id);
    const { title, text, metadata = {} } = document;
    if (typeof title !== 'string' || title.length > MAX_TITLE || title.includes('\u0000'))
      throw new ValidationError('title', `title must be a string of at most ${MAX_TITLE} characters, without NUL`);
    if (typeof text !== 'string' || text.trim().length === 0) throw new ValidationError('text', 'text must be a string with at least one non-blank character');
    if (text.length > maxDocumentLength)
      throw new AikbError('PAYLOAD_TOO_LARGE', `text must be at most ${maxDocumentLength} characters (got ${text.length})`, { details: { field: 'text' } });
    if (text.includes('\u0000')) throw new ValidationError('text', 'text must not contain NUL characters');
    if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw new ValidationError('metadata', 'metadata must be a JSON object');
    let metadataJson: string;
    try {
      metadataJson = JSON.stringify(metadata);
    } catch {
      throw new ValidationError('metadata', 'metadata must be serialisable as JSON');
    }
    if (Buffer.byteLength(metadataJson) > MAX_METADATA_BYTES)
      throw new ValidationError('metadata', `metadata must be at most ${MAX_METADATA_BYTES} bytes as JSON`);
    if (metadataJson.includes('\\u0000')) throw new ValidationError('metadata', 'metadata must not contain NUL characters');
    const acl = checkAcl(document.acl);
    const contentHash = createHash('sha256')
      .update(JSON.stringify([embedder.id, chunkSize, chunkOverlap, title, text, metadataJson]))
      .digest('hex');
    return { id, title, text, metadataJson, acl, contentHash };
  }

  /** Moves `chunks` chunks from the counts of `from` to those of `to` (sorted, so concurrent writers lock in one order). */
  async function shiftCounts(
    client: PoolClient,
    from: { principals: readonly string[]; chunks: number },
    to: { principals: readonly string[]; chunks: number },
  ) {
    const delta = new Map<string, number>();
    for (const p of from.principals) delta.set(p, (delta.get(p) ?? 0) - from.chunks);
    for (const p of to.principals) delta.set(p, (delta.get(p) ?? 0) + to.chunks);
    delta.set(TOTAL_KEY, to.chunks - from.chunks);
    const changed = [...delta].filter(([, d]) => d !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (changed.length === 0) return;
    await client.query(
      `INSERT INTO aikb_search_principal_chunks (principal, chunks) SELECT p, d FROM unnest($1::text[], $2::bigint[]) AS u(p, d)
       ON CONFLICT (principal) DO UPDATE SET chunks = aikb_search_principal_chunks.chunks + EXCLUDED.chunks`,
      [changed.map(([p]) => p), changed.map(([, d]) => d)],
    );
  }

  async function writeDocument(document: DocumentInput, mustExist: boolean): Promise<IndexResult> {
    const input = checkDocument(document);
    await start();
    const current = await transaction(async (client) => {
      const { rows } = await client.query<{ content_hash: string; acl: string[] | null }>(
        `SELECT d.content_hash, (SELECT array_agg(principal ORDER BY principal) FROM aikb_search_acl a WHERE a.document_id = d.id) AS acl
         FROM aikb_search_documents d WHERE d.id = $1`,
        [input.id],
      );
      return rows[0];
    });
    if (!current && mustExist) throw new NotFoundError(`no document with id ${input.id}`, { key: input.id });
    if (current && current.content_hash === input.contentHash) {
      if (JSON.stringify(current.acl ?? []) === JSON.stringify(input.acl)) {
        return { id: input.id, chunks: await chunkCount(input.id), outcome: 'unchanged' };
      }
      await setAcl(input.id, input.acl);
      return { id: input.id, chunks: await chunkCount(input.id), outcome: 'replaced' };
    }

    const chunks = chunkText(input.text, { size: chunkSize, overlap: chunkOverlap });
    if (chunks.length > MAX_CHUNKS)
      throw new AikbError('PAYLOAD_TOO_LARGE', `the text makes ${chunks.length} chunks, more than ${MAX_CHUNKS}`, { details: { field: 'text' } });
    // Embedding may take seconds (a remote model): never inside the transaction.
    const vectors = await embedAll(chunks.map((chunk) => `${input.title}\n${chunk}`));

    const outcome = await transaction(async (client) => {
      let created = false;
      if (!mustExist) {
        const inserted = await client.query(
          `INSERT INTO aikb_search_documents (id, title, metadata, content_hash, chunk_count) VALUES ($1, $2, $3::jsonb, $4, 0)
           ON CONFLICT (id) DO NOTHING RETURNING id`,
          [input.id, input.title, input.metadataJson, input.contentHash],
        );
        created = inserted.rowCount === 1;
      }
      const { rows } = await client.query<{ chunk_count: number }>('SELECT chunk_count FROM aikb_search_documents WHERE id = $1 FOR UPDATE', [input.id]);
      if (!rows[0]) throw new NotFoundError(`no document with id ${input.id}`, { key: input.id });
      const old = created
        ? []
        : (await client.query<{ principal: string }>('SELECT principal FROM aikb_search_acl WHERE document_id = $1', [input.id])).rows.map((r) => r.principal);
      await client.query('DELETE FROM aikb_search_chunks WHERE document_id = $1', [input.id]);
      await client.query('DELETE FROM aikb_search_acl WHERE document_id = $1', [input.id]);
      await client.query('INSERT INTO aikb_search_acl (document_id, principal) SELECT $1, unnest($2::text[])', [input.id, input.acl]);
      for (let start = 0; start < chunks.length; start += INSERT_BATCH) {
        const slice = chunks.slice(start, start + INSERT_BATCH);
        await client.query(
          `INSERT INTO aikb_search_chunks (document_id, ordinal, text, readers, embedding, tsv)
           SELECT $1, u.o, u.t, $2::text[], u.e::vector, setweight(to_tsvector('${TS_CONFIG}', $3), 'A') || to_tsvector('${TS_CONFIG}', u.t)
           FROM unnest($4::int[], $5::text[], $6::text[]) AS u(o, t, e)`,
          [input.id, input.acl, input.title, slice.map((_, i) => start + i), slice, vectors.slice(start, start + INSERT_BATCH)],
        );
      }
      await shiftCounts(client, { principals: old, chunks: Number(rows[0].chunk_count) }, { principals: input.acl, chunks: chunks.length });
      await client.query(
        'UPDATE aikb_search_documents SET title = $2, metadata = $3::jsonb, content_hash = $4, chunk_count = $5, updated_at = now() WHERE id = $1',
        [input.id, input.title, input.metadataJson, input.contentHash, chunks.length],
      );
      return created ? 'created' : 'replaced';
    });
    documentsIndexed += 1;
    chunksIndexed += chunks.length;
    indexedChunks.add(chunks.length);
    return { id: input.id, chunks: chunks.length, outcome };
  }

  async function chunkCount(id: string): Promise<number> {
    const { rows } = await pool.query<{ n: number }>('SELECT chunk_count AS n FROM aikb_search_documents WHERE id = $1', [id]);
    return Number(rows[0]?.n ?? 0);
  }

  async function setAcl(id: string, acl: readonly string[]): Promise<void> {
    checkId(id);
    const entries = checkAcl(acl);
    await start();
    await transaction(async (client) => {
      const { rows } = await client.query<{ chunk_count: number }>('SELECT chunk_count FROM aikb_search_documents WHERE id = $1 FOR UPDATE', [id]);
      if (!rows[0]) throw new NotFoundError(`no document with id ${id}`, { key: id });
      const chunks = Number(rows[0].chunk_count);
      const old = (await client.query<{ principal: string }>('SELECT principal FROM aikb_search_acl WHERE document_id = $1', [id])).rows.map(
        (r) => r.principal,
      );
      await client.query('DELETE FROM aikb_search_acl WHERE document_id = $1', [id]);
      await client.query('INSERT INTO aikb_search_acl (document_id, principal) SELECT $1, unnest($2::text[])', [id, entries]);
      await client.query('UPDATE aikb_search_chunks SET readers = $2::text[] WHERE document_id = $1', [id, entries]);
      await shiftCounts(client, { principals: old, chunks }, { principals: entries, chunks });
      await client.query('UPDATE aikb_search_documents SET updated_at = now() WHERE id = $1', [id]);
    });
  }

  async function deleteDocument(id: string): Promise<boolean> {
    checkId(id);
    await start();
    return transaction(async (client) => {
      const { rows } = await client.query<{ chunk_count: number }>('SELECT chunk_count FROM aikb_search_documents WHERE id = $1 FOR UPDATE', [id]);
      if (!rows[0]) return false;
      const old = (await client.query<{ principal: string }>('SELECT principal FROM aikb_search_acl WHERE document_id = $1', [id])).rows.map(
        (r) => r.principal,
      );
      await shiftCounts(client, { principals: old, chunks: Number(rows[0].chunk_count) }, { principals: [], chunks: 0 });
      await client.query('DELETE FROM aikb_search_documents WHERE id = $1', [id]);
      return true;
    });
  }

  const DOCUMENT_COLUMNS = 'd.id, d.title, d.metadata, d.chunk_count, d.updated_at';
  const READABLE = 'EXISTS (SELECT 1 FROM aikb_search_acl a WHERE a.document_id = d.id AND a.principal = ANY($1::text[]))';

  async function getDocument(principal: Principal, id: string): Promise<DocumentSummary | undefined> {
    const readers = readersOf(principal);
    try {
      checkId(id);
    } catch {
      return undefined; // no document has such an id
    }
    await start();
    const rows = await transaction(
      async (client) =>
        (await client.query<DocumentRow>(`SELECT ${DOCUMENT_COLUMNS} FROM aikb_search_documents d WHERE d.id = $2 AND ${READABLE}`, [readers, id])).rows,
    );
    return rows[0] ? summary(rows[0]) : undefined;
  }

  async function listDocuments(principal: Principal, options: { after?: string; limit?: number } = {}): Promise<DocumentPage> {
    const readers = readersOf(principal);
    const { after, limit = 20 } = options ?? {};
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 100)
      throw new ValidationError('limit', 'limit must be a whole number from 1 to 100');
    let afterId = '';
    if (after !== undefined) {
      if (typeof after !== 'string' || after.length > 400) throw new ValidationError('after', 'after must be a cursor from a previous page');
      afterId = Buffer.from(after, 'base64url').toString('utf8');
      try {
        checkId(afterId, 'after');
      } catch {
        throw new ValidationError('after', 'after must be a cursor from a previous page');
      }
    }
    await start();
    const rows = await transaction(
      async (client) =>
        (
          await client.query<DocumentRow>(
            `SELECT ${DOCUMENT_COLUMNS} FROM aikb_search_documents d WHERE d.id COLLATE "C" > $2 AND ${READABLE} ORDER BY d.id COLLATE "C" LIMIT $3`,
            [readers, afterId, limit + 1],
          )
        ).rows,
    );
    const page = rows.slice(0, limit).map(summary);
    const last = page.at(-1);
    return { documents: page, ...(rows.length > limit && last ? { nextCursor: Buffer.from(last.id, 'utf8').toString('base64url') } : {}) };
  }

  // ---------------------------------------------------------------- search

  async function setLocal(client: PoolClient, settings: Record<string, string>) {
    const names = Object.keys(settings);
    await client.query(
      `SELECT ${names.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ')}`,
      names.flatMap((name) => [name, settings[name]!]),
    );
  }

  /** How many chunks the readers can read, counting at most `limit` (an exact, bounded count). */
  async function readableUpTo(client: PoolClient, readers: readonly string[], limit: number): Promise<number> {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM (SELECT 1 FROM aikb_search_chunks WHERE readers && $1::text[] LIMIT $2) s',
      [readers, limit],
    );
    return rows[0]?.n ?? 0;
  }

  /** How many chunks matching `query` the readers can read, counting at most `limit`. */
  async function readableMatchesUpTo(client: PoolClient, readers: readonly string[], query: string, limit: number): Promise<number> {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM aikb_search_chunks WHERE tsv @@ websearch_to_tsquery('${TS_CONFIG}', $1) AND readers && $2::text[] LIMIT $3) s`,
      [query, readers, limit],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * The rows `id, score` of the `k` chunks nearest to `$1` among the documents the entries `$2`
   * can read, exactly (see {@link exactScan}); `k` is `$3`.
   */
  const exactNearestSql = `SELECT id, 1 - (embedding <=> $1::vector(${dimensions})) AS score FROM aikb_search_chunks
         WHERE document_id = ANY (ARRAY(SELECT document_id FROM aikb_search_acl WHERE principal = ANY ($2::text[])))
         ORDER BY (embedding <=> $1::vector(${dimensions})) + 0, id LIMIT $3`;

  /**
   * The principal-index strategy, one statement: for each indexed entry, its own HNSW index's k
   * nearest (the clause repeats the partial index's predicate word for word, so the planner,
   * generic plan included, proves the index applies: the entry is a literal, never a parameter);
   * the caller's other entries' chunks exactly (when they can read any); the union's k nearest,
   * each chunk once, then checked against all the caller's entries like every other leg's rows.
   * Prepared when one entry is indexed (one statement per index); a caller with several indexed
   * entries sends the text unnamed, so no connection keeps a statement per combination of roles.
   */
  function principalQuery(plan: PlanState, vector: string, readers: readonly string[], k: number, query: string | undefined) {
    const withRest = plan.rest > 0;
    const values: unknown[] = [vector, withRest ? readers.filter((entry) => !plan.indexed.includes(entry)) : [], k, readers];
    if (query !== undefined) values.push(query);
    const key = `${withRest ? 'r' : '-'}${query === undefined ? '-' : 'q'}${JSON.stringify(plan.indexed)}`;
    let statement = principalStatements.get(key);
    if (!statement) {
      statement = principalStatement(plan.indexed, withRest, query !== undefined);
      principalStatements.set(key, statement);
    }
    return { ...statement, values };
  }

  /** The text (and, for one indexed entry, the prepared name) of {@link principalQuery}'s statement, made once per shape. */
  function principalStatement(indexed: readonly string[], withRest: boolean, withQuery: boolean): { text: string; name?: string } {
    const legs = indexed.map(
      (entry) =>
        `(SELECT id, 1 - (embedding <=> $1::vector(${dimensions})) AS score FROM aikb_search_chunks
          WHERE readers && ARRAY[${sqlLiteral(entry)}]::text[] ORDER BY embedding <=> $1::vector(${dimensions}) LIMIT $3)`,
    );
    // $2 is always referenced (a parameter PostgreSQL cannot type is an error): an empty rest leg reads nothing.
    legs.push(withRest ? `(${exactNearestSql})` : `(SELECT NULL::bigint AS id, NULL::float8 AS score WHERE cardinality($2::text[]) < 0)`);
    const text = withDetails(
      `SELECT id, max(score) AS score FROM (${legs.join(' UNION ALL ')}) legs GROUP BY id ORDER BY score DESC, id LIMIT $3`,
      withQuery ? '$5' : undefined,
      '$4',
    );
    return indexed.length === 1 ? prepared(text) : { text };
  }

  async function exactScan(client: PoolClient, vector: string, readers: readonly string[], k: number, query: string | undefined): Promise<Hit[]> {
    // The readable documents come from the ACL table's (principal, document_id) index, once (an
    // InitPlan), then their chunks by the (document_id, ordinal) index: a plan the planner cannot
    // turn into a sequential scan on a misestimated array filter. `+ 0` keeps it off the HNSW
    // index (which would drop rows the ACL filters out). The copy of the access list on the chunk
    // (written in the same transaction as the ACL table's rows) is checked on the k rows kept,
    // not on every row scanned: per row, unpacking the `readers` array cost as much as a fifth of
    // the scan (5.4 → 4.3 ms for 2000 readable chunks of 256 dimensions on PostgreSQL 15).
    const { rows } = await client.query<DetailRow>(
      withDetails(exactNearestSql, query === undefined ? undefined : '$4', '$2'),
      query === undefined ? [vector, readers, k] : [vector, readers, k, query],
    );
    return detailedHits(rows);
  }

  async function restoreSort(client: PoolClient, plan: PlanState): Promise<void> {
    if (!plan.sortDisabled) return;
    await setLocal(client, ANY_ORDER);
    plan.sortDisabled = false;
  }

  /**
   * The vector leg. On the database path the strategy was chosen by the estimate query, which
   * disabled sorts (`plan.sortDisabled`) exactly when the readable set is too large to scan.
   */
  async function vectorLeg(client: PoolClient, request: CheckedRequest, vector: string, estimate: number, plan: PlanState): Promise<LegResult> {
    const { readers, k } = request;
    if (request.filtering === 'application') {
      const limit = k * overfetch;
      await setLocal(client, { 'hnsw.iterative_scan': 'off', 'hnsw.ef_search': String(Math.min(1000, Math.max(efSearch, limit))), ...INDEX_ORDER });
      plan.sortDisabled = true;
      const { rows } = await client.query<{ id: string; distance: number; readers: string[] }>(
        `SELECT id::text, embedding <=> $1::vector(${dimensions}) AS distance, readers FROM aikb_search_chunks ORDER BY embedding <=> $1::vector(${dimensions}) LIMIT $2`,
        [vector, limit],
      );
      const allowed = new Set(readers);
      const hits = rows
        .filter((r) => r.readers.some((p) => allowed.has(p)))
        .slice(0, k)
        .map((r) => ({ id: r.id, score: 1 - Number(r.distance) }));
      const complete = hits.length >= k || (await restoreSort(client, plan), await readableUpTo(client, readers, k)) <= hits.length;
      return { hits, complete, candidates: rows.length, strategy: 'overfetch' };
    }
    const query = request.query;
    if (!plan.sortDisabled) {
      const hits = await exactScan(client, vector, readers, k, query);
      return { hits, complete: true, candidates: hits.length, strategy: 'exact' };
    }
    // hnsw.iterative_scan, ef_search, max_scan_tuples and INDEX_ORDER were set with the estimate
    // (runSearch). relaxed_order may return rows slightly out of order: the outer query sorts them again.
    // The details come from the row the index scan already fetched (its snippet and the title's
    // lookup are computed for the k rows that pass the filter, not for every candidate), rather
    // than from a join back to the chunk table: one plan node fewer to plan and run per search.
    const strategy: SearchStrategy = plan.indexed.length > 0 ? 'principal-index' : 'hnsw';
    const { rows } = await client.query<DetailRow>(
      strategy === 'principal-index'
        ? principalQuery(plan, vector, readers, k, query)
        : query === undefined
          ? statement('vector', [vector, readers, k])
          : statement('vectorWithQuery', [vector, readers, k, query]),
    );
    const hits = detailedHits(rows);
    if (hits.length >= k) return { hits, complete: true, candidates: rows.length, strategy };
    await restoreSort(client, plan);
    if ((await readableUpTo(client, readers, k)) <= hits.length) return { hits, complete: true, candidates: rows.length, strategy };
    if (estimate <= exactFallbackMaxChunks) {
      const exact = await exactScan(client, vector, readers, k, query);
      return { hits: exact, complete: true, candidates: rows.length + exact.length, strategy: 'hnsw+exact' };
    }
    return { hits, complete: false, candidates: rows.length, strategy };
  }

  async function textLeg(client: PoolClient, request: CheckedRequest, query: string): Promise<LegResult> {
    const { readers, k } = request;
    if (request.filtering === 'application') {
      const limit = k * overfetch;
      const { rows } = await client.query<{ id: string; rank: number; readers: string[] }>(
        `SELECT c.id::text, ts_rank_cd(c.tsv, q.q) AS rank, c.readers FROM aikb_search_chunks c, websearch_to_tsquery('${TS_CONFIG}', $1) AS q(q)
         WHERE c.tsv @@ q.q ORDER BY rank DESC, c.id LIMIT $2`,
        [query, limit],
      );
      const allowed = new Set(readers);
      const hits = rows
        .filter((r) => r.readers.some((p) => allowed.has(p)))
        .slice(0, k)
        .map((r) => ({ id: r.id, score: Number(r.rank) }));
      // Full text is exact: when fewer than `limit` rows matched, every match was seen; otherwise
      // the answer is complete only if the caller can read no more matches than it holds.
      const complete = hits.length >= k || rows.length < limit || (await readableMatchesUpTo(client, readers, query, k)) <= hits.length;
      return { hits, complete, candidates: rows.length, strategy: 'text' };
    }
    const { rows } = await client.query<DetailRow>(
      withDetails(
        `SELECT c.id, ts_rank_cd(c.tsv, q.q) AS score FROM aikb_search_chunks c, websearch_to_tsquery('${TS_CONFIG}', $1) AS q(q)
         WHERE c.tsv @@ q.q AND c.readers && $2::text[] ORDER BY score DESC, c.id LIMIT $3`,
        '$1',
      ),
      [query, readers, k],
    );
    return { hits: detailedHits(rows), complete: true, candidates: rows.length, strategy: 'text' };
  }

  function fuse(vector: Hit[], text: Hit[], k: number): (Hit & { leg: SearchLeg })[] {
    const fused = new Map<string, Hit & { leg: SearchLeg }>();
    const add = (hits: Hit[], leg: 'vector' | 'text') =>
      hits.forEach((hit, rank) => {
        const seen = fused.get(hit.id);
        const score = 1 / (RRF_K + rank + 1);
        if (seen) fused.set(hit.id, { ...seen, score: seen.score + score, leg: 'both', detail: seen.detail ?? hit.detail });
        else fused.set(hit.id, { ...hit, score, leg });
      });
    add(vector, 'vector');
    add(text, 'text');
    return [...fused.values()].sort((a, b) => b.score - a.score || Number(a.id) - Number(b.id)).slice(0, k);
  }

  async function runSearch(request: CheckedRequest, span: Span): Promise<Omit<SearchResponse, 'tookMs'>> {
    let vector = request.vector;
    if (request.mode !== 'text' && vector === undefined) {
      const [embedded] = await embedAll([request.query!]);
      vector = embedded!;
    }
    return transaction(async (client) => {
      // The index scan's settings ride along with the estimate (one round trip fewer): they only
      // affect HNSW scans, which only the `hnsw` strategy runs (the application path sets its own).
      // ef_search grows as the readable share shrinks (k / (2 × share), at least efSearch and k):
      // the iterative scan's first pass holds about k/2 readable rows and its next passes find
      // the rest. A larger first pass costs more than it gains, as the graph search grows faster
      // than linearly in ef: with the index the migrations build (ef_construction 128), ef 100 at
      // 10 % readable took 10–25 % longer than ef 50 for recall@10 0.984 instead of 0.975, and
      // the former 2k / share (ef 200) longer still.
      const { rows } = await client.query<{ readable: string; total: string; indexed: string[]; rest: string; sort: string }>(
        statement('estimate', [
          [...request.readers, TOTAL_KEY],
          TOTAL_KEY,
          Math.min(1000, Math.max(efSearch, request.k)),
          request.k,
          String(maxScanTuples),
          request.filtering === 'database' && request.mode !== 'text',
          exactScanMaxChunks,
          exactScanFraction,
          exactRestMaxChunks,
        ]),
      );
      const total = Number(rows[0]?.total ?? 0);
      const estimate = Math.min(total, Number(rows[0]?.readable ?? 0));
      // Off: the readable set is too large to scan exactly, and the vector leg walks the index.
      const plan: PlanState = { sortDisabled: rows[0]?.sort === 'off', indexed: rows[0]?.indexed ?? [], rest: Number(rows[0]?.rest ?? 0) };
      span.setAttribute('aikb.search.readable_estimate', estimate);

      let vectorResult: LegResult | undefined;
      let textResult: LegResult | undefined;
      if (request.mode !== 'text') {
        try {
          vectorResult = await vectorLeg(client, request, vector!, estimate, plan);
        } catch (error) {
          const problem = databaseVectorProblem(error);
          if (problem)
            throw new VectorValidationError('vector', `the database refused the query vector: ${DATABASE_PROBLEM[problem]}`, { problem, cause: error });
          throw error;
        }
      }
      if (request.mode !== 'vector') {
        await restoreSort(client, plan);
        textResult = await textLeg(client, request, request.query!);
      }

      const ranked =
        request.mode === 'hybrid'
          ? fuse(vectorResult!.hits, textResult!.hits, request.k)
          : (vectorResult ?? textResult)!.hits.map((hit) => ({ ...hit, leg: request.mode as SearchLeg }));
      // Rows of the application path come without details: read them for the kept ones only.
      const missing = ranked.filter((hit) => !hit.detail).map((hit) => hit.id);
      const byId = new Map<string, Detail>(ranked.flatMap((hit) => (hit.detail ? [[hit.id, hit.detail] as const] : [])));
      if (missing.length > 0) {
        const details = await client.query<Detail & { id: string }>(
          `SELECT c.id::text, c.document_id, d.title, ${snippetSql(request.query === undefined ? undefined : '$2')} AS snippet
           FROM aikb_search_chunks c JOIN aikb_search_documents d ON d.id = c.document_id WHERE c.id = ANY($1::bigint[])`,
          request.query === undefined ? [missing] : [missing, request.query],
        );
        for (const row of details.rows) byId.set(row.id, row);
      }
      const results: SearchResult[] = ranked.flatMap((hit) => {
        const row = byId.get(hit.id);
        return row ? [{ chunkId: hit.id, documentId: row.document_id, title: row.title, snippet: row.snippet, score: hit.score, leg: hit.leg }] : [];
      });
      const strategy = vectorResult?.strategy ?? 'text';
      // k results are complete whatever a leg says (hybrid: one leg may fill what the other missed).
      const complete = results.length >= request.k || ((vectorResult?.complete ?? true) && (textResult?.complete ?? true));
      const candidates = (vectorResult?.candidates ?? 0) + (textResult?.candidates ?? 0);
      return { results, mode: request.mode, strategy, filtering: request.filtering, complete, readableEstimate: estimate, candidates };
    }, 'repeatable read');
  }

  async function search(request: Parameters<SearchStore['search']>[0]): Promise<SearchResponse> {
    const started = performance.now();
    let mode = typeof request?.mode === 'string' ? request.mode : 'unknown';
    const finish = (outcome: 'success' | 'validation_failure' | 'error', attributes: Record<string, string> = {}) => {
      const seconds = (performance.now() - started) / 1000;
      searches.add(1, { outcome, mode, ...attributes });
      duration.record(seconds, { outcome, mode });
      return seconds * 1000;
    };
    try {
      const checked = checkRequest(request, { dimensions, maxK, maxQueryLength });
      mode = checked.mode;
      await start();
      const response = await withSpan(
        'aikb.search',
        async (span) => {
          span.setAttributes({ 'aikb.search.mode': checked.mode, 'aikb.search.k': checked.k, 'aikb.search.filtering': checked.filtering });
          const answer = await runSearch(checked, span);
          span.setAttributes({
            'aikb.search.strategy': answer.strategy,
            'aikb.search.candidates': answer.candidates,
            'aikb.search.results': answer.results.length,
            'aikb.search.complete': answer.complete,
          });
          return answer;
        },
        tracer ? { tracer } : {},
      );
      const tookMs = finish('success', { strategy: response.strategy });
      counts.success += 1;
      strategies[response.strategy] += 1;
      if (!response.complete) {
        incomplete += 1;
        incompleteCounter.add(1, { mode, strategy: response.strategy });
      }
      return { ...response, tookMs: Math.round(tookMs * 1000) / 1000 };
    } catch (error) {
      if (error instanceof VectorValidationError) {
        counts.validationFailure += 1;
        finish('validation_failure', { problem: error.problem });
      } else {
        counts.error += 1;
        finish('error');
      }
      throw error;
    }
  }

  // ---------------------------------------------------------------- principal indexes

  function checkEntry(principal: unknown): string {
    if (typeof principal !== 'string' || !ACL_ENTRY.test(principal)) {
      throw new ValidationError('principal', 'principal must be "public", "user:<id>" or "role:<name>" (at most 200 printable characters after the colon)');
    }
    return principal;
  }

  /**
   * Runs `fn` on one connection holding the database-wide principal-index lock. It is tried, not
   * waited for: `CREATE INDEX CONCURRENTLY` waits for every transaction with an older snapshot,
   * a session waiting on the lock included, so two builds queued on it would deadlock.
   */
  async function withIndexLock<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect().catch((error: unknown) => translatePgError(error, { what: 'the search database' }));
    let broken: unknown;
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [PRINCIPAL_INDEX_LOCK]);
      if (!rows[0]?.locked) {
        throw new AikbError('UNAVAILABLE', 'another principal index is being built or dropped on this database: try again when it ends', {
          details: { retryable: true },
        });
      }
      try {
        return await fn(client);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [PRINCIPAL_INDEX_LOCK]).catch((error: unknown) => {
          broken = error; // the connection is dropped below, which releases the lock
        });
      }
    } catch (error) {
      return translatePgError(error, { what: 'the search database' });
    } finally {
      client.release(broken === undefined ? undefined : (broken as Error));
    }
  }

  interface PrincipalIndexRow {
    principal: string;
    index_name: string;
    chunks: string | number;
    ready: boolean;
    created_at: Date | string;
  }

  async function readPrincipalIndexes(client: Pick<PoolClient, 'query'>, entry?: string): Promise<PrincipalIndex[]> {
    const { rows } = await client.query<PrincipalIndexRow>(
      `SELECT pi.principal, pi.index_name, coalesce(pc.chunks, 0) AS chunks, pi.created_at,
         pi.ready AND coalesce((SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(pi.index_name)), false) AS ready
       FROM aikb_search_principal_indexes pi LEFT JOIN aikb_search_principal_chunks pc ON pc.principal = pi.principal
       ${entry === undefined ? '' : 'WHERE pi.principal = $1'} ORDER BY pi.principal COLLATE "C"`,
      entry === undefined ? [] : [entry],
    );
    return rows.map((r) => ({
      principal: r.principal,
      index: r.index_name,
      chunks: Number(r.chunks),
      ready: r.ready,
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }

  /** Builds (or rebuilds) the index of `entry` on `client`, which holds the principal-index lock. */
  async function buildPrincipalIndex(client: PoolClient, entry: string): Promise<PrincipalIndex> {
    const name = principalIndexName(entry);
    const [existing] = await readPrincipalIndexes(client, entry);
    if (existing?.ready) return existing;
    if (!existing) {
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM aikb_search_principal_indexes');
      if (Number(rows[0]?.n ?? 0) >= maxPrincipalIndexes) {
        throw new AikbError('FAILED_PRECONDITION', `${maxPrincipalIndexes} principal indexes exist already (maxPrincipalIndexes): drop one first`, {
          details: { maxPrincipalIndexes },
        });
      }
    }
    // Registered not ready (searches do not name it) until the build has finished.
    await client.query(
      `INSERT INTO aikb_search_principal_indexes (principal, index_name) VALUES ($1, $2)
       ON CONFLICT (principal) DO UPDATE SET ready = false, index_name = EXCLUDED.index_name`,
      [entry, name],
    );
    // A build that did not finish leaves an invalid index behind, which IF NOT EXISTS would keep.
    await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
    const started = performance.now();
    try {
      await client.query(
        `CREATE INDEX CONCURRENTLY ${name} ON aikb_search_chunks USING hnsw (embedding vector_cosine_ops) WITH (${HNSW_BUILD})
         WHERE readers && ARRAY[${sqlLiteral(entry)}]::text[]`,
      );
    } catch (error) {
      await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`).catch(() => undefined);
      await client.query('DELETE FROM aikb_search_principal_indexes WHERE principal = $1', [entry]).catch(() => undefined);
      throw error;
    }
    await client.query('UPDATE aikb_search_principal_indexes SET ready = true WHERE principal = $1', [entry]);
    const [built] = await readPrincipalIndexes(client, entry);
    logger.info({ principal: entry, index: name, chunks: built?.chunks, ms: Math.round(performance.now() - started) }, 'principal index built');
    return built!;
  }

  /** Unregisters and drops the index of `entry` on `client`, which holds the principal-index lock. */
  async function dropOnePrincipalIndex(client: PoolClient, entry: string): Promise<boolean> {
    const { rowCount } = await client.query('DELETE FROM aikb_search_principal_indexes WHERE principal = $1', [entry]);
    await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${principalIndexName(entry)}`);
    if (rowCount) logger.info({ principal: entry }, 'principal index dropped');
    return (rowCount ?? 0) > 0;
  }

  async function createPrincipalIndex(principal: string): Promise<PrincipalIndex> {
    const entry = checkEntry(principal);
    await start();
    return withIndexLock((client) => buildPrincipalIndex(client, entry));
  }

  async function dropPrincipalIndex(principal: string): Promise<boolean> {
    const entry = checkEntry(principal);
    await start();
    return withIndexLock((client) => dropOnePrincipalIndex(client, entry));
  }

  async function listPrincipalIndexes(): Promise<PrincipalIndex[]> {
    await start();
    return readPrincipalIndexes(pool).catch((error: unknown) => translatePgError(error, { what: 'the search database' }));
  }

  /** {@link tunePrincipalIndexes}' options, checked like any other input: a bad one is a {@link ValidationError} naming it. */
  function checkTuneOptions(options: unknown): Required<TunePrincipalIndexesOptions> {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new ValidationError('options', 'the options must be an object');
    const { minShare = 0.02, maxShare = 0.3, minChunks = 1000, drop = true, dryRun = false } = options as TunePrincipalIndexesOptions;
    for (const [field, value] of [
      ['minShare', minShare],
      ['maxShare', maxShare],
    ] as const) {
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new ValidationError(field, `${field} must be a number from 0 to 1`);
    }
    if (minShare > maxShare) throw new ValidationError('minShare', `minShare (${minShare}) must not exceed maxShare (${maxShare})`);
    if (typeof minChunks !== 'number' || !Number.isSafeInteger(minChunks) || minChunks < 0)
      throw new ValidationError('minChunks', 'minChunks must be a whole number, 0 or more');
    for (const [field, value] of [
      ['drop', drop],
      ['dryRun', dryRun],
    ] as const) {
      if (typeof value !== 'boolean') throw new ValidationError(field, `${field} must be true or false`);
    }
    return { minShare, maxShare, minChunks, drop, dryRun };
  }

  async function tunePrincipalIndexes(options: TunePrincipalIndexesOptions = {}): Promise<TunePrincipalIndexesResult> {
    const { minShare, maxShare, minChunks, drop, dryRun } = checkTuneOptions(options);
    await start();
    // Planned and carried out under one hold of the lock: no other build or drop between the plan and its end.
    return withIndexLock(async (client) => {
      const { rows } = await client.query<{ principal: string; chunks: string; total: string }>(
        `SELECT principal, chunks, (SELECT chunks FROM aikb_search_principal_chunks WHERE principal = $1) AS total
         FROM aikb_search_principal_chunks WHERE principal <> $1 AND chunks > 0 ORDER BY chunks DESC, principal COLLATE "C"`,
        [TOTAL_KEY],
      );
      const existing = new Map((await readPrincipalIndexes(client)).map((index) => [index.principal, index]));
      const total = Number(rows[0]?.total ?? 0);
      const counts = new Map(rows.map((r) => [r.principal, Number(r.chunks)]));
      const share = (entry: string) => (total > 0 ? (counts.get(entry) ?? 0) / total : 0);
      const inRange = rows.map((r) => r.principal).filter((entry) => counts.get(entry)! >= minChunks && share(entry) >= minShare && share(entry) <= maxShare);
      const farOut = (entry: string) => (counts.get(entry) ?? 0) < minChunks / 2 || share(entry) < minShare / 2 || share(entry) > Math.min(1, maxShare * 1.5);
      const dropped = drop ? [...existing.keys()].filter(farOut) : [];
      const kept = [...existing.values()].filter((index) => index.ready && !dropped.includes(index.principal)).map((index) => index.principal);
      let room = maxPrincipalIndexes - (existing.size - dropped.length);
      const created: string[] = [];
      const skipped: { principal: string; reason: string }[] = [];
      for (const entry of inRange) {
        if (existing.get(entry)?.ready) continue;
        // Registered but not ready (a build cut short) holds its place already.
        if (existing.has(entry) || room > 0) {
          if (!existing.has(entry)) room -= 1;
          created.push(entry);
        } else skipped.push({ principal: entry, reason: `maxPrincipalIndexes (${maxPrincipalIndexes}) reached` });
      }
      if (!dryRun) {
        for (const entry of dropped) await dropOnePrincipalIndex(client, entry);
        for (const entry of created) await buildPrincipalIndex(client, entry);
        if (created.length + dropped.length > 0) logger.info({ created, dropped, kept, skipped: skipped.length }, 'principal indexes tuned');
      }
      return { created, dropped, kept, skipped };
    });
  }

  return {
    dimensions,
    start,
    createPrincipalIndex,
    tunePrincipalIndexes,
    dropPrincipalIndex,
    listPrincipalIndexes,
    indexDocument: (document) => writeDocument(document, false),
    reindexDocument: (document) => writeDocument(document, true),
    deleteDocument,
    setAcl,
    getDocument,
    listDocuments,
    search,
    stats: (): SearchStats => ({
      dimensions,
      embedder: embedder.id,
      searches: { ...counts },
      strategies: { ...strategies },
      incomplete,
      documentsIndexed,
      chunksIndexed,
    }),
  };
}
