import type { Queryable } from '../db/database';
import type { Migration } from '../db/migrations';
import { assertStorable, translatePgError } from '../db/internal/pg-errors';
import { withTransaction } from '../db/transaction';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { JsonValue, SagaErrorInfo, SagaLease, SagaLog, SagaPage, SagaRecord, SagaState, SagaStepRecord, SagaSummary, SagaTransition } from './saga';
import { SAGA_STATES } from './saga';
import { checkListQuery, encodeCursor } from './internal/cursor';
import { FINAL_STATES, FINISHED_STATES, OPERATOR_STATES, assertTransition, leaseLost, notFound, wrongState } from './internal/rules';

/**
 * The tables of {@link createPostgresSagaLog}: pass them to `migrate()` (ids start `saga.`). A
 * trigger refuses any state change the state machine does not allow, even by hand-written SQL.
 *
 * @example
 * ```ts
 * await migrate(db.pool, [...sagaLogMigrations])
 * ```
 */
export const sagaLogMigrations: readonly Migration[] = Object.freeze([
  {
    id: 'saga.0001_create_tables',
    up: `
      CREATE TABLE IF NOT EXISTS aikb_sagas (
        id text PRIMARY KEY,
        name text NOT NULL,
        version integer NOT NULL,
        idempotency_key text UNIQUE,
        state text NOT NULL CHECK (state IN ('running', 'completed', 'compensating', 'compensated', 'compensation_failed', 'parked', 'cancelled')),
        policy text NOT NULL CHECK (policy IN ('compensate', 'resume')),
        input jsonb NOT NULL,
        error jsonb,
        park_reason text,
        parked_from text,
        cancel_requested boolean NOT NULL DEFAULT false,
        lease_owner text,
        lease_expires_at timestamptz,
        recoveries integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        finished_at timestamptz,
        resolved_at timestamptz,
        resolved_by text,
        resolution_note text
      );
      CREATE INDEX IF NOT EXISTS aikb_sagas_created ON aikb_sagas (created_at DESC, id DESC);
      CREATE INDEX IF NOT EXISTS aikb_sagas_active ON aikb_sagas (updated_at) WHERE state IN ('running', 'compensating');
      CREATE INDEX IF NOT EXISTS aikb_sagas_finished ON aikb_sagas (finished_at) WHERE finished_at IS NOT NULL;
      CREATE TABLE IF NOT EXISTS aikb_saga_steps (
        saga_id text NOT NULL REFERENCES aikb_sagas (id) ON DELETE CASCADE,
        phase text NOT NULL CHECK (phase IN ('action', 'compensation')),
        idx integer NOT NULL,
        name text NOT NULL,
        status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'invalid_output')),
        attempts integer NOT NULL,
        output jsonb,
        error jsonb,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        PRIMARY KEY (saga_id, phase, idx)
      );
      CREATE OR REPLACE FUNCTION aikb_saga_check_transition() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF NEW.state IS DISTINCT FROM OLD.state AND NOT (
          (OLD.state = 'running' AND NEW.state IN ('completed', 'compensating', 'parked')) OR
          (OLD.state = 'compensating' AND NEW.state IN ('compensated', 'cancelled', 'compensation_failed', 'parked')) OR
          (OLD.state = 'compensation_failed' AND NEW.state = 'compensating') OR
          (OLD.state = 'parked' AND NEW.state IN ('running', 'compensating'))
        ) THEN
          RAISE EXCEPTION 'saga % cannot go from % to %', OLD.id, OLD.state, NEW.state USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END
      $fn$;
      DROP TRIGGER IF EXISTS aikb_saga_transition ON aikb_sagas;
      CREATE TRIGGER aikb_saga_transition BEFORE UPDATE OF state ON aikb_sagas FOR EACH ROW EXECUTE FUNCTION aikb_saga_check_transition();
    `,
  },
]);

/** {@link createPostgresSagaLog} options. */
export interface PostgresSagaLogOptions {
  /** A `pg.Pool`, or anything with its `query` and `connect` (embedded PGlite). Required. */
  pool: Queryable;
  /** @default noopLogger */
  logger?: Logger;
}

/** A timestamp parameter from epoch ms, and a column read back as epoch ms. */
const TS = (param: string) => `to_timestamp(${param}::float8 / 1000)`;
const MS = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;

const SUMMARY_COLUMNS = `s.id, s.name, s.version, s.idempotency_key, s.state, s.policy, s.error, s.park_reason, s.parked_from, s.cancel_requested,
  s.lease_owner, ${MS('s.lease_expires_at')} AS lease_expires_at, s.recoveries, ${MS('s.created_at')} AS created_at, ${MS('s.updated_at')} AS updated_at,
  ${MS('s.finished_at')} AS finished_at, ${MS('s.resolved_at')} AS resolved_at, s.resolved_by, s.resolution_note`;
const STEPS = `(SELECT coalesce(json_agg(json_build_object(
    'index', t.idx, 'name', t.name, 'phase', t.phase, 'status', t.status, 'attempts', t.attempts, 'output', t.output, 'error', t.error,
    'startedAtMs', ${MS('t.started_at')}, 'finishedAtMs', ${MS('t.finished_at')})
    ORDER BY t.phase = 'compensation', CASE WHEN t.phase = 'action' THEN t.idx ELSE -t.idx END), '[]'::json)
  FROM aikb_saga_steps t WHERE t.saga_id = s.id) AS steps`;
const RECORD_COLUMNS = `${SUMMARY_COLUMNS}, s.input, ${STEPS}`;

interface SummaryRow {
  id: string;
  name: string;
  version: number;
  idempotency_key: string | null;
  state: SagaState;
  policy: SagaRecord['policy'];
  error: SagaErrorInfo | null;
  park_reason: string | null;
  parked_from: SagaState | null;
  cancel_requested: boolean;
  lease_owner: string | null;
  lease_expires_at: number | null;
  recoveries: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  resolved_at: number | null;
  resolved_by: string | null;
  resolution_note: string | null;
}
interface RecordRow extends SummaryRow {
  input: JsonValue;
  steps: Array<Omit<SagaStepRecord, 'startedAtMs' | 'finishedAtMs'> & { startedAtMs: number; finishedAtMs: number | null }> | string;
}

const ms = (value: number | string | null): number | null => (value === null ? null : Math.round(Number(value)));

function toSummary(row: SummaryRow): SagaSummary {
  return {
    id: row.id,
    name: row.name,
    version: Number(row.version),
    idempotencyKey: row.idempotency_key,
    state: row.state,
    policy: row.policy,
    error: row.error,
    parkReason: row.park_reason,
    parkedFrom: row.parked_from,
    cancelRequested: row.cancel_requested,
    leaseOwner: row.lease_owner,
    leaseExpiresAtMs: ms(row.lease_expires_at),
    recoveries: Number(row.recoveries),
    createdAtMs: ms(row.created_at)!,
    updatedAtMs: ms(row.updated_at)!,
    finishedAtMs: ms(row.finished_at),
    resolvedAtMs: ms(row.resolved_at),
    resolvedBy: row.resolved_by,
    resolutionNote: row.resolution_note,
  };
}

function toRecord(row: RecordRow): SagaRecord {
  const steps = typeof row.steps === 'string' ? (JSON.parse(row.steps) as Exclude<RecordRow['steps'], string>) : row.steps;
  return {
    ...toSummary(row),
    input: row.input,
    steps: steps.map((step) => ({ ...step, startedAtMs: ms(step.startedAtMs)!, finishedAtMs: ms(step.finishedAtMs) })),
  };
}

const FINISHED_SQL = `ARRAY[${FINISHED_STATES.map((s) => `'${s}'`).join(', ')}]::text[]`;

/**
 * The SET list and parameters of a state change made under a lease, for `UPDATE aikb_sagas s`:
 * `$1` id, `$2` owner, `$3` now, `$4` lease expiry, `$5` expected state are the caller's.
 */
function transitionSet(params: unknown[], transition: SagaTransition | undefined, release = false): string {
  const push = (value: unknown) => `$${params.push(value)}`;
  const sets = [`updated_at = ${TS('$3')}`];
  if (!transition) return [...sets, `lease_expires_at = ${TS('$4')}`].join(', ');
  const to = push(transition.to);
  const finished = `${to}::text = ANY(${FINISHED_SQL})`;
  sets.push(`state = ${to}`);
  if (transition.error !== undefined) sets.push(`error = ${push(JSON.stringify(transition.error))}::jsonb`);
  if (transition.to === 'parked') sets.push(`park_reason = ${push(transition.parkReason ?? 'parked')}`, `parked_from = s.state`);
  sets.push(`finished_at = CASE WHEN ${finished} THEN ${TS('$3')} ELSE s.finished_at END`);
  sets.push(`lease_owner = CASE WHEN ${finished} OR ${release} THEN NULL ELSE s.lease_owner END`);
  sets.push(`lease_expires_at = CASE WHEN ${finished} OR ${release} THEN NULL ELSE ${TS('$4')} END`);
  return sets.join(', ');
}

/**
 * A {@link SagaLog} in PostgreSQL (a server or embedded PGlite): what every step did survives a
 * crash and a deploy, and several instances share the sagas safely (leases with expiry, claims
 * with `FOR UPDATE SKIP LOCKED`). Each step costs two round trips: one to start it (and extend the
 * lease), one to record its outcome (and the saga's next state). Apply {@link sagaLogMigrations} first.
 *
 * @throws {TypeError} when `pool` is missing
 * @example
 * ```ts
 * await migrate(db.pool, sagaLogMigrations)
 * const runner = createSagaRunner({ log: createPostgresSagaLog({ pool: db.pool, logger }) })
 * ```
 */
export function createPostgresSagaLog(options: PostgresSagaLogOptions): SagaLog {
  const check = checkOptions('createPostgresSagaLog', options);
  check.object('pool', 'a pg.Pool', true, ['query', 'connect']);
  check.object('logger', 'a Logger', false, ['debug', 'info', 'warn', 'error']);
  const { pool } = options;
  const logger = options.logger ?? noopLogger;

  const query = async <R extends object>(sql: string, values: unknown[], fields: Readonly<Record<string, unknown>> = {}) => {
    assertStorable(fields);
    try {
      return await pool.query<R>(sql, values);
    } catch (error) {
      logger.debug({ err: error }, 'saga log query failed');
      return translatePgError(error, { fields, what: 'the saga log' });
    }
  };

  async function get(id: string): Promise<SagaRecord | undefined> {
    const { rows } = await query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM aikb_sagas s WHERE s.id = $1`, [id], { id });
    return rows[0] && toRecord(rows[0]);
  }

  /** Runs a state change under a lease; `extra` is the statement's tail (a CTE using `s` as `up`). */
  async function leasedUpdate(
    id: string,
    lease: SagaLease,
    expected: SagaState,
    transition: SagaTransition | undefined,
    release = false,
    tail?: (params: unknown[]) => string,
  ) {
    if (transition) {
      assertTransition(id, transition.from, transition.to);
      if (transition.from !== expected) throw leaseLost(id);
    }
    const params: unknown[] = [id, lease.owner, lease.nowMs, lease.leaseExpiresAtMs, expected];
    const set = transitionSet(params, transition, release);
    const update = `UPDATE aikb_sagas s SET ${set} WHERE s.id = $1 AND s.lease_owner = $2 AND s.state = $5 RETURNING s.id`;
    const sql = tail ? `WITH up AS (${update}) ${tail(params)}` : update;
    const { rows } = await query<{ id: string }>(sql, params, { id, owner: lease.owner, parkReason: transition?.parkReason });
    if (rows.length === 0) throw leaseLost(id);
  }

  return {
    async create(saga) {
      const { rows } = await query<{ id: string }>(
        `WITH ins AS (
           INSERT INTO aikb_sagas (id, name, version, idempotency_key, state, policy, input, lease_owner, lease_expires_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, 'running', $5, $6::jsonb, $7, ${TS('$8')}, ${TS('$9')}, ${TS('$9')})
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
         ), step AS (
           INSERT INTO aikb_saga_steps (saga_id, phase, idx, name, status, attempts, started_at)
           SELECT id, 'action', 0, $10, 'running', 1, ${TS('$9')} FROM ins WHERE $10::text IS NOT NULL
         )
         SELECT id FROM ins`,
        [
          saga.id,
          saga.name,
          saga.version,
          saga.idempotencyKey,
          saga.policy,
          JSON.stringify(saga.input),
          saga.owner,
          saga.leaseExpiresAtMs,
          saga.nowMs,
          saga.firstStep ?? null,
        ],
        { id: saga.id, name: saga.name, idempotencyKey: saga.idempotencyKey, owner: saga.owner, step: saga.firstStep },
      );
      if (rows.length > 0) {
        const steps: SagaStepRecord[] =
          saga.firstStep === undefined
            ? []
            : [
                {
                  index: 0,
                  name: saga.firstStep,
                  phase: 'action',
                  status: 'running',
                  attempts: 1,
                  output: null,
                  error: null,
                  startedAtMs: saga.nowMs,
                  finishedAtMs: null,
                },
              ];
        const record: SagaRecord = {
          id: saga.id,
          name: saga.name,
          version: saga.version,
          idempotencyKey: saga.idempotencyKey,
          state: 'running',
          policy: saga.policy,
          input: saga.input,
          error: null,
          parkReason: null,
          parkedFrom: null,
          cancelRequested: false,
          leaseOwner: saga.owner,
          leaseExpiresAtMs: saga.leaseExpiresAtMs,
          recoveries: 0,
          createdAtMs: saga.nowMs,
          updatedAtMs: saga.nowMs,
          finishedAtMs: null,
          resolvedAtMs: null,
          resolvedBy: null,
          resolutionNote: null,
          steps,
        };
        return { record, created: true };
      }
      const existing = await query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM aikb_sagas s WHERE s.idempotency_key = $1`, [saga.idempotencyKey]);
      // Pruned between the two statements: the key is free again, so write it now.
      if (!existing.rows[0]) return this.create(saga);
      return { record: toRecord(existing.rows[0]), created: false };
    },

    async startStep(id, start) {
      const state: SagaState = start.phase === 'action' ? 'running' : 'compensating';
      const { rows } = await query<{ attempts: number; cancel_requested: boolean }>(
        `WITH s AS (
           UPDATE aikb_sagas SET lease_expires_at = ${TS('$4')}, updated_at = ${TS('$3')}
           WHERE id = $1 AND lease_owner = $2 AND state = $5 RETURNING id, cancel_requested
         ), step AS (
           INSERT INTO aikb_saga_steps AS t (saga_id, phase, idx, name, status, attempts, started_at)
           SELECT id, $6, $7, $8, 'running', 1, ${TS('$3')} FROM s
           ON CONFLICT (saga_id, phase, idx) DO UPDATE SET attempts = t.attempts + 1, status = 'running', started_at = excluded.started_at, finished_at = NULL
           RETURNING attempts
         )
         SELECT step.attempts, s.cancel_requested FROM s, step`,
        [id, start.owner, start.nowMs, start.leaseExpiresAtMs, state, start.phase, start.index, start.name],
        { id, owner: start.owner, name: start.name },
      );
      const row = rows[0];
      if (!row) throw leaseLost(id);
      return { attempts: Number(row.attempts), cancelRequested: row.cancel_requested };
    },

    async finishStep(id, finish) {
      const expected: SagaState = finish.phase === 'action' ? 'running' : 'compensating';
      await leasedUpdate(id, finish, expected, finish.transition, false, (params) => {
        const push = (value: unknown) => `$${params.push(value)}`;
        return `UPDATE aikb_saga_steps t SET status = ${push(finish.status)}, output = ${push(finish.output === undefined ? null : JSON.stringify(finish.output))}::jsonb,
                  error = ${push(finish.error === undefined ? null : JSON.stringify(finish.error))}::jsonb, finished_at = ${TS('$3')}
                FROM up WHERE t.saga_id = up.id AND t.phase = ${push(finish.phase)} AND t.idx = ${push(finish.index)} RETURNING t.saga_id AS id`;
      });
    },

    async transition(id, lease, transition) {
      await leasedUpdate(id, lease, transition.from, transition, transition.release === true);
    },

    async claim(lease, limit, names) {
      const { rows } = await query<RecordRow>(
        `WITH c AS (
           UPDATE aikb_sagas u SET recoveries = u.recoveries + 1, lease_owner = $1, lease_expires_at = ${TS('$2')}
           FROM (
             SELECT id FROM aikb_sagas WHERE state IN ('running', 'compensating') AND name = ANY($5::text[]) AND (lease_expires_at IS NULL OR lease_expires_at < ${TS('$3')})
             ORDER BY updated_at LIMIT $4 FOR UPDATE SKIP LOCKED
           ) free
           WHERE u.id = free.id RETURNING u.*
         )
         SELECT ${RECORD_COLUMNS} FROM c s`,
        [lease.owner, lease.leaseExpiresAtMs, lease.nowMs, limit, [...names]],
        { owner: lease.owner, names },
      );
      return rows.map(toRecord);
    },

    async reopen(id, lease) {
      assertStorable({ id, owner: lease.owner });
      await withTransaction(pool, async (client) => {
        try {
          const { rows } = await client.query<{ state: SagaState; parked_from: SagaState | null }>(
            'SELECT state, parked_from FROM aikb_sagas WHERE id = $1 FOR UPDATE',
            [id],
          );
          const row = rows[0];
          if (!row) throw notFound(id);
          if (row.state === 'compensation_failed') {
            await client.query(`UPDATE aikb_saga_steps SET attempts = 0 WHERE saga_id = $1 AND phase = 'compensation' AND status <> 'succeeded'`, [id]);
          } else if (row.state !== 'parked' || row.parked_from === null) {
            throw wrongState(id, row.state, 'compensation_failed or parked');
          }
          const to: SagaState = row.state === 'compensation_failed' ? 'compensating' : row.parked_from!;
          await client.query(
            `UPDATE aikb_sagas SET state = $2, park_reason = NULL, parked_from = NULL, finished_at = NULL, resolved_at = NULL, resolved_by = NULL,
               resolution_note = NULL, lease_owner = $3, lease_expires_at = ${TS('$4')}, updated_at = ${TS('$5')} WHERE id = $1`,
            [id, to, lease.owner, lease.leaseExpiresAtMs, lease.nowMs],
          );
        } catch (error) {
          return translatePgError(error, { fields: { id }, what: 'the saga log' });
        }
      });
      return (await get(id))!;
    },

    async renew(lease, ids) {
      const { rowCount } = await query(
        `UPDATE aikb_sagas SET lease_expires_at = ${TS('$2')} WHERE lease_owner = $1 AND id = ANY($3::text[]) AND state IN ('running', 'compensating')`,
        [lease.owner, lease.leaseExpiresAtMs, [...ids]],
        { owner: lease.owner, ids },
      );
      return rowCount ?? 0;
    },

    async release(owner, ids) {
      const { rowCount } = await query(
        `UPDATE aikb_sagas SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1 AND ($2::text[] IS NULL OR id = ANY($2::text[]))`,
        [owner, ids === undefined ? null : [...ids]],
        { owner, ids },
      );
      return rowCount ?? 0;
    },

    async requestCancel(id, nowMs) {
      const { rows } = await query<{ id: string }>(
        `UPDATE aikb_sagas SET cancel_requested = true, updated_at = ${TS('$2')} WHERE id = $1 AND state = 'running' RETURNING id`,
        [id, nowMs],
        { id },
      );
      const record = await get(id);
      if (record && rows.length === 0) throw wrongState(id, record.state, 'running');
      return record;
    },

    async resolve(id, resolution) {
      const { rows } = await query<{ id: string }>(
        `UPDATE aikb_sagas SET resolved_at = ${TS('$2')}, resolved_by = $3, resolution_note = $4, updated_at = ${TS('$2')}
         WHERE id = $1 AND state IN ('compensation_failed', 'parked') RETURNING id`,
        [id, resolution.nowMs, resolution.by, resolution.note],
        { id, by: resolution.by, note: resolution.note },
      );
      const record = await get(id);
      if (record && rows.length === 0) throw wrongState(id, record.state, 'compensation_failed or parked');
      return record;
    },

    get,

    async list(listQuery = {}): Promise<SagaPage> {
      const q = checkListQuery(listQuery);
      const params: unknown[] = [];
      const push = (value: unknown) => `$${params.push(value)}`;
      const where: string[] = [];
      if (q.states !== undefined) where.push(`s.state = ANY(${push([...q.states])}::text[])`);
      if (q.name !== undefined) where.push(`s.name = ${push(q.name)}`);
      if (q.createdFromMs !== undefined) where.push(`s.created_at >= ${TS(push(q.createdFromMs))}`);
      if (q.createdToMs !== undefined) where.push(`s.created_at < ${TS(push(q.createdToMs))}`);
      if (q.resolved !== undefined) where.push(q.resolved ? 's.resolved_at IS NOT NULL' : 's.resolved_at IS NULL');
      if (q.cursor !== undefined) where.push(`(s.created_at, s.id) < (${TS(push(q.cursor.createdAtMs))}, ${push(q.cursor.id)})`);
      const { rows } = await query<SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM aikb_sagas s ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY s.created_at DESC, s.id DESC LIMIT ${push(q.limit + 1)}`,
        params,
        { name: q.name },
      );
      const items = rows.slice(0, q.limit).map(toSummary);
      const last = items[items.length - 1];
      return rows.length > q.limit && last ? { items, next: encodeCursor(last) } : { items };
    },

    async countByState() {
      const { rows } = await query<{ state: SagaState; count: number }>('SELECT state, count(*)::int AS count FROM aikb_sagas GROUP BY state', []);
      const counts = Object.fromEntries(SAGA_STATES.map((s) => [s, 0])) as Record<SagaState, number>;
      for (const row of rows) counts[row.state] = Number(row.count);
      return counts;
    },

    async prune(beforeMs, limit) {
      const list = (states: readonly SagaState[]) => states.map((s) => `'${s}'`).join(', ');
      const { rowCount } = await query(
        `DELETE FROM aikb_sagas WHERE id IN (
           SELECT id FROM aikb_sagas
           WHERE (state IN (${list(FINAL_STATES)}) OR (state IN (${list(OPERATOR_STATES)}) AND resolved_at IS NOT NULL))
             AND coalesce(resolved_at, finished_at) < ${TS('$1')}
           ORDER BY coalesce(resolved_at, finished_at) LIMIT $2
         )`,
        [beforeMs, limit],
      );
      return rowCount ?? 0;
    },
  };
}
