import { describe, expect, it } from 'vitest';
import { describeEachDatabase } from '@aikb/test-support';
import { AikbError, UnavailableError, ValidationError } from '../errors';
import { isPgConnectionError, translatePgError, withTransaction } from './index';

const pgError = (code: string | undefined, message = `driver text ${code ?? ''} secret_table`) =>
  Object.assign(new Error(message), code === undefined ? {} : { code });

/** What translatePgError threw for `error`. */
function translated(error: unknown, options?: Parameters<typeof translatePgError>[1]): unknown {
  try {
    translatePgError(error, options);
  } catch (thrown) {
    return thrown;
  }
  throw new Error('translatePgError returned');
}

describe('translatePgError', () => {
  it.each([
    ['ECONNREFUSED'],
    ['ECONNRESET'],
    ['ETIMEDOUT'],
    ['57P01'], // admin shutdown
    ['57P02'], // crash shutdown
    ['57P03'], // cannot connect now
    ['08006'], // connection failure
    ['08001'],
    ['53300'], // too many connections
  ])('turns %s into an UnavailableError without the driver text', (code) => {
    const error = translated(pgError(code), { what: 'the user database' });
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toBe('the user database is unavailable');
    expect((error as Error).cause).toMatchObject({ code });
  });

  it.each(['Connection terminated unexpectedly', 'timeout exceeded when trying to connect', 'Connection terminated due to connection timeout'])(
    'turns the code-less driver error "%s" into an UnavailableError',
    (message) => {
      expect(translated(pgError(undefined, message))).toBeInstanceOf(UnavailableError);
    },
  );

  it.each([
    ['40001', 'serialization_failure'],
    ['40P01', 'deadlock'],
  ])('turns %s into a retryable UNAVAILABLE', (code, conflict) => {
    const error = translated(pgError(code)) as AikbError;
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error.details).toEqual({ retryable: true, conflict });
    expect(error.message).not.toMatch(/driver text/);
  });

  it('turns a unique violation (23505) into ALREADY_EXISTS without the constraint or table', () => {
    const error = translated(Object.assign(pgError('23505'), { constraint: 'secret_table_pkey' })) as AikbError;
    expect(error).toBeInstanceOf(AikbError);
    expect(error.code).toBe('ALREADY_EXISTS');
    expect(JSON.stringify({ message: error.message, details: error.details })).not.toMatch(/secret/);
  });

  it.each([
    ['22001', 'long'], // string too long: the longest field
    ['54000', 'long'], // program limit exceeded
    ['22P02', 'short'], // invalid text representation: the first field
    ['22021', 'nul'], // NUL: the field holding it
  ])('turns %s into a ValidationError naming the field', (code, field) => {
    const fields = code === '22021' ? { short: 'a', nul: 'b\u0000' } : { short: 'a', long: 'x'.repeat(50) };
    const error = translated(pgError(code), { fields }) as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.field).toBe(field);
    expect(error.message).not.toMatch(/driver text/);
  });

  it('rethrows an AikbError, a programming error and an unmapped SQLSTATE unchanged', () => {
    for (const error of [new AikbError('NOT_FOUND', 'x'), new TypeError('bug'), pgError('42P01'), 'a string']) {
      expect(translated(error)).toBe(error);
    }
  });

  it('does not call a plain error without a code a connection error', () => {
    expect(isPgConnectionError(new Error('something else'))).toBe(false);
    expect(isPgConnectionError(undefined)).toBe(false);
  });
});

describeEachDatabase('translatePgError on a real server', (db) => {
  it('maps the errors the server raises', async () => {
    const { pool } = db();
    await pool.query('CREATE TABLE IF NOT EXISTS pg_errors_items (name varchar(5) PRIMARY KEY, n int)');
    await pool.query('TRUNCATE pg_errors_items');
    await pool.query("INSERT INTO pg_errors_items VALUES ('a', 1)");
    // Literal SQL, no parameters: on PGlite an error in an extended-protocol query breaks the connection.
    const run = async (sql: string, fields?: Record<string, unknown>) => {
      try {
        await pool.query(sql);
      } catch (error) {
        return translated(error, { fields });
      }
      throw new Error(`${sql} succeeded`);
    };
    expect(await run("INSERT INTO pg_errors_items VALUES ('a', 2)")).toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(await run("INSERT INTO pg_errors_items VALUES ('toolong', 2)", { name: 'toolong' })).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'name' });
    expect(await run("INSERT INTO pg_errors_items VALUES ('b', 'nan')", { n: 'nan' })).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'n' });
    // The pool still works after each refusal (PGlite has one connection).
    expect((await pool.query('SELECT count(*)::int AS n FROM pg_errors_items')).rows[0]).toEqual({ n: 1 });
  });

  it('maps an error from inside a transaction, which is rolled back', async () => {
    const { pool } = db();
    await pool.query('CREATE TABLE IF NOT EXISTS pg_errors_tx (name text PRIMARY KEY)');
    await pool.query('TRUNCATE pg_errors_tx');
    const error = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO pg_errors_tx VALUES ('x')");
      await client.query("INSERT INTO pg_errors_tx VALUES ('x')");
    }).catch((e: unknown) => translated(e));
    expect(error).toMatchObject({ code: 'ALREADY_EXISTS' });
    expect((await pool.query('SELECT count(*)::int AS n FROM pg_errors_tx')).rows[0]).toEqual({ n: 0 });
  });
});

describe('translatePgError on a refused connection', () => {
  it('turns a real ECONNREFUSED from node-postgres into UNAVAILABLE', async () => {
    const pg = (await import('pg')).default;
    // Port 1 on loopback: nothing listens there, so the connect is refused at once.
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2000 });
    try {
      const error = await pool.query('SELECT 1').catch((e: unknown) => translated(e, { what: 'the store' }));
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as Error).message).toBe('the store is unavailable');
    } finally {
      await pool.end();
    }
  });
});
