import { ValidationError } from '../../errors';

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
  const problem = code === '22001' || code === '54000' ? 'is too large for the database' : code === '22021' || code === '22P05' ? 'holds a character the database cannot store' : 'is not a value the database accepts';
  return new ValidationError(field, `${field} ${problem}`, { cause: error });
}
