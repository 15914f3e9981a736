import { AikbError, UnavailableError, ValidationError } from '../../errors';

/** Driver (Node socket) error codes meaning the database could not be reached or the link broke. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * node-postgres and PGlite report a dropped or never-made connection without a code; these are
 * their wordings.
 */
const CONNECTION_MESSAGE =
  /connection terminated|timeout exceeded when trying to connect|query read timeout|not queryable|connection (?:error|closed)|pglite is closed/i;

const sqlState = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
};

/**
 * True when `error` says the database could not be reached or went away, so the operation may
 * succeed later: a socket error (ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...), SQLSTATE class 08
 * (connection exception), 57P01 (admin shutdown), 57P02 (crash shutdown), 57P03 (cannot connect
 * now: starting up), 53300 (too many connections), or a driver's "connection terminated".
 */
export function isPgConnectionError(error: unknown): boolean {
  const code = sqlState(error);
  if (code !== undefined && (SOCKET_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300'))
    return true;
  const message = error instanceof Error ? error.message : '';
  return code === undefined && CONNECTION_MESSAGE.test(message);
}

/**
 * True when `error` is a serialization failure (40001) or a deadlock (40P01): the transaction was
 * rolled back by the server and running it again from the start may succeed.
 */
export function isPgRetryableError(error: unknown): boolean {
  const code = sqlState(error);
  return code === '40001' || code === '40P01';
}

/** {@link translatePgError} options. */
export interface TranslatePgErrorOptions {
  /**
   * The input of the statement, by field name, so a value the server refused (SQLSTATE class 22,
   * 54000) becomes a ValidationError naming its field.
   * @default {}
   */
  fields?: Readonly<Record<string, unknown>>;
  /**
   * What was being reached, for the messages (`the user database`).
   * @default 'the database'
   */
  what?: string;
}

/**
 * The one translation of a PostgreSQL driver error into an {@link AikbError}, used by every store.
 * Messages never carry the driver's text (it is kept as `cause`, for logs only):
 *
 * | driver error | thrown |
 * | --- | --- |
 * | connection refused/reset/timed out, class 08, 57P01/57P02/57P03, 53300 | `UnavailableError` (`UNAVAILABLE`) |
 * | 40001 serialization failure, 40P01 deadlock | `UnavailableError` with `details.retryable: true` |
 * | 23505 unique violation | `AikbError('ALREADY_EXISTS')` |
 * | class 22 data exception, 54000 program limit exceeded | `ValidationError` naming the field (see `fields`) |
 * | an `AikbError`, or anything else | rethrown unchanged |
 *
 * @throws always: the translated error, or `error` itself
 * @example
 * ```ts
 * try { await pool.query(sql, [name]) }
 * catch (error) { translatePgError(error, { fields: { name }, what: 'the flag store' }) }
 * ```
 */
export function translatePgError(error: unknown, options: TranslatePgErrorOptions = {}): never {
  throw pgErrorToAikbError(error, options);
}

/** What {@link translatePgError} throws, returned instead (for callers that add their own fallback). */
export function pgErrorToAikbError(error: unknown, options: TranslatePgErrorOptions = {}): unknown {
  if (error instanceof AikbError) return error;
  const what = options.what ?? 'the database';
  if (isPgConnectionError(error)) return new UnavailableError(`${what} is unavailable`, { cause: error });
  if (isPgRetryableError(error)) {
    const conflict = sqlState(error) === '40P01' ? 'deadlock' : 'serialization_failure';
    return new UnavailableError(`${what} aborted a conflicting transaction; try again`, { cause: error, details: { retryable: true, conflict } });
  }
  if (sqlState(error) === '23505') return new AikbError('ALREADY_EXISTS', 'the record already exists', { cause: error });
  return invalidInputError(error, options.fields ?? {}) ?? error;
}

/**
 * The first of `fields` (strings, or arrays of strings) holding a NUL character, which PostgreSQL
 * refuses in any text value (SQLSTATE 22021).
 */
function nulField(fields: Readonly<Record<string, unknown>>): string | undefined {
  for (const [field, value] of Object.entries(fields)) {
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'string' && v.includes('\u0000'))) return field;
  }
  return undefined;
}

/**
 * Throws a ValidationError naming the first field that PostgreSQL would refuse (a string with a
 * NUL character), before the query is sent: on embedded PGlite a refused parameter also breaks
 * the one connection, so checking first keeps a bad input from failing the requests after it.
 *
 * @throws {ValidationError} naming the field
 */
export function assertStorable(fields: Readonly<Record<string, unknown>>): void {
  const field = nulField(fields);
  if (field !== undefined) throw new ValidationError(field, `${field} must not contain NUL characters (\\u0000)`);
}

/**
 * A PostgreSQL error caused by the input rather than the database (SQLSTATE class 22 "data
 * exception": invalid text representation 22P02, NUL 22021, too long 22001, out of range 22003,
 * ...; and 54000 "program limit exceeded", e.g. a value too large for an index) as a
 * ValidationError naming the field it most likely came from (the one with a NUL, else the
 * longest string, else the first); `undefined` for any other error. The server's message is kept
 * as the cause, for logs only.
 */
export function invalidInputError(error: unknown, fields: Readonly<Record<string, unknown>>): ValidationError | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (typeof code !== 'string' || !(code.startsWith('22') || code === '54000')) return undefined;
  const strings = Object.entries(fields).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
  const longest = strings.sort((a, b) => b[1].length - a[1].length)[0]?.[0];
  const field = nulField(fields) ?? (code === '22001' || code === '54000' ? longest : undefined) ?? Object.keys(fields)[0] ?? 'input';
  const problem =
    code === '22001' || code === '54000'
      ? 'is too large for the database'
      : code === '22021' || code === '22P05'
        ? 'holds a character the database cannot store'
        : 'is not a value the database accepts';
  return new ValidationError(field, `${field} ${problem}`, { cause: error });
}
