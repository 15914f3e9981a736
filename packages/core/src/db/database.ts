import type { Pool, PoolConfig } from 'pg';
import type { Logger } from '../logger';

/**
 * What aikb's Postgres code needs from a connection pool: `pg.Pool`'s `query` and `connect`.
 * A real `pg.Pool` and one served by embedded PGlite both fit, so every store is written once.
 */
export type Queryable = Pick<Pool, 'query' | 'connect'>;

/** Options shared by both kinds of database. */
interface CommonDatabaseOptions {
  /**
   * Where the pool reports idle-client errors and what it connected to.
   * @default noopLogger
   */
  logger?: Logger;
}

/** Connect to a PostgreSQL server. */
export interface PostgresDatabaseOptions extends CommonDatabaseOptions {
  /** A `postgres://` or `postgresql://` connection URL. */
  url: string;
  /**
   * Maximum number of connections in the pool.
   * @default 10
   */
  max?: number;
  /**
   * How long `pool.connect()` waits for a connection before failing, in milliseconds (pg's
   * `connectionTimeoutMillis`).
   * @default 5000
   */
  connectionTimeoutMs?: number;
  /** Any further `pg.PoolConfig` fields, applied last. */
  poolConfig?: Omit<PoolConfig, 'connectionString' | 'max'>;
}

/** Run an embedded PostgreSQL (PGlite, WebAssembly) in this process. */
export interface EmbeddedDatabaseOptions extends CommonDatabaseOptions {
  url?: undefined;
  /**
   * A directory whose data survives restarts, or `memory://` for a throw-away database.
   * Only one process may open a directory at a time; a second one fails with `FAILED_PRECONDITION`.
   * @default 'memory://'
   */
  dataDir?: string;
  /**
   * Load the pgvector extension into PGlite (`@electric-sql/pglite-pgvector`).
   * @default true
   */
  vector?: boolean;
}

/** {@link createDatabase} options: a server URL, or an embedded database. */
export type DatabaseOptions = PostgresDatabaseOptions | EmbeddedDatabaseOptions;

/** A `pg.Pool` together with what it is connected to. */
export interface Database {
  /** The pool every store takes. Embedded PGlite serves exactly one connection. */
  readonly pool: Pool;
  /** `postgres` for a server reached by URL, `pglite` for the embedded database. */
  readonly kind: 'postgres' | 'pglite';
  /** Where the data lives, safe to log: the URL without its password, or the PGlite data dir. */
  readonly target: string;
  /** Ends the pool and, for PGlite, closes the database and releases its data directory. */
  close(): Promise<void>;
}
