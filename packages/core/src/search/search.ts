import type { Meter, Tracer } from '@opentelemetry/api';
import type { Queryable } from '../db/database';
import type { Logger } from '../logger';
import type { Principal } from '../principal';

/**
 * Turns texts into vectors. Implementations: {@link createHashingEmbedder} (local, deterministic,
 * lexical) and {@link createOpenAiEmbedder} (any OpenAI-compatible `/embeddings` endpoint: OpenAI,
 * Ollama, vLLM).
 */
export interface Embedder {
  /** Stable identity of the model and its settings (`hashing-v1/256`, `openai/text-embedding-3-small`): documents embedded by one are not comparable with another's. */
  readonly id: string;
  /** The length D of every vector {@link embed} returns. */
  readonly dimensions: number;
  /**
   * One vector per text, in order, each of length {@link dimensions}.
   * @throws {AikbError} when the model cannot be reached or answers something unusable
   */
  embed(texts: readonly string[], options?: { signal?: AbortSignal }): Promise<number[][]>;
}

/**
 * One entry of a document's access list: `user:<id>` (that user), `role:<name>` (every user with
 * that role) or `public` (everyone who may search at all).
 */
export type AclEntry = `user:${string}` | `role:${string}` | 'public';

/** The access-list entry that lets every caller read a document. */
export const PUBLIC_PRINCIPAL = 'public';

/** What {@link SearchStore.indexDocument} stores: one document, split into chunks and embedded. */
export interface DocumentInput {
  /** Caller-chosen id, 1–200 characters; indexing the same id again replaces the document. */
  readonly id: string;
  /** Shown in results, searched by full text (weighted above the body); at most 1 000 characters. */
  readonly title: string;
  /** The body, split into chunks. Must hold at least one non-blank character. */
  readonly text: string;
  /** Who may read it; an empty list means nobody (only an admin path can reach it). */
  readonly acl: readonly string[];
  /** A JSON object returned with the document (at most 16 KiB serialised). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** What an indexing call did. */
export interface IndexResult {
  readonly id: string;
  /** Chunks the document has now. */
  readonly chunks: number;
  /** `created` (new id), `replaced` (content or ACL changed) or `unchanged` (same input as stored: nothing was embedded or written). */
  readonly outcome: 'created' | 'replaced' | 'unchanged';
}

/** A document as a reader sees it (never its access list). */
export interface DocumentSummary {
  readonly id: string;
  readonly title: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly chunks: number;
  /** ISO 8601. */
  readonly updatedAt: string;
}

/** One page of {@link SearchStore.listDocuments}. */
export interface DocumentPage {
  readonly documents: readonly DocumentSummary[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly nextCursor?: string;
}

/** `vector` (nearest chunks by cosine distance), `text` (PostgreSQL full text) or `hybrid` (both, fused by reciprocal rank). */
export type SearchMode = 'vector' | 'text' | 'hybrid';

/**
 * Where the access list is applied: `database` (inside the SQL of every leg, so an unreadable row
 * never leaves PostgreSQL, and the answer is exact in size) or `application` (the older path:
 * over-fetch from the index, drop unreadable rows in the process; may come back short, and says so).
 */
export type SearchFiltering = 'database' | 'application';

/**
 * How the vector leg ran: `exact` (a scan of every chunk the caller may read), `hnsw` (the HNSW
 * index with pgvector's iterative scan, ACL in the scan), `principal-index` (the HNSW indexes of
 * the caller's entries that have one, see {@link SearchStore.createPrincipalIndex}, with the
 * chunks of its other entries scanned exactly, in one statement), `hnsw+exact` (an index scan hit
 * its bound short of k, so the readable set was scanned exactly), `overfetch` (application
 * filtering) or `text` (no vector leg).
 */
export type SearchStrategy = 'exact' | 'hnsw' | 'principal-index' | 'hnsw+exact' | 'overfetch' | 'text';

/** A search request. Give `query`, `vector`, or both (hybrid: the vector leg uses `vector`). */
export interface SearchRequest {
  /** Who is asking: from a verified token, never from a request body. */
  readonly principal: Principal;
  /** Text to search: embedded for the vector leg, `websearch_to_tsquery` for the text leg. */
  readonly query?: string;
  /** A query vector of length D (checked by {@link validateVector} unless `validate` is false). */
  readonly vector?: readonly number[];
  /**
   * How many results.
   * @default 10
   */
  readonly k?: number;
  /**
   * @default 'hybrid' when `query` is given, else 'vector'
   */
  readonly mode?: SearchMode;
  /** @default 'database' */
  readonly filtering?: SearchFiltering;
  /**
   * Check `vector` before SQL. When false it is handed to the database as it is: what pgvector
   * rejects is a {@link VectorValidationError}, and a zero vector is searched (in arbitrary order).
   * `k`, `query` and `principal` are checked either way.
   * @default true
   */
  readonly validate?: boolean;
}

/** Which leg of a search found a result. */
export type SearchLeg = 'vector' | 'text' | 'both';

/** One chunk found. */
export interface SearchResult {
  readonly chunkId: string;
  readonly documentId: string;
  readonly title: string;
  /** An excerpt of the chunk, matched query terms between `**`. */
  readonly snippet: string;
  /** Higher is better: 1 − cosine distance (vector), `ts_rank_cd` (text), reciprocal-rank sum (hybrid). */
  readonly score: number;
  readonly leg: SearchLeg;
}

/** The answer to a search. */
export interface SearchResponse {
  readonly results: readonly SearchResult[];
  readonly mode: SearchMode;
  readonly strategy: SearchStrategy;
  readonly filtering: SearchFiltering;
  /**
   * True when `results` holds min(k, what the caller may read and the legs can match): false only
   * when a bound (the iterative scan's `maxScanTuples` with the readable set too large to scan
   * exactly, or the application path's over-fetch) cut the answer short.
   */
  readonly complete: boolean;
  /** The cheap estimate of chunks the caller may read that chose the strategy. */
  readonly readableEstimate: number;
  /** Rows the legs read from the database before fusing and cutting to k. */
  readonly candidates: number;
  readonly tookMs: number;
}

/** A per-principal HNSW index: {@link SearchStore.createPrincipalIndex}. */
export interface PrincipalIndex {
  /** The access-list entry (`role:<name>`, `user:<id>` or `public`) whose chunks it holds. */
  readonly principal: string;
  /** The PostgreSQL index's name (`aikb_search_chunks_p_` and a hash of the entry). */
  readonly index: string;
  /** Chunks the entry can read now (the index holds exactly those). */
  readonly chunks: number;
  /**
   * Searches use it: built, valid and registered. False while it is being built, or after a build
   * that did not finish (a crash, a cancelled statement): {@link SearchStore.createPrincipalIndex}
   * again rebuilds it.
   */
  readonly ready: boolean;
  /** ISO 8601: when it was registered. */
  readonly createdAt: string;
}

/** {@link SearchStore.tunePrincipalIndexes} options: which entries deserve an index of their own. */
export interface TunePrincipalIndexesOptions {
  /**
   * Least share of all chunks an entry must read to get an index. Below it the exact scan serves
   * the entry's callers (with the default `exactScanFraction`, up to 2 %).
   * @default 0.02
   */
  readonly minShare?: number;
  /**
   * Largest share: above it the shared index finds readable rows quickly anyway (a principal index
   * on a 50 % role measured no faster than the shared one).
   * @default 0.3
   */
  readonly maxShare?: number;
  /**
   * Least chunks an entry must read (a smaller set is scanned exactly whatever its share).
   * @default 1000
   */
  readonly minChunks?: number;
  /**
   * Drop the indexes of entries that have left the range by more than half of it (below half of
   * `minShare` or `minChunks`, above 1.5 × `maxShare`, capped at 1): the slack keeps an entry on
   * the edge from being built and dropped on alternate runs.
   * @default true
   */
  readonly drop?: boolean;
  /** Only say what would be done. @default false */
  readonly dryRun?: boolean;
}

/** What {@link SearchStore.tunePrincipalIndexes} did (or, with `dryRun`, would do). */
export interface TunePrincipalIndexesResult {
  /** Entries whose index was built (or would be), largest first. */
  readonly created: readonly string[];
  /** Entries whose index was dropped (or would be). */
  readonly dropped: readonly string[];
  /** Entries whose ready index stays (in range, or out of it by less than the slack). */
  readonly kept: readonly string[];
  /** Entries in range left without an index, and why (`maxPrincipalIndexes` reached). */
  readonly skipped: readonly { readonly principal: string; readonly reason: string }[];
}

/** {@link SearchStore.stats}: counts since the store was created. */
export interface SearchStats {
  readonly dimensions: number;
  readonly embedder: string;
  readonly searches: { readonly success: number; readonly validationFailure: number; readonly error: number };
  readonly strategies: Readonly<Record<SearchStrategy, number>>;
  /** Successful searches that answered `complete: false`. */
  readonly incomplete: number;
  readonly documentsIndexed: number;
  readonly chunksIndexed: number;
}

/**
 * Documents, their access lists and chunk embeddings in PostgreSQL with pgvector, and search over
 * them that applies the caller's access inside SQL.
 */
export interface SearchStore {
  /** D, the embedder's dimension (fixed in the schema). */
  readonly dimensions: number;
  /**
   * Checks the schema against the embedder (D must match). Every other method runs it first, once.
   * @throws {AikbError} `FAILED_PRECONDITION` naming both dimensions on a mismatch, or when the migrations were not applied
   */
  start(): Promise<void>;
  /**
   * Splits, embeds (outside the transaction) and writes a document, its ACL and chunks in one
   * transaction. Indexing the same id again replaces it; the same input again changes nothing.
   * @throws {ValidationError} on a bad field; {@link AikbError} `PAYLOAD_TOO_LARGE` past the size limits
   */
  indexDocument(document: DocumentInput): Promise<IndexResult>;
  /**
   * {@link indexDocument} for a document that must already exist.
   * @throws {NotFoundError} when it does not
   */
  reindexDocument(document: DocumentInput): Promise<IndexResult>;
  /** Deletes a document and its chunks; false when there was none. */
  deleteDocument(id: string): Promise<boolean>;
  /**
   * Replaces a document's access list; the next query sees it.
   * @throws {NotFoundError} when there is no such document
   */
  setAcl(id: string, acl: readonly string[]): Promise<void>;
  /** The document when `principal` may read it, else `undefined` (whether or not it exists). */
  getDocument(principal: Principal, id: string): Promise<DocumentSummary | undefined>;
  /** The documents `principal` may read, by id, `limit` (1–100, default 20) per page. */
  listDocuments(principal: Principal, options?: { after?: string; limit?: number }): Promise<DocumentPage>;
  /**
   * Searches what `request.principal` may read.
   * @throws {VectorValidationError} on a bad request (nothing ran)
   */
  search(request: SearchRequest): Promise<SearchResponse>;
  /**
   * Builds an HNSW index over the chunks one access-list entry can read (a partial index, `WHERE
   * readers && ARRAY[entry]`), with the shared index's build parameters, and registers it: from
   * then on a caller holding that entry, whose other entries hold at most `exactRestMaxChunks`
   * chunks, searches that index (strategy `principal-index`) instead of filtering the shared one.
   * Worth it for an entry many callers hold that reads a mid-sized share of the chunks (a role
   * reading 5–30 %): the shared index has to walk past about (1 − share) ÷ share unreadable rows
   * for every readable one, the entry's own index none. Every write of a chunk the entry can read
   * updates the index too: keep them few (`maxPrincipalIndexes`).
   *
   * Built with `CREATE INDEX CONCURRENTLY` (writes go on; it takes about as long per chunk as the
   * shared index's build), outside any transaction; index DDL of all stores on the database is
   * serialised by an advisory lock. Idempotent: a ready index is returned as it is, one whose
   * build did not finish is built again.
   * @throws {ValidationError} when `principal` is not an access-list entry
   * @throws {AikbError} `FAILED_PRECONDITION` when `maxPrincipalIndexes` indexes exist already; `UNAVAILABLE` (retryable) while another build or drop runs on the database
   */
  createPrincipalIndex(principal: string): Promise<PrincipalIndex>;
  /**
   * Unregisters the entry's index (searches stop using it at once) and drops it (`DROP INDEX
   * CONCURRENTLY`). False when there was none.
   * @throws {ValidationError} when `principal` is not an access-list entry
   */
  dropPrincipalIndex(principal: string): Promise<boolean>;
  /** The registered per-principal indexes, by entry. */
  listPrincipalIndexes(): Promise<PrincipalIndex[]>;
  /**
   * Brings the principal indexes in line with the per-entry chunk counts: builds one for each
   * entry reading between `minShare` and `maxShare` of the chunks (and at least `minChunks`),
   * largest first, up to `maxPrincipalIndexes`, and drops those whose entry has left the range
   * (with slack, see {@link TunePrincipalIndexesOptions.drop}). Run it from a maintenance job or
   * after a bulk import; each build is {@link createPrincipalIndex}, one after another.
   * @throws {ValidationError} naming the option, when one is out of range
   * @throws {AikbError} `UNAVAILABLE` (retryable) while another build or drop runs on the database
   */
  tunePrincipalIndexes(options?: TunePrincipalIndexesOptions): Promise<TunePrincipalIndexesResult>;
  /** Counts since creation (synchronous, JSON-able). */
  stats(): SearchStats;
}

/** {@link createPostgresSearchStore} options. */
export interface PostgresSearchStoreOptions {
  /** The pool (a `pg.Pool`, or embedded PGlite's). Required. */
  pool: Queryable;
  /**
   * Turns texts into vectors; its `dimensions` must equal the D the schema was created with.
   * @default createHashingEmbedder() (256 dimensions)
   */
  embedder?: Embedder;
  /** @default noopLogger */
  logger?: Logger;
  /** @default metrics.getMeter('@aikb/core') */
  meter?: Meter;
  /** @default trace.getTracer('@aikb/core') */
  tracer?: Tracer;
  /**
   * Target chunk size in characters (paragraph and sentence aware).
   * @default 1000
   */
  chunkSize?: number;
  /**
   * Characters of the previous chunk repeated at the start of the next.
   * @default 150
   */
  chunkOverlap?: number;
  /**
   * Texts per {@link Embedder.embed} call.
   * @default 64
   */
  embedBatchSize?: number;
  /**
   * Largest document text accepted, in characters.
   * @default 5_000_000
   */
  maxDocumentLength?: number;
  /**
   * Largest `k`.
   * @default 100
   */
  maxK?: number;
  /**
   * Longest query text, in characters.
   * @default 2000
   */
  maxQueryLength?: number;
  /**
   * The vector leg scans the readable set exactly when the caller may read at most this many
   * chunks, or at most {@link exactScanFraction} of all chunks.
   * @default 1000
   */
  exactScanMaxChunks?: number;
  /** @default 0.02 */
  exactScanFraction?: number;
  /**
   * A caller holding entries with a principal index ({@link SearchStore.createPrincipalIndex})
   * searches those indexes when its other entries can read at most this many chunks (they are
   * scanned exactly, in the same statement); above it, the shared HNSW index.
   * @default 1000
   */
  exactRestMaxChunks?: number;
  /**
   * Most per-principal indexes {@link SearchStore.createPrincipalIndex} builds on the database.
   * @default 16
   */
  maxPrincipalIndexes?: number;
  /**
   * When the HNSW scan comes back short of k, the readable set is scanned exactly if it holds at
   * most this many chunks; above it the answer is returned with `complete: false`.
   * @default 100_000
   */
  exactFallbackMaxChunks?: number;
  /**
   * The least `hnsw.ef_search` of the index scan: it is raised to k, and to k ÷ (2 × the share
   * of chunks the caller may read) — 50 at 10 % for k = 10, so the iterative scan's first pass
   * holds about k/2 readable rows and its next passes find the rest — at most 1000. A larger
   * value buys little recall with the index the migrations build (`ef_construction` 128) and
   * costs more than linearly in latency.
   * @default 40
   */
  efSearch?: number;
  /**
   * `hnsw.max_scan_tuples`: how many index tuples one iterative scan may visit.
   * @default 20_000
   */
  maxScanTuples?: number;
  /**
   * Application filtering fetches `k × overfetch` rows from the index before dropping unreadable ones.
   * @default 4
   */
  overfetch?: number;
  /**
   * Run the estimate and the HNSW index query as named prepared statements, parsed once per
   * connection (≈ 0.2 ms less per statement on PostgreSQL 15). Turn it off behind a
   * transaction-mode connection pooler that does not carry prepared statements from one
   * transaction to the next (PgBouncer before 1.21, or with `max_prepared_statements = 0`): there
   * the second search on a pooled server connection would fail with "prepared statement … does
   * not exist".
   * @default true
   */
  prepareStatements?: boolean;
}
