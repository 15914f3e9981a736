import { randomUUID } from 'node:crypto';
import { AikbError } from '../errors';
import type { Migration, Queryable } from '../db';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import { assertStorable, translatePgError } from '../db/internal/pg-errors';
import type { NewUser, User, UserChange, UserChangeOptions, UserPatch, UserRecord, UserStore } from './auth';
import { actorOf, changedFields, historyLimit, revokes } from './internal/user-changes';

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
  {
    // The token generation revokes a user's tokens; the audit trail outlives the user.
    id: 'auth.0002_token_generation_and_audit',
    up: `ALTER TABLE aikb_users ADD COLUMN IF NOT EXISTS token_generation integer NOT NULL DEFAULT 0;
         CREATE TABLE IF NOT EXISTS aikb_user_audit (
           id bigserial PRIMARY KEY,
           user_id text NOT NULL,
           action text NOT NULL,
           actor text NOT NULL,
           fields text[] NOT NULL DEFAULT '{}',
           after jsonb,
           at timestamptz NOT NULL DEFAULT now()
         );
         CREATE INDEX IF NOT EXISTS aikb_user_audit_user ON aikb_user_audit (user_id, id);`,
  },
]);

interface Row {
  id: string;
  email: string;
  password_hash: string | null;
  roles: string[];
  disabled: boolean;
  token_generation: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, email, password_hash, roles, disabled, token_generation, created_at, updated_at';
/** Appends the audit entry of the rows of CTE `changed` ($2: actor, $3: fields) to a data-modifying statement. */
const AUDITED = (action: 'create' | 'update' | 'delete') => `, audit AS (
  INSERT INTO aikb_user_audit (user_id, action, actor, fields, after)
  SELECT id, '${action}', $2, $3::text[], ${action === 'delete' ? 'NULL' : "jsonb_build_object('email', email, 'roles', to_jsonb(roles), 'disabled', disabled)"} FROM changed
) SELECT * FROM changed`;

interface AuditRow {
  user_id: string;
  action: UserChange['action'];
  actor: string;
  fields: string[];
  after: UserChange['after'] | null;
  at: Date;
}

function record(row: Row): UserRecord {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    roles: row.roles ?? [],
    disabled: row.disabled,
    tokenGeneration: Number(row.token_generation),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

const publicUser = ({ passwordHash: _hash, ...user }: UserRecord): User => user;

const emailTaken = (cause?: unknown) => new AikbError('ALREADY_EXISTS', 'a user with this email already exists', { details: { field: 'email' }, cause });

/**
 * The one driver-error translation ({@link translatePgError}), with the user store's own word for
 * a unique violation: the email is taken.
 */
function translate(error: unknown, fields: Readonly<Record<string, unknown>>): never {
  if ((error as { code?: unknown } | null | undefined)?.code === '23505') throw emailTaken(error);
  return translatePgError(error, { fields, what: 'the user database' });
}

/** {@link createPostgresUserStore} options. */
export interface PostgresUserStoreOptions {
  /** A `pg.Pool` (a PostgreSQL server or embedded PGlite) where {@link userStoreMigrations} were applied. */
  pool: Queryable;
  /**
   * Where the store reports the driver error behind an error it translated (at `debug`: the
   * error it throws keeps the driver's text out of its message, in `cause`).
   * @default noopLogger
   */
  logger?: Logger;
}

class PostgresUserStore implements UserStore {
  readonly #pool: Queryable;
  readonly #logger: Logger;

  constructor(pool: Queryable, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  /** `fields` names the input in `params`, for the ValidationError of a value the server would refuse. */
  async #query<R = Row>(sql: string, params: unknown[], fields: Readonly<Record<string, unknown>> = {}): Promise<R[]> {
    assertStorable(fields);
    try {
      return (await this.#pool.query<R & Row>(sql, params)).rows;
    } catch (error) {
      try {
        return translate(error, fields);
      } catch (translated) {
        if (translated !== error) this.#logger.debug({ err: error, code: (translated as AikbError).code }, 'user store: translated a database error');
        throw translated;
      }
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

  async create(user: NewUser, options?: UserChangeOptions) {
    const fields = ['email', ...(user.passwordHash !== null ? ['password'] : []), 'roles', 'disabled'];
    // ON CONFLICT rather than catching 23505: an error inside an extended-protocol query breaks
    // the embedded PGlite connection, and a taken email is an expected outcome, not an error.
    const [row] = await this.#query(
      `WITH changed AS (
         INSERT INTO aikb_users (id, email, password_hash, roles, disabled) VALUES ($1, $4, $5, $6, $7)
         ON CONFLICT ((lower(email))) DO NOTHING RETURNING ${COLUMNS}
       )${AUDITED('create')}`,
      [randomUUID(), actorOf(options), fields, user.email, user.passwordHash, [...(user.roles ?? [])], user.disabled ?? false],
      { email: user.email, roles: user.roles },
    );
    if (!row) throw emailTaken();
    return publicUser(record(row));
  }

  async update(id: string, patch: UserPatch, options?: UserChangeOptions) {
    const sets: string[] = [];
    const params: unknown[] = [id, actorOf(options), changedFields(patch)];
    const set = (column: string, value: unknown) => {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    };
    if (patch.email !== undefined) set('email', patch.email);
    if (patch.passwordHash !== undefined) set('password_hash', patch.passwordHash);
    if (patch.roles !== undefined) set('roles', [...patch.roles]);
    if (patch.disabled !== undefined) set('disabled', patch.disabled);
    if (revokes(patch)) sets.push('token_generation = token_generation + 1');
    sets.push('updated_at = now()');
    let guard = '';
    if (patch.email !== undefined) {
      params.push(patch.email);
      guard = ` AND NOT EXISTS (SELECT 1 FROM aikb_users other WHERE lower(other.email) = lower($${params.length}) AND other.id <> $1)`;
    }
    const [row] = await this.#query(
      `WITH changed AS (UPDATE aikb_users SET ${sets.join(', ')} WHERE id = $1${guard} RETURNING ${COLUMNS})${AUDITED('update')}`,
      params,
      { id, ...patch },
    );
    if (row) return publicUser(record(row));
    if (guard && (await this.get(id))) throw emailTaken();
    return undefined;
  }

  async delete(id: string, options?: UserChangeOptions) {
    const rows = await this.#query(`WITH changed AS (DELETE FROM aikb_users WHERE id = $1 RETURNING id)${AUDITED('delete')}`, [id, actorOf(options), []], {
      id,
    });
    return rows.length > 0;
  }

  async history(id: string, limit?: number) {
    const rows = await this.#query<AuditRow>(
      'SELECT user_id, action, actor, fields, after, at FROM aikb_user_audit WHERE user_id = $1 ORDER BY id DESC LIMIT $2',
      [id, historyLimit(limit)],
      { id },
    );
    return rows.map((row): UserChange => ({
      userId: row.user_id,
      action: row.action,
      actor: row.actor,
      fields: row.fields ?? [],
      after: row.after ?? undefined,
      at: new Date(row.at),
    }));
  }
}

/**
 * Creates a {@link UserStore} on a `pg.Pool` (a server or embedded PGlite), in the tables
 * `aikb_users` and `aikb_user_audit` created by {@link userStoreMigrations}. Every change and its
 * audit entry are one statement, so neither is ever written without the other.
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 *
 * @example
 * ```ts
 * await migrate(db.pool, userStoreMigrations)
 * const users = createPostgresUserStore({ pool: db.pool, logger })
 * ```
 */
export function createPostgresUserStore(options: PostgresUserStoreOptions): UserStore {
  const check = checkOptions('createPostgresUserStore', options);
  check.object('pool', 'a pg.Pool', true, ['query']);
  check.object('logger', 'a Logger', false, ['debug', 'info', 'warn', 'error']);
  return new PostgresUserStore(options.pool, options.logger ?? noopLogger);
}
