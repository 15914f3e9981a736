import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createArgon2Hasher, createMemoryUserStore, createUserDirectory, type UserChange } from '@aikb/core/auth';
import { errorHandler } from './error-handler';
import { usersRouter } from './users-router';

/** No global body parser: the router parses its own bodies. `x-actor` stands in for a guard. */
function app(options: { onChange?: (change: UserChange) => void } = {}) {
  const store = createMemoryUserStore();
  const hasher = createArgon2Hasher({ memoryCost: 1024, timeCost: 1 });
  const users = createUserDirectory({ store, hasher, ...options });
  const server = express()
    .use('/users', usersRouter({ users, actor: (req) => req.get('x-actor') ?? 'admin-token' }))
    .use(errorHandler());
  return { server, store, hasher };
}

describe('usersRouter', () => {
  it('creates, lists, updates and deletes users without ever returning a hash', async () => {
    const { server, store, hasher } = app();
    const created = await request(server)
      .post('/users')
      .send({ email: 'new@example.com', password: 'long enough', roles: ['user'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'new@example.com', roles: ['user'], disabled: false });
    expect(JSON.stringify(created.body)).not.toMatch(/argon2|passwordHash/);
    expect(await hasher.verify((await store.findByEmail('new@example.com'))!.passwordHash!, 'long enough')).toBe(true);

    const listed = await request(server).get('/users');
    expect(listed.body.users).toHaveLength(1);
    const patched = await request(server)
      .patch(`/users/${created.body.id}`)
      .send({ roles: ['admin'], disabled: true });
    expect(patched.body).toMatchObject({ roles: ['admin'], disabled: true });
    expect((await request(server).delete(`/users/${created.body.id}`)).status).toBe(204);
    expect((await request(server).delete(`/users/${created.body.id}`)).status).toBe(404);
  });

  it.each([
    [{ email: 'a@example.com', password: 'short' }, 'password'],
    [{ email: 'a@example.com', password: 'p'.repeat(1025) }, 'password'],
    [{ email: 'not-an-email', password: 'long enough' }, 'email'],
    [{ email: 'a@example.com', password: 'long enough', roles: 'admin' }, 'roles'],
    [{ email: 'a@example.com', password: 'long enough', roles: ['Admin!'] }, 'roles[0]'],
  ])('answers %j with 400 naming %s, creating nothing', async (body, field) => {
    const { server, store } = app();
    const res = await request(server).post('/users').send(body);
    expect(res.status).toBe(400);
    expect(res.body.field).toBe(field);
    expect(await store.list()).toEqual([]);
  });

  it('answers a duplicate email (any case) with 409 and an unknown id with 404', async () => {
    const { server } = app();
    await request(server).post('/users').send({ email: 'dup@example.com', password: 'long enough' });
    expect((await request(server).post('/users').send({ email: 'DUP@example.com', password: 'long enough' })).status).toBe(409);
    expect((await request(server).patch('/users/nope').send({ disabled: true })).status).toBe(404);
    expect((await request(server).patch('/users/nope').send({ disabled: 'yes' })).status).toBe(400);
  });
});

describe('usersRouter input', () => {
  it.each([
    ['{"disabled":true,"role":["admin"]}', 'role'],
    ['{"roles":["user"],"isAdmin":true}', 'isAdmin'],
    ['{"__proto__":{"roles":["admin"]}}', '__proto__'],
    ['{"passwordHash":"$argon2id$forged"}', 'passwordHash'],
    ['{"tokenGeneration":0}', 'tokenGeneration'],
  ])('answers PATCH %s with 400 naming the unknown field %s, changing nothing', async (body, field) => {
    const { server, store } = app();
    const created = (
      await request(server)
        .post('/users')
        .send({ email: 'p@example.com', password: 'long enough', roles: ['user'] })
    ).body;
    const before = await store.get(created.id);
    const res = await request(server).patch(`/users/${created.id}`).set('content-type', 'application/json').send(body);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(res.body.field).toBe(field);
    expect(res.body.detail).toMatch(/unknown field/);
    expect(await store.get(created.id)).toEqual(before);
  });

  it('answers POST with an unknown field and PATCH with no field with 400, creating nothing', async () => {
    const { server, store } = app();
    const res = await request(server)
      .post('/users')
      .send({ email: 'x@example.com', password: 'long enough', roles: ['admin'], disabled: false });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('disabled');
    expect(await store.list()).toEqual([]);
    const created = (await request(server).post('/users').send({ email: 'y@example.com', password: 'long enough' })).body;
    expect((await request(server).patch(`/users/${created.id}`).send({})).status).toBe(400);
  });

  it('parses its own body whatever the Content-Type, and refuses one that is not JSON or too large with 400', async () => {
    const { server } = app();
    const created = await request(server)
      .post('/users')
      .set('content-type', 'application/x-www-form-urlencoded')
      .send('{"email":"f@example.com","password":"long enough"}');
    expect(created.status).toBe(201);
    expect((await request(server).patch(`/users/${created.body.id}`).set('content-type', 'application/json').send('{nope')).status).toBe(400);
    const big = await request(server)
      .patch(`/users/${created.body.id}`)
      .set('content-type', 'application/json')
      .send(JSON.stringify({ email: `${'a'.repeat(20_000)}@example.com` }));
    expect(big.status).toBeGreaterThanOrEqual(400);
    expect(big.status).toBeLessThan(500);
  });

  it.each(['%00', 'a%00b', '%ZZ', `${'x'.repeat(200)}`, '%E2%80%AE', 'a%20b'])('answers the id %s with 404 or 400 on every route, never a 5xx', async (id) => {
    const { server } = app();
    for (const res of [
      await request(server).get(`/users/${id}`),
      await request(server).get(`/users/${id}/history`),
      await request(server).patch(`/users/${id}`).send({ disabled: true }),
      await request(server).delete(`/users/${id}`),
    ]) {
      expect([400, 404]).toContain(res.status);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(JSON.stringify(res.body)).not.toMatch(/\\u0000/);
    }
  });
});

describe('usersRouter audit', () => {
  it('records who created, changed and deleted a user, served newest first at GET /:id/history', async () => {
    const changes: UserChange[] = [];
    const { server } = app({ onChange: (c) => void changes.push(c) });
    const created = (
      await request(server)
        .post('/users')
        .set('x-actor', 'user-1')
        .send({ email: 'h@example.com', password: 'long enough', roles: ['admin'] })
    ).body;
    await request(server)
      .patch(`/users/${created.id}`)
      .set('x-actor', 'admin-token')
      .send({ roles: ['user'], password: 'another long one' });
    await request(server).delete(`/users/${created.id}`).set('x-actor', 'user-2');
    const res = await request(server).get(`/users/${created.id}/history`);
    expect(res.status).toBe(200);
    expect(res.body.history.map((h: UserChange) => [h.action, h.actor])).toEqual([
      ['delete', 'user-2'],
      ['update', 'admin-token'],
      ['create', 'user-1'],
    ]);
    expect(res.body.history[1]).toMatchObject({ fields: ['password', 'roles'], after: { roles: ['user'] } });
    expect(JSON.stringify(res.body)).not.toMatch(/argon2|long enough|another long one/);
    expect((await request(server).get(`/users/${created.id}/history?limit=1`)).body.history).toHaveLength(1);
    expect((await request(server).get(`/users/${created.id}/history?limit=0`)).status).toBe(400);
    expect((await request(server).get(`/users/${created.id}/history?limit=abc`)).body.field).toBe('limit');
    expect(changes.map((c) => [c.action, c.actor, c.userId])).toEqual([
      ['create', 'user-1', created.id],
      ['update', 'admin-token', created.id],
      ['delete', 'user-2', created.id],
    ]);
  });
});
