import { Router, type ErrorRequestHandler, type Request } from 'express';
import { NotFoundError, ValidationError } from '@aikb/core';
import type { SagaListQuery, SagaOutcome, SagaRecord, SagaRunner, SagaState } from '@aikb/core/saga';
import { SAGA_STATES } from '@aikb/core/saga';
import { checkOptions } from '@aikb/core/options';
import { jsonBody } from './json-body';
import { requestActor } from './user-auth';

/** {@link sagaRouter} options. */
export interface SagaRouterOptions {
  /** The runner whose sagas are listed and acted on. Required. */
  runner: SagaRunner;
  /**
   * Who resolved a saga, recorded with the resolution.
   * @default the acting user, `admin-token` for the shared admin token (from `adminGuard`)
   */
  actor?: (req: Request) => string;
  /**
   * Largest JSON body accepted, in bytes.
   * @default 16384
   */
  maxBodyBytes?: number;
}

/** A saga id is a UUID the runner made; anything else names no saga. */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const one = (value: unknown, field: string): string | undefined => {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ValidationError(field, `${field} must be given once`);
  return value;
};

/** `2026-02-01T12:45:30Z` or epoch milliseconds. */
function timeOf(value: unknown, field: string): number | undefined {
  const text = one(value, field);
  if (text === undefined) return undefined;
  const ms = /^\d{1,15}$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms) || text.length > 40) throw new ValidationError(field, `${field} must be an ISO 8601 time or epoch milliseconds`);
  return ms;
}

/** The list query from the URL, checked; the log checks the rest (limit, cursor) and names the field. */
function listQuery(query: Request['query']): SagaListQuery {
  const known = new Set(['state', 'name', 'from', 'to', 'resolved', 'limit', 'after']);
  const unknown = Object.keys(query).find((key) => !known.has(key));
  if (unknown !== undefined) throw new ValidationError(unknown, `unknown query parameter ${unknown.slice(0, 50)}; known: ${[...known].join(', ')}`);
  const state = one(query.state, 'state');
  const states = state?.split(',').map((s) => s.trim()) as SagaState[] | undefined;
  if (states?.some((s) => !SAGA_STATES.includes(s))) throw new ValidationError('state', `state must be a comma-separated list of ${SAGA_STATES.join(', ')}`);
  const resolved = one(query.resolved, 'resolved');
  if (resolved !== undefined && resolved !== 'true' && resolved !== 'false') throw new ValidationError('resolved', 'resolved must be true or false');
  const limit = one(query.limit, 'limit');
  if (limit !== undefined && !/^\d{1,4}$/.test(limit)) throw new ValidationError('limit', 'limit must be a whole number from 1 to 500');
  const name = one(query.name, 'name');
  const after = one(query.after, 'after');
  const from = timeOf(query.from, 'from');
  const to = timeOf(query.to, 'to');
  return {
    ...(states ? { states } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(from !== undefined ? { createdFromMs: from } : {}),
    ...(to !== undefined ? { createdToMs: to } : {}),
    ...(resolved !== undefined ? { resolved: resolved === 'true' } : {}),
    ...(limit !== undefined ? { limit: Number(limit) } : {}),
    ...(after !== undefined ? { after } : {}),
  };
}

const idOf = (req: Request): string => {
  const id = String(req.params.id);
  if (!ID.test(id)) throw new NotFoundError(`no saga with id ${id.slice(0, 100)}`, { key: id.slice(0, 100) });
  return id;
};

/** A saga for an operator: the record, times also as ISO strings. */
function view(record: Omit<SagaRecord, 'input' | 'steps'> & Partial<Pick<SagaRecord, 'input' | 'steps'>>) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    ...record,
    createdAt: iso(record.createdAtMs),
    updatedAt: iso(record.updatedAtMs),
    finishedAt: iso(record.finishedAtMs),
    ...(record.steps
      ? {
          steps: record.steps.map((s) => ({
            ...s,
            startedAt: iso(s.startedAtMs),
            finishedAt: iso(s.finishedAtMs),
            durationMs: s.finishedAtMs === null ? null : s.finishedAtMs - s.startedAtMs,
          })),
        }
      : {}),
  };
}

const outcomeView = (outcome: SagaOutcome) => ({
  id: outcome.id,
  state: outcome.state,
  ...('error' in outcome ? { error: outcome.error } : {}),
  ...('outputs' in outcome ? { outputs: outcome.outputs } : {}),
});

/** A path whose percent-encoding cannot be decoded names no saga: a 404, not a 500. */
const badPath: ErrorRequestHandler = (error, _req, _res, next) => {
  next(error instanceof URIError ? new NotFoundError('the saga id in the path is not valid percent-encoding') : error);
};

/**
 * Saga administration, to mount behind an admin guard:
 * - `GET /?state=compensation_failed,parked&name=&from=&to=&resolved=false&limit=50&after=` →
 *   `{ sagas, next? }`, newest first; pass `next` as `after` for the next page;
 * - `GET /:id` → the saga with its steps, attempts, errors and timings;
 * - `POST /:id/retry` → runs a `compensation_failed` or `parked` saga again and answers its outcome;
 * - `POST /:id/resolve` `{ note? }` → marks it resolved by the acting operator;
 * - `POST /:id/cancel` → `202`, the saga compensates and ends `cancelled`.
 *
 * Errors are problem+json through the app's `errorHandler()`: a bad filter is a 400 naming it, an
 * unknown id a 404, an action the saga's state does not allow a 409.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function sagaRouter(options: SagaRouterOptions): Router {
  const check = checkOptions('sagaRouter', options);
  check.object('runner', 'a SagaRunner', true, ['list', 'get', 'retry', 'resolve', 'cancel']);
  check.function('actor');
  check.number('maxBodyBytes', { min: 1, integer: true });
  const { runner } = options;
  const actor = options.actor ?? requestActor;
  const router = Router();
  router.get('/', async (req, res) => {
    const page = await runner.list(listQuery(req.query));
    res.json({ sagas: page.items.map(view), ...(page.next !== undefined ? { next: page.next } : {}) });
  });
  router.get('/:id', async (req, res) => {
    const id = idOf(req);
    const record = await runner.get(id);
    if (!record) throw new NotFoundError(`no saga with id ${id}`, { key: id });
    res.json(view(record));
  });
  router.post('/:id/retry', async (req, res) => {
    res.json(outcomeView(await runner.retry(idOf(req))));
  });
  router.post('/:id/cancel', async (req, res) => {
    res.status(202).json(view(await runner.cancel(idOf(req))));
  });
  router.post('/:id/resolve', jsonBody({ limit: options.maxBodyBytes ?? 16 * 1024 }), async (req, res) => {
    const body: unknown = req.body ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ValidationError('body', 'the body must be a JSON object');
    const { note, ...rest } = body as { note?: unknown };
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw new ValidationError(extra, `unknown field ${extra.slice(0, 50)}; known: note`);
    if (note !== undefined && (typeof note !== 'string' || note.length > 2000))
      throw new ValidationError('note', 'note must be a string of at most 2000 characters');
    res.json(view(await runner.resolve(idOf(req), { by: actor(req), ...(note !== undefined ? { note } : {}) })));
  });
  router.use(badPath);
  return router;
}
