/**
 * Shared fixtures of the search suites (not shipped): a database with pgvector and the search
 * tables, an embedder with chosen vectors, and the ground truth the results are checked against.
 */
import { beforeEach } from 'vitest';
import { seededRandom, servicesRequired, type TestBackend } from '@aikb/test-support';
import type { Database } from '../db/database';
import { migrate } from '../db/migrations';
import { ensureVectorExtension } from '../db/vector';
import type { Embedder } from './search';
import { searchStoreMigrations } from './postgres-search-store';

/**
 * Installs pgvector and the search tables for `dimensions`. Without pgvector the suite fails on
 * PGlite and when services are required (`AIKB_REQUIRE_SERVICES=1`), and is skipped otherwise
 * (a developer's server without pgvector), saying why.
 */
export async function prepareSearchDatabase(db: Database, backend: TestBackend['name'], dimensions: number): Promise<{ available: boolean }> {
  const support = await ensureVectorExtension(db.pool);
  if (!support.available) {
    if (backend === 'pglite' || servicesRequired) throw new Error(`pgvector is required for the search suites on ${backend}: ${support.reason}`);
    console.warn(`[aikb tests] search suites skipped on ${backend}: ${support.reason} (bash ../shared/vendor/install-pgvector.sh installs it)`);
    return { available: false };
  }
  await migrate(db.pool, searchStoreMigrations({ dimensions }));
  return { available: true };
}

/** Skips each test of the suite when {@link prepareSearchDatabase} found no pgvector (and was allowed to). */
export function skipWithoutVector(state: () => { available: boolean } | undefined): void {
  beforeEach((context) => {
    if (state()?.available === false) context.skip();
  });
}

/** Empties the search tables (the schema and D stay). */
export async function clearSearchTables(db: Database): Promise<void> {
  await db.pool.query('TRUNCATE aikb_search_chunks, aikb_search_acl, aikb_search_principal_chunks, aikb_search_documents');
}

/**
 * An embedder that maps texts to chosen vectors: a text `vec:<name>` (its first line after the
 * title line) gets `vectors.get(name)`; any other text a fixed vector. Lets tests know the exact
 * nearest neighbours.
 */
export function createTableEmbedder(dimensions: number, vectors: ReadonlyMap<string, readonly number[]>): Embedder {
  const fallback = Array.from({ length: dimensions }, (_, i) => (i === 0 ? 1 : 0));
  return {
    id: `table/${dimensions}`,
    dimensions,
    embed(texts) {
      return Promise.resolve(
        texts.map((text) => {
          const name = /vec:(\S+)/.exec(text)?.[1];
          return [...((name !== undefined ? vectors.get(name) : undefined) ?? fallback)];
        }),
      );
    },
  };
}

export { seededRandom };

/** A random unit vector of `dimensions` (Gaussian-ish components, so directions are uniform enough). */
export function randomUnitVector(random: () => number, dimensions: number): number[] {
  const v = Array.from({ length: dimensions }, () => random() + random() + random() - 1.5);
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/** Cosine distance, as pgvector's `<=>` computes it. */
export function cosineDistance(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return 1 - dot / Math.sqrt(na * nb);
}

/** The names of the `k` vectors of `candidates` nearest to `query`, exactly. */
export function exactNearest(query: readonly number[], candidates: ReadonlyMap<string, readonly number[]>, k: number): string[] {
  return [...candidates]
    .map(([name, v]) => ({ name, d: cosineDistance(query, v) }))
    .sort((a, b) => a.d - b.d)
    .slice(0, k)
    .map((e) => e.name);
}
