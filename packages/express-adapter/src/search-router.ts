import { randomUUID } from 'node:crypto';
import { Router, type ErrorRequestHandler, type Request } from 'express';
import { AikbError, noopLogger, NotFoundError, ValidationError, type Logger, type Principal } from '@aikb/core';
import type { DocumentInput, PrincipalIndex, SearchRequest, SearchStore, TunePrincipalIndexesOptions } from '@aikb/core/search';
import { getPrincipal } from './user-auth';
import { checkOptions } from '@aikb/core/options';
import { jsonBody } from './json-body';

/** A per-request decision (a feature flag, evaluated for the caller). */
export type SearchSwitch = (req: Request, principal: Principal) => boolean | Promise<boolean>;

/** {@link searchRouter} options. */
export interface SearchRouterOptions {
  /** The search store. Required. */
  search: SearchStore;
  /**
   * The caller, from the verified token (never from the body); `undefined` answers 401.
   * @default getPrincipal (the Principal `requireUser` verified)
   */
  principal?: (req: Request) => Principal | undefined;
  /**
   * Whether query vectors are checked before SQL (`priority_1_1_vector_validation`). Off: what
   * pgvector refuses is still a 400, and a zero vector is searched as it is.
   * @default () => true
   */
  vectorValidation?: SearchSwitch;
  /**
   * Whether access is filtered inside SQL (`priority_2_2_rbac_api_filtering`). Off: the older path
   * (over-fetch, filter in the application) — still only readable rows, possibly fewer than k,
   * with `complete: false` then.
   * @default () => true
   */
  rbacFiltering?: SearchSwitch;
  /**
   * Largest JSON body, in bytes: room for a 1 MB query or a 100 000-element vector to be parsed
   * and refused as a 400 naming the problem, rather than a 413.
   * @default 2097152
   */
  maxBodyBytes?: number;
}

const SEARCH_FIELDS = new Set(['query', 'vector', 'k', 'mode']);
const DOCUMENT_FIELDS = new Set(['id', 'title', 'text', 'acl', 'metadata']);

function objectBody(body: unknown, allowed: ReadonlySet<string>): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body', 'the request body must be a JSON object');
  const unknown = Object.keys(body).find((key) => !allowed.has(key));
  if (unknown !== undefined)
    throw new ValidationError(unknown.slice(0, 100), `unknown field ${JSON.stringify(unknown.slice(0, 100))}; allowed: ${[...allowed].join(', ')}`);
  return body as Record<string, unknown>;
}

function limitOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,3}$/.test(value)) throw new ValidationError('limit', 'limit must be a whole number from 1 to 100');
  return Number(value);
}

function afterOf(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ValidationError('after', 'after must be one cursor from a previous page');
  return value;
}

/** A path whose percent-encoding cannot be decoded names no document: a 400, not a 500. */
const badPath: ErrorRequestHandler = (error, _req, _res, next) => {
  next(error instanceof URIError ? new ValidationError('id', 'the document id in the path is not valid percent-encoding') : error);
};

/**
 * The search API for signed-in users, to mount behind user authentication (it parses its own
 * JSON bodies):
 *
 * - `POST /search` `{ query?, vector?, k?, mode? }` → `{ results, strategy, complete, tookMs, mode }`
 * - `GET /documents?limit=20&after=<cursor>` → `{ documents, nextCursor? }`: only what the caller may read
 * - `GET /documents/:id` → the document, or 404 when it does not exist **or** the caller may not
 *   read it (never 403: existence does not leak)
 *
 * Every refusal is a problem+json 400 naming the field and, for a vector, the problem
 * (`wrong_dimension`, `not_finite`, `zero_vector`, ...); nothing is written by a search.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 * @example
 * ```ts
 * app.use('/api', requireUser(...), searchRouter({ search }))
 * ```
 */
export function searchRouter(options: SearchRouterOptions): Router {
  const check = checkOptions('searchRouter', options);
  check.object('search', 'a SearchStore', true, ['search', 'getDocument', 'listDocuments']);
  check.function('principal');
  check.function('vectorValidation');
  check.function('rbacFiltering');
  check.number('maxBodyBytes', { min: 1, integer: true });
  const { search, principal: principalOf = getPrincipal, vectorValidation = () => true, rbacFiltering = () => true } = options;

  const caller = (req: Request): Principal => {
    const principal = principalOf(req);
    if (!principal) throw new AikbError('UNAUTHENTICATED', 'a user token is required');
    return principal;
  };

  const router = Router();
  router.post('/search', jsonBody({ limit: options.maxBodyBytes ?? 2 * 1024 * 1024 }), async (req, res) => {
    const principal = caller(req);
    const body = objectBody(req.body, SEARCH_FIELDS);
    const [validate, rbac] = await Promise.all([vectorValidation(req, principal), rbacFiltering(req, principal)]);
    const answer = await search.search({
      ...(body as Omit<SearchRequest, 'principal'>),
      principal,
      validate,
      filtering: rbac ? 'database' : 'application',
    });
    res.json({ results: answer.results, strategy: answer.strategy, complete: answer.complete, tookMs: answer.tookMs, mode: answer.mode });
  });
  router.get('/documents', async (req, res) => {
    const page = await search.listDocuments(caller(req), { limit: limitOf(req.query.limit), after: afterOf(req.query.after) });
    res.json(page);
  });
  router.get('/documents/:id', async (req, res) => {
    const document = await search.getDocument(caller(req), req.params.id);
    if (!document) throw new NotFoundError('no document with this id');
    res.json(document);
  });
  router.use(badPath);
  return router;
}

/** {@link searchAdminRouter} options. */
export interface SearchAdminRouterOptions {
  /** The search store. Required. */
  search: SearchStore;
  /**
   * Largest JSON body, in bytes.
   * @default 5242880
   */
  maxBodyBytes?: number;
}

/**
 * Document administration, to mount at its own path (`/api/admin/documents`) behind an admin
 * guard; it parses its own JSON bodies (up to `maxBodyBytes`, for its routes only):
 *
 * - `POST /` `{ id?, title, text, acl, metadata? }` → 201 `{ id, chunks, outcome }` (an id is
 *   generated when absent; the same id again replaces the document: 200)
 * - `PUT /:id/acl` `{ acl }` → 204; `DELETE /:id` → 204, or 404
 *
 * `acl` entries: `user:<id>`, `role:<name>`, `public`.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function searchAdminRouter(options: SearchAdminRouterOptions): Router {
  const check = checkOptions('searchAdminRouter', options);
  check.object('search', 'a SearchStore', true, ['indexDocument', 'setAcl', 'deleteDocument']);
  check.number('maxBodyBytes', { min: 1, integer: true });
  const { search } = options;
  const router = Router();
  const body = jsonBody({ limit: options.maxBodyBytes ?? 5 * 1024 * 1024 });
  router.post('/', body, async (req, res) => {
    const fields = objectBody(req.body, DOCUMENT_FIELDS);
    const result = await search.indexDocument({ ...(fields as unknown as DocumentInput), id: fields.id === undefined ? randomUUID() : (fields.id as string) });
    res.status(result.outcome === 'created' ? 201 : 200).json(result);
  });
  router.put('/:id/acl', body, async (req, res) => {
    const { acl } = objectBody(req.body, new Set(['acl']));
    await search.setAcl(String(req.params.id), acl as string[]);
    res.status(204).end();
  });
  router.delete('/:id', async (req, res) => {
    if (!(await search.deleteDocument(req.params.id))) throw new NotFoundError('no document with this id');
    res.status(204).end();
  });
  router.use(badPath);
  return router;
}

/** {@link searchIndexAdminRouter} options. */
export interface SearchIndexAdminRouterOptions {
  /** The search store. Required. */
  search: SearchStore;
  /** Where a build that outlives its request reports its end. @default noopLogger */
  logger?: Logger;
  /**
   * How long `PUT` waits for a build before answering 202 (the build goes on).
   * @default 2000
   */
  waitMs?: number;
}

/**
 * Per-principal HNSW indexes ({@link SearchStore.createPrincipalIndex}), to mount at its own path
 * (`/api/admin/search/indexes`) behind an admin guard:
 *
 * - `GET /` → `{ indexes: [{ principal, index, chunks, ready, createdAt }] }`
 * - `PUT /:principal` (`role:support`, percent-encoded as needed) → 200 with the index once built;
 *   202 `{ principal, ready: false }` when the build takes longer than `waitMs` — it goes on in
 *   the background (a minute or more for a large entry), its end logged; `GET` shows `ready`.
 *   A bad entry is a 400, too many indexes a 409 (`FAILED_PRECONDITION`), another build running a 503.
 * - `DELETE /:principal` → 204, or 404 when it has no index
 * - `POST /_tune` `{ minShare?, maxShare?, minChunks?, drop?, dryRun? }` →
 *   {@link SearchStore.tunePrincipalIndexes}' answer `{ created, dropped, kept, skipped }` (with
 *   `dryRun`, what it would do); 202 `{ tuning: true }` when it takes longer than `waitMs`
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function searchIndexAdminRouter(options: SearchIndexAdminRouterOptions): Router {
  const check = checkOptions('searchIndexAdminRouter', options);
  check.object('search', 'a SearchStore', true, ['createPrincipalIndex', 'dropPrincipalIndex', 'listPrincipalIndexes', 'tunePrincipalIndexes']);
  check.object('logger', 'a Logger', false, ['info', 'error']);
  check.number('waitMs', { min: 0, max: 60_000, integer: true });
  const { search, logger = noopLogger, waitMs = 2000 } = options;
  /** Builds this process started, by entry: a second PUT while one runs joins it. */
  const building = new Map<string, Promise<PrincipalIndex>>();

  /**
   * `work`'s answer when it ends within waitMs, else undefined: it goes on, and its end is logged
   * (`what.done`, or `what.failed` with the error), as no response will carry it.
   */
  async function within<T>(work: Promise<T>, what: { readonly done: string; readonly failed: string }, fields: object): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    work.then(
      () => late && logger.info(fields, what.done),
      (error: unknown) => late && logger.error({ ...fields, err: error }, `${what.failed}: ${(error as Error).message}`),
    );
    const answer = await Promise.race([work, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), waitMs)))]).finally(() =>
      clearTimeout(timer),
    );
    late = answer === undefined;
    return answer;
  }

  const router = Router();
  router.get('/', async (_req, res) => {
    res.json({ indexes: await search.listPrincipalIndexes() });
  });
  router.post('/_tune', jsonBody({ limit: 4096 }), async (req, res) => {
    // The store checks the values (a ValidationError: 400 naming the field); here only the shape.
    const tune = objectBody(req.body === undefined ? {} : req.body, TUNE_FIELDS) as TunePrincipalIndexesOptions;
    // A dry run only reads: always answered in full. Another tuning or build running is a 503 (retryable).
    if (tune.dryRun === true) {
      res.json(await search.tunePrincipalIndexes(tune));
      return;
    }
    const result = await within(search.tunePrincipalIndexes(tune), { done: 'principal indexes tuned', failed: 'principal index tuning failed' }, {});
    if (result) res.json(result);
    else res.status(202).json({ tuning: true });
  });
  router.put('/:principal', async (req, res) => {
    const principal = req.params.principal;
    let build = building.get(principal);
    if (!build) {
      build = search.createPrincipalIndex(principal);
      building.set(principal, build);
      const forget = () => building.delete(principal);
      build.then(forget, forget);
    }
    const index = await within(build, { done: 'principal index ready', failed: 'principal index build failed' }, { principal });
    if (index) res.json(index);
    else res.status(202).json({ principal, ready: false });
  });
  router.delete('/:principal', async (req, res) => {
    if (!(await search.dropPrincipalIndex(req.params.principal))) throw new NotFoundError('this access-list entry has no principal index');
    res.status(204).end();
  });
  const badEntry: ErrorRequestHandler = (error, _req, _res, next) => {
    next(error instanceof URIError ? new ValidationError('principal', 'the entry in the path is not valid percent-encoding') : error);
  };
  router.use(badEntry);
  return router;
}

const TUNE_FIELDS: ReadonlySet<string> = new Set(['minShare', 'maxShare', 'minChunks', 'drop', 'dryRun']);
