import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import { AikbError } from '../errors';
import { noopLogger, type Logger } from '../logger';
import type { Queryable } from './database';

/**
 * One schema change. Migrations are applied in the order given, each in its own transaction,
 * and recorded by `id`; an applied migration is never run again.
 *
 * Ids are global across everything that shares the database: prefix them with the owner
 * (`flags.0001_create_tables`).
 */
export interface Migration {
  /** Unique, stable id. */
  readonly id: string;
  /** SQL to run (may hold several statements), or a function given the migration's client. */
  readonly up: string | ((client: PoolClient) => Promise<void>);
}

/** {@link migrate} options. */
export interface MigrateOptions {
  /**
   * Table that records applied migrations.
   * @default 'aikb_migrations'
   */
  tableName?: string;
  /** @default noopLogger */
  logger?: Logger;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** Ids applied by this call, in order. */
  readonly applied: readonly string[];
  /** Ids that were already applied. */
  readonly skipped: readonly string[];
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function checksum(migration: Migration): string {
  const body = typeof migration.up === 'string' ? migration.up : migration.up.toString();
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

/**
 * Applies the pending migrations. Safe when several instances start at once: a session-level
 * advisory lock (keyed by the table name) lets one instance migrate while the others wait, then
 * find nothing left to do.
 *
 * A migration whose SQL changed after it was applied fails the run (`FAILED_PRECONDITION`):
 * write a new migration instead of editing an old one.
 *
 * @throws {TypeError} on duplicate or malformed ids, or a bad table name
 * @throws {AikbError} `FAILED_PRECONDITION` on a changed migration; the database error when one fails (its transaction is rolled back)
 *
 * @example
 * ```ts
 * await migrate(db.pool, [...flagStoreMigrations, ...userStoreMigrations], { logger })
 * ```
 */
export async function migrate(pool: Queryable, migrations: readonly Migration[], options: MigrateOptions = {}): Promise<MigrateResult> {
  const tableName = options.tableName ?? 'aikb_migrations';
  if (!IDENTIFIER.test(tableName)) throw new TypeError(`migrate: tableName must match ${IDENTIFIER} (got ${tableName})`);
  const logger = options.logger ?? noopLogger;
  const seen = new Set<string>();
  for (const migration of migrations) {
    if (typeof migration?.id !== 'string' || migration.id.length === 0) throw new TypeError('migrate: every migration needs a non-empty id');
    if (seen.has(migration.id)) throw new TypeError(`migrate: duplicate migration id ${migration.id}`);
    seen.add(migration.id);
  }

  const client = await pool.connect();
  const applied: string[] = [];
  const skipped: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [tableName]);
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${tableName} (
           id text PRIMARY KEY,
           checksum text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const { rows } = await client.query<{ id: string; checksum: string }>(`SELECT id, checksum FROM ${tableName}`);
      const done = new Map(rows.map((row) => [row.id, row.checksum]));
      for (const migration of migrations) {
        const sum = checksum(migration);
        const previous = done.get(migration.id);
        if (previous !== undefined) {
          if (previous !== sum) {
            throw new AikbError('FAILED_PRECONDITION', `migration ${migration.id} was changed after it was applied; add a new migration instead`);
          }
          skipped.push(migration.id);
          continue;
        }
        await client.query('BEGIN');
        try {
          if (typeof migration.up === 'string') await client.query(migration.up);
          else await migration.up(client);
          await client.query(`INSERT INTO ${tableName} (id, checksum) VALUES ($1, $2)`, [migration.id, sum]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
        applied.push(migration.id);
        logger.info({ migration: migration.id }, 'migration applied');
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [tableName]).catch(() => {});
    }
  } catch (error) {
    // A client in an unknown state must not go back to the pool.
    client.release(error instanceof Error ? error : true);
    throw error;
  }
  client.release();
  return { applied, skipped };
}
