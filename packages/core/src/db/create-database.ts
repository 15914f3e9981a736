import type { PGlite } from '@electric-sql/pglite';
import type { Pool } from 'pg';
import { AikbError } from '../errors';
import { noopLogger } from '../logger';
import { checkOptions } from '../options';
import type { Database, DatabaseOptions, EmbeddedDatabaseOptions, PostgresDatabaseOptions } from './database';
import { lockDataDir } from './internal/data-dir-lock';
import { checkPostgresUrl, redactUrl } from './internal/url';

const EMBEDDED_IN_MEMORY = 'memory://';

/**
 * Gets a `pg.Pool`: connected to a PostgreSQL server when `url` is given, otherwise to an
 * embedded PostgreSQL (PGlite) in memory or in a data directory.
 *
 * Nothing connects at creation for a server URL: a database that is down now is reached as soon
 * as it comes back, and idle-connection errors are logged instead of crashing the process.
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 * @throws {AikbError} `FAILED_PRECONDITION` when the PGlite packages are missing or the data directory is in use
 *
 * @example
 * ```ts
 * const db = await createDatabase({ url: process.env.DATABASE_URL })   // real Postgres
 * const dev = await createDatabase({ dataDir: './data' })             // embedded, survives restarts
 * await db.pool.query('SELECT 1')
 * await db.close()
 * ```
 */
export async function createDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const check = checkOptions('createDatabase', options);
  check.string('url', false, true);
  check.number('max', { min: 1, integer: true });
  check.number('connectionTimeoutMs', { min: 1, integer: true });
  check.object('poolConfig', 'an object');
  check.boolean('vector');
  check.logger();
  return options.url === undefined ? createEmbedded(options) : createPostgres(options);
}

async function createPostgres(options: PostgresDatabaseOptions): Promise<Database> {
  const checked = checkPostgresUrl(options.url);
  if (!checked.ok) throw new TypeError(`createDatabase: url ${checked.problem}`);
  const max = options.max ?? 10;
  const connectionTimeoutMillis = options.connectionTimeoutMs ?? 5000;
  const logger = options.logger ?? noopLogger;
  const target = redactUrl(checked.url);

  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: options.url,
    max,
    connectionTimeoutMillis,
    ...options.poolConfig,
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled, it would crash the process.
  pool.on('error', (error) => logger.warn({ err: error, database: target }, 'idle database connection failed'));
  let closed = false;
  return {
    pool,
    kind: 'postgres',
    target,
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

async function createEmbedded(options: EmbeddedDatabaseOptions): Promise<Database> {
  const dataDir = options.dataDir ?? EMBEDDED_IN_MEMORY;
  if (typeof dataDir !== 'string' || dataDir.length === 0) {
    throw new TypeError('createDatabase: dataDir must be a non-empty path or "memory://"');
  }
  const vector = options.vector ?? true;
  const logger = options.logger ?? noopLogger;

  const [pglite, adapter, pg, pgvector] = await Promise.all([
    importOptional('@electric-sql/pglite', () => import('@electric-sql/pglite')),
    importOptional('@electric-sql/pglite', () => import('@electric-sql/pglite/node-postgres')),
    import('pg'),
    vector ? importOptional('@electric-sql/pglite-pgvector', () => import('@electric-sql/pglite-pgvector')) : undefined,
  ]);

  const inMemory = dataDir.startsWith(EMBEDDED_IN_MEMORY);
  const unlock = inMemory ? () => {} : lockDataDir(dataDir);
  // PGlite.create's generic return type widens to `any`; the instance type is what `close()` needs.
  let db: PGlite;
  try {
    db = await pglite.PGlite.create({
      dataDir,
      ...(pgvector ? { extensions: { vector: pgvector.vector } } : {}),
    });
  } catch (error) {
    unlock();
    throw new AikbError('FAILED_PRECONDITION', `could not open embedded database at ${dataDir}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // PGlite is one single-user backend: the adapter serves exactly one connection.
  const pool: Pool = new pg.default.Pool({ ...adapter.createPgConfig(db), max: 1 });
  pool.on('error', (error) => logger.warn({ err: error, database: dataDir }, 'embedded database connection failed'));
  let closed = false;
  return {
    pool,
    kind: 'pglite',
    target: inMemory ? EMBEDDED_IN_MEMORY : dataDir,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await pool.end();
        await db.close();
      } finally {
        unlock();
      }
    },
  };
}

async function importOptional<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' || (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') {
      throw new AikbError(
        'FAILED_PRECONDITION',
        `the embedded database needs the optional dependency ${name}: npm install ${name}, or pass a url to use a PostgreSQL server`,
        { cause: error },
      );
    }
    throw error;
  }
}
