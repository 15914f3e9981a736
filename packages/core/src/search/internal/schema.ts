import type { Migration } from '../../db/migrations';

/** The text-search configuration of the `tsvector` column and of every query. */
export const TS_CONFIG = 'english';

/** The row of the per-principal chunk counts that holds the total (principals never start with `#`). */
export const TOTAL_KEY = '#total';

function schemaSql(dimensions: number): string {
  return `
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE aikb_search_config (
      id boolean PRIMARY KEY DEFAULT true CHECK (id),
      dimensions integer NOT NULL,
      embedder text
    );
    INSERT INTO aikb_search_config (dimensions) VALUES (${dimensions});
    CREATE TABLE aikb_search_documents (
      id text PRIMARY KEY,
      title text NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}',
      content_hash text NOT NULL,
      chunk_count integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE aikb_search_acl (
      document_id text NOT NULL REFERENCES aikb_search_documents (id) ON DELETE CASCADE,
      principal text NOT NULL,
      PRIMARY KEY (document_id, principal)
    );
    CREATE INDEX aikb_search_acl_principal ON aikb_search_acl (principal, document_id);
    CREATE TABLE aikb_search_chunks (
      id bigserial PRIMARY KEY,
      document_id text NOT NULL REFERENCES aikb_search_documents (id) ON DELETE CASCADE,
      ordinal integer NOT NULL,
      text text NOT NULL,
      readers text[] NOT NULL,
      embedding vector(${dimensions}) NOT NULL,
      tsv tsvector NOT NULL,
      UNIQUE (document_id, ordinal)
    );
    CREATE INDEX aikb_search_chunks_embedding ON aikb_search_chunks USING hnsw (embedding vector_cosine_ops);
    CREATE INDEX aikb_search_chunks_readers ON aikb_search_chunks USING gin (readers);
    CREATE INDEX aikb_search_chunks_tsv ON aikb_search_chunks USING gin (tsv);
    CREATE TABLE aikb_search_principal_chunks (
      principal text PRIMARY KEY,
      chunks bigint NOT NULL
    );
  `;
}

/**
 * The build parameters of the HNSW index (`m`, `ef_construction`). pgvector's default
 * `ef_construction` (64) makes a graph whose clusters are poorly linked to each other: a filtered
 * search whose answer reaches beyond the query's cluster then misses rows (recall@10 ≈ 0.95 at
 * 10 % readable even with `ef_search` 200). 128 doubles the candidates each insert considers:
 * the same queries reach 0.97–0.98 with `ef_search` 40–100. The price: building and inserting
 * cost about 1.6× as much, and an unfiltered scan about 20 % more (same `m`, but more of each
 * node's edges are filled, so each step compares more vectors).
 */
export const HNSW_BUILD = 'm = 16, ef_construction = 128';

/**
 * The tables of {@link createPostgresSearchStore} for vectors of `dimensions` (D): pass them to
 * `migrate()` (ids start `search.`). D is fixed when the first migration runs; the store checks
 * it against its embedder at start-up. The migration installs pgvector (`CREATE EXTENSION IF NOT
 * EXISTS vector`), so it fails on a server without it: check with `ensureVectorExtension` first.
 *
 * The migration's checksum does not depend on D, so a later run with another D does not fail as
 * "changed": the store's start-up check names both dimensions instead.
 *
 * `search.0003_principal_indexes` adds the registry of per-principal HNSW indexes
 * (`SearchStore.createPrincipalIndex`); it builds none.
 *
 * `search.0002_hnsw_ef_construction` rebuilds the HNSW index with `ef_construction = 128` (see
 * the README's vector search section): on an existing database it reads every chunk and holds a
 * write lock on the chunk table while it runs (about 15 s per 20 000 chunks of 256 dimensions; raise
 * `maintenance_work_mem` above the index's size for a large table, or the build slows down).
 *
 * @throws {TypeError} when `dimensions` is not a whole number from 1 to 2000 (HNSW's limit)
 * @example
 * ```ts
 * await migrate(db.pool, searchStoreMigrations({ dimensions: embedder.dimensions }))
 * ```
 */
export function searchStoreMigrations(options: { dimensions: number }): readonly Migration[] {
  const dimensions = (options as { dimensions?: unknown } | undefined)?.dimensions;
  if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > 2000) {
    throw new TypeError(`searchStoreMigrations: dimensions must be a whole number from 1 to 2000 (got ${String(dimensions)})`);
  }
  return [
    {
      id: 'search.0001_create_tables',
      up: async (client) => {
        await client.query(schemaSql(dimensions));
      },
    },
    {
      id: 'search.0002_hnsw_ef_construction',
      up: `DROP INDEX aikb_search_chunks_embedding;
        CREATE INDEX aikb_search_chunks_embedding ON aikb_search_chunks USING hnsw (embedding vector_cosine_ops) WITH (${HNSW_BUILD});`,
    },
    {
      id: 'search.0003_principal_indexes',
      up: `CREATE TABLE aikb_search_principal_indexes (
          principal text PRIMARY KEY,
          index_name text NOT NULL UNIQUE,
          ready boolean NOT NULL DEFAULT false,
          created_at timestamptz NOT NULL DEFAULT now()
        );`,
    },
  ];
}
