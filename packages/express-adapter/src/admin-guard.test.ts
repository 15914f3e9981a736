import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createTokenService } from '@aikb/core/auth';
import { adminGuard } from './admin-guard';
import { errorHandler } from './error-handler';
import { requireRole, requireUser } from './user-auth';

const tokens = createTokenService({ secret: 'guard-test-secret-guard-test-secret' });
const adminToken = 'a-very-long-admin-token';

function app(options: Parameters<typeof adminGuard>[0]) {
  return express()
    .use('/api/admin', adminGuard(options))
    .get('/api/admin/ping', (_req, res) => {
      res.json({ ok: true });
    })
    .get('/api/me', requireUser({ tokens }), requireRole('user'), (_req, res) => {
      res.json({ user: res.locals.user });
    })
    .use(errorHandler());
}

describe('adminGuard', () => {
  it('lets the admin token through, and a user token with the admin role', async () => {
    const server = app({ adminToken, tokens });
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${adminToken}`)).status).toBe(200);
    const { token } = await tokens.issue({ id: 'u1', roles: ['admin'] });
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${token}`)).status).toBe(200);
  });

  it('answers a missing header with 401 naming the header it expects', async () => {
    const res = await request(app({ adminToken, tokens })).get('/api/admin/ping');
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(res.body.detail).toMatch(/Authorization: Bearer <ADMIN_TOKEN> or Bearer <user token with the admin role>/);
  });

  it('answers a user token without the admin role with 403, an invalid one with 401', async () => {
    const server = app({ adminToken, tokens });
    const { token } = await tokens.issue({ id: 'u2', roles: ['user'] });
    const res = await request(server).get('/api/admin/ping').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(403);
    expect(res.body.detail).toMatch(/admin role/);
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${token}x`)).status).toBe(401);
  });

  it('answers a wrong token with 403 and a malformed header with 401', async () => {
    const server = app({ adminToken, tokens });
    expect((await request(server).get('/api/admin/ping').set('authorization', 'Bearer nope')).status).toBe(403);
    expect((await request(server).get('/api/admin/ping').set('authorization', adminToken)).status).toBe(401);
  });

  it('opens nothing when no admin token is configured', async () => {
    const res = await request(app({})).get('/api/admin/ping').set('authorization', 'Bearer anything-at-all-here');
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/ADMIN_TOKEN is not configured/);
  });
});

describe('requireUser', () => {
  it('takes a user token and exposes its claims', async () => {
    const { token } = await tokens.issue({ id: 'u3', roles: ['user'] });
    const res = await request(app({ adminToken, tokens })).get('/api/me').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ userId: 'u3', roles: ['user'] });
  });

  it('answers no token with 401 naming the header, and a missing role with 403', async () => {
    const server = app({ adminToken, tokens });
    const none = await request(server).get('/api/me');
    expect(none.status).toBe(401);
    expect(none.body.detail).toMatch(/Authorization: Bearer <token>/);
    const { token } = await tokens.issue({ id: 'u4', roles: [] });
    expect((await request(server).get('/api/me').set('authorization', `Bearer ${token}`)).status).toBe(403);
  });
});
