import { Router, type ErrorRequestHandler, type Request } from 'express';
import { NotFoundError, ValidationError } from '@aikb/core';
import type { AddUserInput, UpdateUserInput, User, UserChange, UserDirectory } from '@aikb/core/auth';
import { jsonBody } from './json-body';
import { requestActor } from './user-auth';
import { checkOptions } from '@aikb/core/options';

/** {@link usersRouter} options. */
export interface UsersRouterOptions {
  users: UserDirectory;
  /**
   * Who is acting, recorded in the users' audit trail.
   * @default the user id of a user token, `admin-token` for the shared admin token (from `adminGuard`)
   */
  actor?: (req: Request) => string;
  /**
   * Largest body of a `POST` or `PATCH`, in bytes, as received and once decoded.
   * @default 16384
   */
  maxBodyBytes?: number;
}

const view = (user: User) => ({
  id: user.id,
  email: user.email,
  roles: user.roles,
  disabled: user.disabled,
  createdAt: user.createdAt.toISOString(),
  updatedAt: user.updatedAt.toISOString(),
});

const changeView = (change: UserChange) => ({ ...change, at: change.at.toISOString() });

function limitOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,4}$/.test(value)) throw new ValidationError('limit', 'limit must be an integer from 1 to 1000');
  return Number(value);
}

/** A path whose percent-encoding cannot be decoded names no user: a 400, not a 500. */
const badPath: ErrorRequestHandler = (error, _req, _res, next) => {
  next(error instanceof URIError ? new ValidationError('id', 'the user id in the path is not valid percent-encoding') : error);
};

/**
 * User management, to mount behind an admin guard; `POST` and `PATCH` parse their own body by the
 * package's one rule ({@link jsonBody}; no `express.json()` needed), so nothing is read before the
 * guard has run:
 * `POST /` `{ email, password, roles? }` → 201, `GET /` → `{ users }`, `GET /:id`,
 * `PATCH /:id` `{ email?, password?, roles?, disabled? }`, `DELETE /:id` → 204, and
 * `GET /:id/history?limit=50` → `{ history }` (newest first, deleted users too).
 *
 * Unknown body fields are a 400 naming the field; an id that no user could have is a 404. Every
 * change is recorded with its actor, and a change of email, password, roles or `disabled` (or a
 * delete) revokes the user's tokens. Password hashes never leave.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function usersRouter(options: UsersRouterOptions): Router {
  const check = checkOptions('usersRouter', options);
  check.object('users', 'a UserDirectory', true, ['add', 'get', 'list', 'update', 'remove']);
  check.function('actor');
  check.number('maxBodyBytes', { min: 1, integer: true });
  const { users } = options;
  const actor = options.actor ?? requestActor;
  const body = jsonBody({ limit: options.maxBodyBytes ?? 16 * 1024, required: true });
  const router = Router();
  router.post('/', body, async (req, res) => {
    res.status(201).json(view(await users.add(req.body as AddUserInput, { actor: actor(req) })));
  });
  router.get('/', async (_req, res) => {
    res.json({ users: (await users.list()).map(view) });
  });
  router.get('/:id', async (req, res) => {
    const user = await users.get(req.params.id);
    if (!user) throw new NotFoundError('no user with this id');
    res.json(view(user));
  });
  router.get('/:id/history', async (req, res) => {
    const history = await users.history(req.params.id, { limit: limitOf(req.query.limit) });
    res.json({ history: history.map(changeView) });
  });
  router.patch('/:id', body, async (req, res) => {
    res.json(view(await users.update(String(req.params.id), req.body as UpdateUserInput, { actor: actor(req) })));
  });
  router.delete('/:id', async (req, res) => {
    await users.remove(req.params.id, { actor: actor(req) });
    res.status(204).end();
  });
  router.use(badPath);
  return router;
}
