import type { Queryable } from '../db/database';
import type { Migration } from '../db/migrations';
import { assertStorable, pgErrorToAikbError } from '../db/internal/pg-errors';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { Flag, FlagChange, FlagState, FlagStore } from './flags';

/**
 * The tables of {@link createPostgresFlagStore}: pass them to `migrate()` (ids start `flags.`).
 *
 * @example
 * ```ts
 * await migrate(db.pool, [...flagStoreMigrations])
 * ```
 */
export const flagStoreMigrations: readonly Migration[] = Object.freeze([
  {
    id: 'flags.0001_create_tables',
    up: `
      CREATE SEQUENCE aikb_feature_flag_version;
      CREATE TABLE aikb_feature_flags (
        name text PRIMARY KEY,
        enabled boolean NOT NULL,
        rollout_percentage integer NOT NULL CHECK (rollout_percentage BETWEEN 0 AND 100),
        description text NOT NULL DEFAULT '',
        version bigint NOT NULL,
        last_updated timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE aikb_feature_flag_history (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        version bigint NOT NULL,
        before jsonb,
        after jsonb NOT NULL,
        actor text NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX aikb_feature_flag_history_name ON aikb_feature_flag_history (name, version DESC);
    `,
  },
  {
    // The change marker clients poll while their bus is down. Versions come from a sequence, which
    // hands out numbers in call order, not commit order: max(version) can miss a write that commits
    // after a higher version was seen. This one row is bumped inside every write, under its row
    // lock, so it moves in commit order.
    id: 'flags.0002_change_counter',
    up: `
      CREATE TABLE aikb_feature_flag_changes (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        seq bigint NOT NULL
      );
      INSERT INTO aikb_feature_flag_changes (id, seq) VALUES (true, 0);
    `,
  },
]);

interface FlagRow {
  name: string;
  enabled: boolean;
  rollout_percentage: number;
  description: string;
  version: string | number;
  last_updated: Date | string;
}

interface HistoryRow {
  name: string;
  version: string | number;
  before: FlagState | null;
  after: FlagState;
  actor: string;
  at: Date | string;
}

const COLUMNS = 'name, enabled, rollout_percentage, description, version, last_updated';
/**
 * Bumps the change marker in the same statement (so the same transaction) as a write, only when
 * `written` returned a row. It reads `written` first, so the flag's row is always locked before
 * the counter's: concurrent writes cannot deadlock.
 */
const BUMP = (written: string) => `bump AS (UPDATE aikb_feature_flag_changes SET seq = seq + 1 WHERE EXISTS (SELECT 1 FROM ${written}))`;
const STATE = (t: string) => `jsonb_build_object('enabled', ${t}.enabled, 'rolloutPercentage', ${t}.rollout_percentage, 'description', ${t}.description)`;

/**
 * Applies a patch (`$2` enabled, `$3` rollout, `$4` description, `null` to keep; `$5` the actor)
 * to the rows of a CTE `old` the statement has locked, with their audit records and the marker bump.
 */
const APPLY_PATCH = `up AS (
    UPDATE aikb_feature_flags f SET
      enabled = COALESCE($2::boolean, f.enabled),
      rollout_percentage = COALESCE($3::integer, f.rollout_percentage),
      description = COALESCE($4::text, f.description),
      version = nextval('aikb_feature_flag_version'),
      last_updated = now()
    FROM old WHERE f.name = old.name
    RETURNING f.*
  ),
  audit AS (
    INSERT INTO aikb_feature_flag_history (name, version, before, after, actor, at)
    SELECT up.name, up.version, ${STATE('old')}, ${STATE('up')}, $5, up.last_updated FROM up JOIN old ON old.name = up.name
  ),
  ${BUMP('up')}`;

function toFlag(row: FlagRow): Flag {
  return {
    name: row.name,
    enabled: row.enabled,
    rolloutPercentage: row.rollout_percentage,
    description: row.description,
    lastUpdated: new Date(row.last_updated).toISOString(),
    version: Number(row.version),
  };
}

function toChange(row: HistoryRow): FlagChange {
  return {
    name: row.name,
    version: Number(row.version),
    before: row.before ?? undefined,
    after: row.after,
    actor: row.actor,
    at: new Date(row.at).toISOString(),
  };
}

/** {@link createPostgresFlagStore} options. */
export interface PostgresFlagStoreOptions {
  /** A `pg.Pool` (a PostgreSQL server or embedded PGlite) where {@link flagStoreMigrations} were applied. */
  pool: Queryable;
  /**
   * Where the store reports the driver error behind an error it translated (at `debug`: the
   * error it throws keeps the driver's text out of its message, in `cause`).
   * @default noopLogger
   */
  logger?: Logger;
}

/**
 * A {@link FlagStore} in PostgreSQL (a real server or embedded PGlite). Each write, its audit
 * record and the bump of the change marker are one statement, so they commit together. Apply {@link flagStoreMigrations} first.
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 *
 * @example
 * ```ts
 * await migrate(db.pool, flagStoreMigrations)
 * const store = createPostgresFlagStore({ pool: db.pool, logger })
 * ```
 */
export function createPostgresFlagStore(options: PostgresFlagStoreOptions): FlagStore {
  const check = checkOptions('createPostgresFlagStore', options);
  check.object('pool', 'a pg.Pool', true, ['query']);
  check.object('logger', 'a Logger', false, ['debug', 'info', 'warn', 'error']);
  const { pool } = options;
  const logger = options.logger ?? noopLogger;
  const query = async <R extends object>(sql: string, values: unknown[] = []) => {
    try {
      return (await pool.query<R>(sql, values)).rows;
    } catch (error) {
      // Input the server refused is the caller's error (a 400), an outage an UnavailableError;
      // never a driver message for a client.
      const translated = pgErrorToAikbError(error, { what: 'the flag store' });
      if (translated !== error) logger.debug({ err: error, code: (translated as { code?: unknown }).code }, 'flag store: translated a database error');
      throw translated;
    }
  };

  return {
    async get(name) {
      assertStorable({ name });
      const [row] = await query<FlagRow>(`SELECT ${COLUMNS} FROM aikb_feature_flags WHERE name = $1`, [name]);
      return row && toFlag(row);
    },
    async list() {
      return (await query<FlagRow>(`SELECT ${COLUMNS} FROM aikb_feature_flags ORDER BY name COLLATE "C"`)).map(toFlag);
    },
    async put(name, definition, actor) {
      assertStorable({ name, description: definition.description, actor });
      const [row] = await query<FlagRow & { created: boolean }>(
        `WITH old AS (SELECT * FROM aikb_feature_flags WHERE name = $1 FOR UPDATE),
         up AS (
           -- Reading "old" first locks the row before the upsert touches it (and keeps its before-image).
           INSERT INTO aikb_feature_flags (name, enabled, rollout_percentage, description, version, last_updated)
           SELECT $1, $2::boolean, $3::integer, $4::text, nextval('aikb_feature_flag_version'), now() FROM (SELECT count(*) FROM old) AS locked
           ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, rollout_percentage = EXCLUDED.rollout_percentage,
             description = EXCLUDED.description, version = EXCLUDED.version, last_updated = EXCLUDED.last_updated
           RETURNING *
         ),
         audit AS (
           INSERT INTO aikb_feature_flag_history (name, version, before, after, actor, at)
           SELECT up.name, up.version, (SELECT ${STATE('old')} FROM old), ${STATE('up')}, $5, up.last_updated FROM up
         ),
         ${BUMP('up')}
         SELECT ${COLUMNS}, NOT EXISTS (SELECT 1 FROM old) AS created FROM up`,
        [name, definition.enabled, definition.rolloutPercentage, definition.description ?? '', actor],
      );
      return { flag: toFlag(row!), created: row!.created };
    },
    async update(name, patch, actor) {
      assertStorable({ name, description: patch.description, actor });
      const [row] = await query<FlagRow>(
        `WITH old AS (SELECT * FROM aikb_feature_flags WHERE name = $1 FOR UPDATE),
         ${APPLY_PATCH}
         SELECT ${COLUMNS} FROM up`,
        [name, patch.enabled ?? null, patch.rolloutPercentage ?? null, patch.description ?? null, actor],
      );
      return row && toFlag(row);
    },
    async updateMany(names, patch, actor) {
      assertStorable({ description: patch.description, actor });
      // One statement, so one transaction: every change and its audit record, or none. Rows are
      // locked in name order (no deadlock between two batches); the "would it change" test is
      // re-checked on the locked row.
      const rows = await query<HistoryRow>(
        `WITH old AS (
           SELECT * FROM aikb_feature_flags
           WHERE name = ANY($1::text[])
             AND (enabled <> COALESCE($2::boolean, enabled) OR rollout_percentage <> COALESCE($3::integer, rollout_percentage)
                  OR description <> COALESCE($4::text, description))
           ORDER BY name COLLATE "C" FOR UPDATE
         ),
         ${APPLY_PATCH}
         SELECT up.name, up.version, ${STATE('old')} AS before, ${STATE('up')} AS after, $5 AS actor, up.last_updated AS at
         FROM up JOIN old ON old.name = up.name ORDER BY up.name COLLATE "C"`,
        [[...new Set(names)], patch.enabled ?? null, patch.rolloutPercentage ?? null, patch.description ?? null, actor],
      );
      return rows.map(toChange);
    },
    async ensure(name, definition, actor) {
      assertStorable({ name, description: definition.description, actor });
      const [row] = await query<FlagRow>(
        `WITH ins AS (
           INSERT INTO aikb_feature_flags (name, enabled, rollout_percentage, description, version, last_updated)
           VALUES ($1, $2, $3, $4, nextval('aikb_feature_flag_version'), now())
           ON CONFLICT (name) DO NOTHING
           RETURNING *
         ),
         audit AS (
           INSERT INTO aikb_feature_flag_history (name, version, before, after, actor, at)
           SELECT ins.name, ins.version, NULL, ${STATE('ins')}, $5, ins.last_updated FROM ins
         ),
         ${BUMP('ins')}
         SELECT ${COLUMNS} FROM ins`,
        [name, definition.enabled, definition.rolloutPercentage, definition.description ?? '', actor],
      );
      if (row) return toFlag(row);
      const [existing] = await query<FlagRow>(`SELECT ${COLUMNS} FROM aikb_feature_flags WHERE name = $1`, [name]);
      return toFlag(existing!);
    },
    async history(name, { limit = 100 } = {}) {
      assertStorable({ name });
      const rows = await query<HistoryRow>(
        'SELECT name, version, before, after, actor, at FROM aikb_feature_flag_history WHERE name = $1 ORDER BY version DESC LIMIT $2',
        [name, limit],
      );
      return rows.map(toChange);
    },
    async changeMarker() {
      const [row] = await query<{ seq: string | number }>('SELECT seq FROM aikb_feature_flag_changes');
      return Number(row?.seq ?? 0);
    },
  };
}
