import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createArgon2Hasher, createMemoryUserStore, createUserDirectory } from '@aikb/core/auth';
import { errorHandler } from './error-handler';
import { usersRouter } from './users-router';

function app() {
  const store = createMemoryUserStore();
  const hasher = createArgon2Hasher({ memoryCost: 1024, timeCost: 1 });
  const server = express().use(express.json()).use('/users', usersRouter({ users: createUserDirectory({ store, hasher }) })).use(errorHandler());
  return { server, store, hasher };
}

describe('usersRouter', () => {
  it('creates, lists, updates and deletes users without ever returning a hash', async () => {
    const { server, store, hasher } = app();
    const created = await request(server).post('/users').send({ email: 'new@example.com', password: 'long enough', roles: ['user'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'new@example.com', roles: ['user'], disabled: false });
    expect(JSON.stringify(created.body)).not.toMatch(/argon2|passwordHash/);
    expect(await hasher.verify((await store.findByEmail('new@example.com'))!.passwordHash!, 'long enough')).toBe(true);

    const listed = await request(server).get('/users');
    expect(listed.body.users).toHaveLength(1);
    const patched = await request(server).patch(`/users/${created.body.id}`).send({ roles: ['admin'], disabled: true });
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
