/**
 * `@aikb/core/db`: one way to get a `pg.Pool` (PostgreSQL server or embedded PGlite), schema
 * migrations that are safe under concurrent start-up, pgvector detection and a health check.
 */
export type { Database, DatabaseOptions, EmbeddedDatabaseOptions, PostgresDatabaseOptions, Queryable } from './database';
export { createDatabase } from './create-database';
export type { Migration, MigrateOptions, MigrateResult } from './migrations';
export { migrate } from './migrations';
export type { VectorSupport } from './vector';
export { ensureVectorExtension } from './vector';
export type { CheckDatabaseOptions, DatabaseCheck } from './check';
export { checkDatabase } from './check';
export type { IsolationLevel, TransactionOptions } from './transaction';
export { withTransaction } from './transaction';
export type { TranslatePgErrorOptions } from './internal/pg-errors';
export { isPgConnectionError, isPgRetryableError, translatePgError } from './internal/pg-errors';
