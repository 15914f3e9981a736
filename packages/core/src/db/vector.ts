import type { Queryable } from './database';

/** Whether pgvector can be used, and if not, why. */
export type VectorSupport = { readonly available: true; readonly version: string } | { readonly available: false; readonly reason: string };

/**
 * Makes sure the pgvector extension is installed in the database (`CREATE EXTENSION IF NOT
 * EXISTS vector`) and says clearly when it cannot be: the server lacks the pgvector package, or
 * the role may not create extensions. Never throws for those cases; other errors (the database is
 * down) are thrown.
 */
export async function ensureVectorExtension(pool: Queryable): Promise<VectorSupport> {
  try {
    await pool.query('CREATE EXTENSION IF NOT EXISTS vector');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '0A000' || code === '58P01') {
      return {
        available: false,
        reason:
          'this PostgreSQL server has no pgvector extension (extension "vector" is not available): ' +
          'install pgvector on the server (e.g. the postgresql-<version>-pgvector package) to enable vector search',
      };
    }
    if (code === '42501') {
      return {
        available: false,
        reason: 'the database role may not create the "vector" extension: run CREATE EXTENSION vector as a superuser once',
      };
    }
    throw error;
  }
  const { rows } = await pool.query<{ extversion: string }>("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
  return { available: true, version: rows[0]?.extversion ?? 'unknown' };
}
