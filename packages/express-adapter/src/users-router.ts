import { Router } from 'express';
import { ValidationError } from '@aikb/core';
import type { User, UserDirectory } from '@aikb/core/auth';

const view = (user: User) => ({
  id: user.id,
  email: user.email,
  roles: user.roles,
  disabled: user.disabled,
  createdAt: user.createdAt.toISOString(),
  updatedAt: user.updatedAt.toISOString(),
});

function object(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body', 'expected a JSON object');
  return body as Record<string, unknown>;
}

/**
 * User management, to mount behind an admin guard (needs `express.json()` before it):
 * `POST /` `{ email, password, roles }` → 201, `GET /` → `{ users }`, `PATCH /:id`
 * `{ email?, password?, roles?, disabled? }`, `DELETE /:id` → 204. Password hashes never leave.
 */
export function usersRouter(options: { users: UserDirectory }): Router {
  const { users } = options;
  const router = Router();
  router.post('/', async (req, res) => {
    const body = object(req.body);
    res.status(201).json(view(await users.add({ email: body.email, password: body.password, roles: body.roles })));
  });
  router.get('/', async (_req, res) => {
    res.json({ users: (await users.list()).map(view) });
  });
  router.patch('/:id', async (req, res) => {
    res.json(view(await users.update(req.params.id!, object(req.body))));
  });
  router.delete('/:id', async (req, res) => {
    await users.remove(req.params.id!);
    res.status(204).end();
  });
  return router;
}
