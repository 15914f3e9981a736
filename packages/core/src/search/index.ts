/**
 * `@aikb/core/search`: semantic, full-text and hybrid search over PostgreSQL with pgvector that
 * applies the caller's access inside SQL, picks its strategy from how much the caller may read,
 * returns exactly k results or says `complete: false`, and checks query vectors before SQL.
 */
export type {
  AclEntry,
  DocumentInput,
  DocumentPage,
  DocumentSummary,
  Embedder,
  IndexResult,
  PostgresSearchStoreOptions,
  PrincipalIndex,
  TunePrincipalIndexesOptions,
  TunePrincipalIndexesResult,
  SearchFiltering,
  SearchLeg,
  SearchMode,
  SearchRequest,
  SearchResponse,
  SearchResult,
  SearchStats,
  SearchStore,
  SearchStrategy,
} from './search';
export { PUBLIC_PRINCIPAL } from './search';
export { MAX_VECTOR_ELEMENT, validateVector } from './validate-vector';
export type { ChunkOptions } from './chunker';
export { chunkText } from './chunker';
export type { HashingEmbedderOptions } from './hashing-embedder';
export { createHashingEmbedder } from './hashing-embedder';
export type { OpenAiEmbedderOptions } from './http-embedder';
export { createOpenAiEmbedder } from './http-embedder';
export { createPostgresSearchStore, searchStoreMigrations } from './postgres-search-store';
