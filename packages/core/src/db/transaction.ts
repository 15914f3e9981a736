import type { Pool, PoolClient } from 'pg';
import { noopLogger, type Logger } from '../logger';
import { isPgRetryableError } from './internal/pg-errors';

/** The isolation levels {@link withTransaction} can start a transaction with. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

const ISOLATION_LEVELS: readonly IsolationLevel[] = ['read committed', 'repeatable read', 'serializable'];
const MAX_RETRIES = 10;

/** {@link withTransaction} options. */
export interface TransactionOptions {
  /**
   * The transaction's isolation level; the server's default (normally read committed) when unset.
   * @default undefined
   */
  isolationLevel?: IsolationLevel;
  /**
   * How many times to run `fn` again, from a fresh transaction, after a serialization failure
   * (40001) or a deadlock (40P01); at most 10. `fn` must then be safe to run more than once.
   * @default 0
   */
  retries?: number;
  /**
   * Where a failed ROLLBACK is reported (it never replaces the error that caused it).
   * @default noopLogger
   */
  logger?: Logger;
}

function resolveOptions(options: TransactionOptions): Required<Omit<TransactionOptions, 'isolationLevel'>> & Pick<TransactionOptions, 'isolationLevel'> {
  const { isolationLevel, retries = 0, logger = noopLogger } = options;
  if (isolationLevel !== undefined && !ISOLATION_LEVELS.includes(isolationLevel)) {
    throw new TypeError(`withTransaction: isolationLevel must be one of ${ISOLATION_LEVELS.join(', ')} (got ${String(isolationLevel)})`);
  }
  if (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES) {
    throw new TypeError(`withTransaction: retries must be an integer from 0 to ${MAX_RETRIES} (got ${String(retries)})`);
  }
  if (!logger || typeof logger.error !== 'function') throw new TypeError('withTransaction: logger must be a Logger');
  return { isolationLevel, retries, logger };
}

/**
 * Runs `fn` inside one transaction on one client from `pool.connect()`: BEGIN, then COMMIT when
 * `fn` resolves, ROLLBACK when it throws (the error `fn` threw is rethrown; a failing ROLLBACK is
 * logged, never thrown in its place). The client is released in every case, and discarded when
 * the ROLLBACK failed, so a broken connection is not handed to the next caller.
 *
 * `fn` must run every statement on the `client` it is given, never on `pool`: on embedded PGlite
 * the pool has one connection, which the transaction holds, so a `pool.query` inside `fn` waits
 * for itself forever (and on a server it would run outside the transaction).
 *
 * Driver errors are rethrown as they are; pass them to {@link translatePgError} to get an
 * `AikbError`.
 *
 * @throws {TypeError} when an option is invalid (before connecting)
 * @throws whatever `fn`, BEGIN or COMMIT threw, after the last retry
 * @example
 * ```ts
 * const id = await withTransaction(db.pool, async (client) => {
 *   const { rows } = await client.query('INSERT INTO orders (total) VALUES ($1) RETURNING id', [total])
 *   await client.query('INSERT INTO order_events (order_id, kind) VALUES ($1, $2)', [rows[0].id, 'created'])
 *   return rows[0].id
 * }, { isolationLevel: 'serializable', retries: 3 })
 * ```
 */
export async function withTransaction<T>(pool: Pick<Pool, 'connect'>, fn: (client: PoolClient) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  if (!pool || typeof pool.connect !== 'function') throw new TypeError('withTransaction: pool must be a pg.Pool');
  if (typeof fn !== 'function') throw new TypeError('withTransaction: fn must be a function');
  const { isolationLevel, retries, logger } = resolveOptions(options);
  const begin = isolationLevel === undefined ? 'BEGIN' : `BEGIN ISOLATION LEVEL ${isolationLevel.toUpperCase()}`;
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(pool, fn, begin, logger);
    } catch (error) {
      if (attempt >= retries || !isPgRetryableError(error)) throw error;
      logger.debug({ attempt: attempt + 1, code: (error as { code?: string }).code }, 'transaction aborted by a conflicting one; running it again');
    }
  }
}

async function once<T>(pool: Pick<Pool, 'connect'>, fn: (client: PoolClient) => Promise<T>, begin: string, logger: Logger): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    try {
      await client.query(begin);
    } catch (error) {
      // A BEGIN that fails leaves the connection in an unknown state: do not pool it again.
      broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        logger.error({ err: rollbackError }, 'ROLLBACK failed; discarding the connection');
      }
      throw error;
    }
  } finally {
    client.release(broken);
  }
}
