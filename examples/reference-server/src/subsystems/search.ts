import type { Router } from 'express';
import { UnavailableError, type Logger } from '@aikb/core';
import { ensureVectorExtension, migrate, type Queryable } from '@aikb/core/db';
import {
  createHashingEmbedder,
  createOpenAiEmbedder,
  createPostgresSearchStore,
  searchStoreMigrations,
  type Embedder,
  type SearchStore,
} from '@aikb/core/search';
import { searchAdminRouter, searchIndexAdminRouter, searchRouter } from '@aikb/express';
import { HASHING_DIMENSIONS, type EmbeddingsConfig } from '../config';
import type { ServerContext } from '../context';
import type { Subsystem } from '../lifecycle';

/** Query vectors are checked before SQL (runbook: priority 1.1). */
export const VECTOR_VALIDATION_FLAG = 'priority_1_1_vector_validation';
/** Search results are filtered by access inside SQL (runbook: priority 2.2). */
export const RBAC_FILTERING_FLAG = 'priority_2_2_rbac_api_filtering';
/** The default (hashing) embedder's dimension: D of the search schema when `EMBEDDINGS_URL` is unset. */
export const SEARCH_DIMENSIONS = HASHING_DIMENSIONS;

/**
 * The embedder the configuration names: the local hashing one, or an OpenAI-compatible server
 * (requests time out, are retried on 429/5xx, and their vectors checked against D). The API key
 * only goes into the `Authorization` header: the embedder's `id` (shown in health and logs) is
 * the server's host and the model.
 */
export function createSearchEmbedder(embeddings: EmbeddingsConfig, logger: Logger): Embedder {
  if (embeddings.kind === 'hashing') return createHashingEmbedder({ dimensions: embeddings.dimensions });
  return createOpenAiEmbedder({
    baseUrl: embeddings.url,
    model: embeddings.model,
    dimensions: embeddings.dimensions,
    apiKey: embeddings.apiKey,
    sendDimensions: embeddings.sendDimensions,
    timeoutMs: embeddings.timeoutMs,
    batchSize: embeddings.batchSize,
    logger,
  });
}

const HASHING: EmbeddingsConfig = { kind: 'hashing', dimensions: HASHING_DIMENSIONS };

/** What {@link migrateSearchTables} did: the search migrations it ran, or why it ran none. */
export type SearchTablesOutcome =
  | { readonly kind: 'migrated'; readonly applied: readonly string[]; readonly upToDate: number; readonly pgvector: string; readonly dimensions: number }
  | { readonly kind: 'skipped'; readonly reason: string };

/**
 * The search tables of the server for `aikb migrate`, with D from the configured embedder
 * (`embeddings`, default the hashing one: {@link SEARCH_DIMENSIONS}): installs pgvector and
 * applies `searchStoreMigrations` when the database can have it; without pgvector (or the right to
 * create it) applies nothing and says why. Other database errors are thrown. Tables made for
 * another D stay as they are: the server then refuses to start, naming both.
 */
export async function migrateSearchTables(pool: Queryable, logger: Logger, embeddings: EmbeddingsConfig = HASHING): Promise<SearchTablesOutcome> {
  const vector = await ensureVectorExtension(pool);
  if (!vector.available) return { kind: 'skipped', reason: vector.reason };
  const { dimensions } = embeddings;
  const result = await migrate(pool, searchStoreMigrations({ dimensions }), { logger });
  return { kind: 'migrated', applied: result.applied, upToDate: result.skipped.length, pgvector: vector.version, dimensions };
}

/**
 * One embedding at start-up, in the background, so a wrong URL, model, key or D shows in the log
 * at once rather than on the first upload. It never stops the start: the server may come up
 * before its embedding server does.
 */
async function probeEmbedder(embedder: Embedder, logger: Logger): Promise<void> {
  try {
    await embedder.embed(['aikb-server start-up check']);
    logger.info({ embedder: embedder.id }, `search: the embedding server answers (${embedder.id}, ${embedder.dimensions} dimensions)`);
  } catch (error) {
    logger.warn({ err: error, embedder: embedder.id }, `search: the embedding server failed its start-up check: ${(error as Error).message}`);
  }
}

/** What the search subsystem gives the app. */
export interface SearchSubsystem {
  /** The store; every call is an `UnavailableError` (503) while search is unavailable. */
  readonly store: SearchStore;
  /** `POST /search`, `GET /documents`, `GET /documents/:id`: mount under `/api` behind `requireUser`. */
  readonly userRoutes: Router;
  /** Document administration: mount at `/api/admin/documents` behind the admin guard. */
  readonly adminRoutes: Router;
  /** Per-principal HNSW indexes: mount at `/api/admin/search/indexes` behind the admin guard. */
  readonly indexRoutes: Router;
  /** Why search cannot take documents now (starting, no pgvector, a failed start), or `undefined` when it is ready. */
  readonly unavailable: () => string | undefined;
}

type SearchNeeds = Pick<ServerContext, 'config' | 'logger' | 'infra' | 'status' | 'flags' | 'meter'>;

type SearchState = { readonly kind: 'starting' } | { readonly kind: 'ready' } | { readonly kind: 'unavailable'; readonly reason: string };

/** A store whose every call waits for nothing: it fails with 503 until search is ready. */
function gate(store: SearchStore, state: () => SearchState): SearchStore {
  const check = () => {
    const current = state();
    if (current.kind === 'ready') return;
    throw new UnavailableError(current.kind === 'starting' ? 'search is starting: the database is not ready yet' : `search is unavailable: ${current.reason}`);
  };
  return {
    dimensions: store.dimensions,
    start: () => store.start(),
    indexDocument: async (document) => (check(), store.indexDocument(document)),
    reindexDocument: async (document) => (check(), store.reindexDocument(document)),
    deleteDocument: async (id) => (check(), store.deleteDocument(id)),
    setAcl: async (id, acl) => (check(), store.setAcl(id, acl)),
    getDocument: async (principal, id) => (check(), store.getDocument(principal, id)),
    listDocuments: async (principal, options) => (check(), store.listDocuments(principal, options)),
    search: async (request) => (check(), store.search(request)),
    createPrincipalIndex: async (principal) => (check(), store.createPrincipalIndex(principal)),
    dropPrincipalIndex: async (principal) => (check(), store.dropPrincipalIndex(principal)),
    listPrincipalIndexes: async () => (check(), store.listPrincipalIndexes()),
    tunePrincipalIndexes: async (options) => (check(), store.tunePrincipalIndexes(options)),
    stats: () => store.stats(),
  };
}

/**
 * Starts search on the server database: the search tables (D of the configured embedder: the
 * local hashing one with D = 256 unless `EMBEDDINGS_URL` names an OpenAI-compatible server),
 * a health component (`search`: `ok`, or `disabled` with the reason when the database has no
 * pgvector — the server still starts), its stats in the system status, and the routes, gated by
 * `priority_1_1_vector_validation` and `priority_2_2_rbac_api_filtering` per user.
 *
 * A schema made for another dimension is a start-up error naming both (when the database is up at
 * start-up; otherwise logged, and search stays unavailable).
 */
async function startSearch(ctx: SearchNeeds): Promise<{ search: SearchSubsystem }> {
  const { infra, logger, flags } = ctx;
  const embedder = createSearchEmbedder(ctx.config.embeddings, logger);
  const real = createPostgresSearchStore({ pool: infra.db.pool, embedder, logger, meter: ctx.meter });
  let state: SearchState = { kind: 'starting' };

  const ready = infra.migrated.then(async () => {
    const vector = infra.vector();
    if (!vector?.available) {
      state = { kind: 'unavailable', reason: vector?.reason ?? 'pgvector support is unknown' };
      logger.warn({ reason: state.reason }, `search unavailable: ${state.reason}`);
      return;
    }
    await migrate(infra.db.pool, searchStoreMigrations({ dimensions: embedder.dimensions }), { logger });
    await real.start();
    state = { kind: 'ready' };
    logger.info({ embedder: embedder.id, pgvector: vector.version }, `search: ready (pgvector ${vector.version}, embedder ${embedder.id})`);
    if (ctx.config.embeddings.kind === 'openai') void probeEmbedder(embedder, logger);
  });
  const failed = ready.catch((error: unknown) => {
    const reason = (error as Error).message;
    state = { kind: 'unavailable', reason };
    logger.error({ err: error }, `search unavailable: ${reason}`);
    return error;
  });
  // Migrated already (embedded, or a server database that was up): a schema mismatch stops the start.
  if (infra.vector() !== undefined) {
    // The CLI prints an AikbError's message as the one line an operator sees.
    const error = await failed;
    if (error !== undefined) throw error as Error;
  }

  infra.health.register('search', () => {
    switch (state.kind) {
      case 'ready':
        return { status: 'ok', embedder: embedder.id, dimensions: embedder.dimensions };
      case 'starting':
        return { status: 'degraded', state: 'starting' };
      case 'unavailable':
        return { status: 'disabled', available: false, reason: state.reason };
    }
  });
  ctx.status.register('search', () => ({ state: state.kind, ...real.stats() }));

  const store = gate(real, () => state);
  const userRoutes = searchRouter({
    search: store,
    vectorValidation: (_req, principal) => flags.isEnabled(VECTOR_VALIDATION_FLAG, { userId: principal.userId }, true),
    rbacFiltering: (_req, principal) => flags.isEnabled(RBAC_FILTERING_FLAG, { userId: principal.userId }, true),
  });
  const unavailable = () =>
    state.kind === 'ready'
      ? undefined
      : state.kind === 'starting'
        ? 'search is starting: the database is not ready yet'
        : `search is unavailable: ${state.reason}`;
  return {
    search: {
      store,
      userRoutes,
      adminRoutes: searchAdminRouter({ search: store }),
      indexRoutes: searchIndexAdminRouter({ search: store, logger }),
      unavailable,
    },
  };
}

/** The search subsystem: provides `search`. Nothing to close (it uses the shared pool). */
export const searchSubsystem: Subsystem<SearchNeeds, { search: SearchSubsystem }> = {
  name: 'search',
  start: startSearch,
};
