import { randomUUID } from 'node:crypto';
import { AikbError, UnavailableError } from '../errors';
import type { Migration, Queryable } from '../db';
import { assertStorable, invalidInputError } from '../db/internal/pg-errors';
import type { NewUser, User, UserPatch, UserRecord, UserStore } from './auth';

/** The users table. Apply with `migrate(pool, userStoreMigrations)`. */
export const userStoreMigrations: readonly Migration[] = Object.freeze([
  {
    id: 'auth.0001_create_users',
    up: `CREATE TABLE IF NOT EXISTS aikb_users (
           id text PRIMARY KEY,
           email text NOT NULL,
           password_hash text,
           roles text[] NOT NULL DEFAULT '{}',
           disabled boolean NOT NULL DEFAULT false,
           created_at timestamptz NOT NULL DEFAULT now(),
           updated_at timestamptz NOT NULL DEFAULT now()
         );
         CREATE UNIQUE INDEX IF NOT EXISTS aikb_users_email_lower ON aikb_users (lower(email));`,
  },
]);

interface Row {
  id: string;
  email: string;
  password_hash: string | null;
  roles: string[];
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, email, password_hash, roles, disabled, created_at, updated_at';

function record(row: Row): UserRecord {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    roles: row.roles ?? [],
    disabled: row.disabled,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

const publicUser = ({ passwordHash: _hash, ...user }: UserRecord): User => user;

const emailTaken = (cause?: unknown) => new AikbError('ALREADY_EXISTS', 'a user with this email already exists', { details: { field: 'email' }, cause });

/**
 * Unique violations become `ALREADY_EXISTS`; input the server refused, a ValidationError naming
 * the field; errors without a server answer become `UnavailableError`.
 */
function translate(error: unknown, fields: Readonly<Record<string, unknown>>): never {
  const code = (error as { code?: string }).code;
  if (code === '23505') throw emailTaken(error);
  const invalid = invalidInputError(error, fields);
  if (invalid) throw invalid;
  // A server-side error carries a SQLSTATE (5 characters); anything else is the connection.
  if (typeof code !== 'string' || code.length !== 5) throw new UnavailableError('the user database is unavailable', { cause: error });
  throw error;
}

class PostgresUserStore implements UserStore {
  readonly #pool: Queryable;

  constructor(pool: Queryable) {
    this.#pool = pool;
  }

  /** `fields` names the input in `params`, for the ValidationError of a value the server would refuse. */
  async #query(sql: string, params: unknown[], fields: Readonly<Record<string, unknown>> = {}): Promise<Row[]> {
    assertStorable(fields);
    try {
      return (await this.#pool.query<Row>(sql, params)).rows;
    } catch (error) {
      return translate(error, fields);
    }
  }

  async findByEmail(email: string) {
    const [row] = await this.#query(`SELECT ${COLUMNS} FROM aikb_users WHERE lower(email) = lower($1)`, [email], { email });
    return row ? record(row) : undefined;
  }

  async get(id: string) {
    const [row] = await this.#query(`SELECT ${COLUMNS} FROM aikb_users WHERE id = $1`, [id], { id });
    return row ? record(row) : undefined;
  }

  async list() {
    return (await this.#query(`SELECT ${COLUMNS} FROM aikb_users ORDER BY created_at, id`, [])).map((row) => publicUser(record(row)));
  }

  async create(user: NewUser) {
    // ON CONFLICT rather than catching 23505: an error inside an extended-protocol query breaks
    // the embedded PGlite connection, and a taken email is an expected outcome, not an error.
    const [row] = await this.#query(
      `INSERT INTO aikb_users (id, email, password_hash, roles, disabled) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT ((lower(email))) DO NOTHING RETURNING ${COLUMNS}`,
      [randomUUID(), user.email, user.passwordHash, [...(user.roles ?? [])], user.disabled ?? false],
      { email: user.email, roles: user.roles },
    );
    if (!row) throw emailTaken();
    return publicUser(record(row));
  }

  async update(id: string, patch: UserPatch) {
    const sets: string[] = [];
    const params: unknown[] = [id];
    const set = (column: string, value: unknown) => {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    };
    if (patch.email !== undefined) set('email', patch.email);
    if (patch.passwordHash !== undefined) set('password_hash', patch.passwordHash);
    if (patch.roles !== undefined) set('roles', [...patch.roles]);
    if (patch.disabled !== undefined) set('disabled', patch.disabled);
    sets.push('updated_at = now()');
    let guard = '';
    if (patch.email !== undefined) {
      params.push(patch.email);
      guard = ` AND NOT EXISTS (SELECT 1 FROM aikb_users other WHERE lower(other.email) = lower($${params.length}) AND other.id <> $1)`;
    }
    const [row] = await this.#query(`UPDATE aikb_users SET ${sets.join(', ')} WHERE id = $1${guard} RETURNING ${COLUMNS}`, params, { id, ...patch });
    if (row) return publicUser(record(row));
    if (guard && (await this.get(id))) throw emailTaken();
    return undefined;
  }

  async delete(id: string) {
    return (await this.#query('DELETE FROM aikb_users WHERE id = $1 RETURNING id', [id], { id })).length > 0;
  }
}

/**
 * Creates a {@link UserStore} on a `pg.Pool` (a server or embedded PGlite), in the table
 * `aikb_users` created by {@link userStoreMigrations}.
 */
export function createPostgresUserStore(pool: Queryable): UserStore {
  if (!pool || typeof pool.query !== 'function') throw new TypeError('createPostgresUserStore: pool must be a pg.Pool');
  return new PostgresUserStore(pool);
}
