import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { UnavailableError } from '@aikb/core';
import { createMemoryUserStore, createSessionVerifier, createTokenService, type UserStore } from '@aikb/core/auth';
import { adminGuard } from './admin-guard';
import { errorHandler } from './error-handler';
import { currentActor, currentUser, getPrincipal, requirePrincipal, requireRole, requireUser } from './user-auth';

const tokens = createTokenService({ secret: 'guard-test-secret-guard-test-secret' });
const adminToken = 'a-very-long-admin-token';

function setup(options: { adminToken?: string; users?: boolean; store?: UserStore } = { adminToken, users: true }) {
  const store = options.store ?? createMemoryUserStore();
  // cacheTtlMs 0: every request reads the user's current state, as a change on another instance would be seen.
  const sessions = createSessionVerifier({ tokens, store, cacheTtlMs: 0 });
  const server = express()
    .use('/api/admin', adminGuard({ adminToken: options.adminToken, ...(options.users ? { sessions } : {}) }))
    .get('/api/admin/ping', (_req, res) => {
      res.json({ ok: true, actor: currentActor(res) });
    })
    .get('/api/me', requireUser({ sessions }), requireRole('user'), (req, res) => {
      res.json({ principal: requirePrincipal(req), claims: currentUser(res), locals: res.locals });
    })
    .get('/api/admin/whoami', (req, res) => {
      res.json({ principal: getPrincipal(req) ?? null, actor: currentActor(res) });
    })
    .get('/api/anyone', (req, res) => {
      res.json({ principal: requirePrincipal(req) });
    })
    .use(errorHandler());
  const user = async (roles: string[]) => {
    const created = await store.create({ email: `u${Math.random()}@example.com`, passwordHash: null, roles });
    return { ...created, token: (await tokens.issue(created)).token };
  };
  return { server, store, user };
}

describe('adminGuard', () => {
  it('lets the admin token through, and a user token with the admin role, recording which one', async () => {
    const { server, user } = setup();
    const viaAdminToken = await request(server).get('/api/admin/ping').set('authorization', `Bearer ${adminToken}`);
    expect(viaAdminToken.status).toBe(200);
    expect(viaAdminToken.body.actor).toBe('admin-token');
    const admin = await user(['admin']);
    const viaUser = await request(server).get('/api/admin/ping').set('authorization', `Bearer ${admin.token}`);
    expect(viaUser.status).toBe(200);
    expect(viaUser.body.actor).toBe(admin.id);
  });

  it('answers a missing header with 401 naming the header it expects', async () => {
    const res = await request(setup().server).get('/api/admin/ping');
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(res.body.detail).toMatch(/Authorization: Bearer <ADMIN_TOKEN> or Bearer <user token with the admin role>/);
  });

  it('answers a user token without the admin role with 403, an invalid one with 401', async () => {
    const { server, user } = setup();
    const { token } = await user(['user']);
    const res = await request(server).get('/api/admin/ping').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(403);
    expect(res.body.detail).toMatch(/admin role/);
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${token}x`)).status).toBe(401);
  });

  it.each([
    ['deleted', (s: UserStore, id: string) => s.delete(id)],
    ['disabled', (s: UserStore, id: string) => s.update(id, { disabled: true })],
    ['given a new password', (s: UserStore, id: string) => s.update(id, { passwordHash: '$x$new' })],
  ])('answers the admin token of a user since %s with 401 "revoked"', async (_what, change) => {
    const { server, store, user } = setup();
    const admin = await user(['admin']);
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${admin.token}`)).status).toBe(200);
    await change(store, admin.id);
    const res = await request(server).get('/api/admin/ping').set('authorization', `Bearer ${admin.token}`);
    expect(res.status).toBe(401);
    expect(res.body.detail).toBe('the token has been revoked; log in again');
  });

  it('decides on the current roles, not the roles in the token', async () => {
    const { server, store, user } = setup();
    const promoted = await user(['user']);
    // A change that does not revoke (as a re-hash would not): the token still carries ['user'].
    await store.update(promoted.id, { roles: ['admin'], revokeTokens: false });
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${promoted.token}`)).status).toBe(200);
    await store.update(promoted.id, { roles: ['user'], revokeTokens: false });
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${promoted.token}`)).status).toBe(403);
  });

  it('fails closed with 503 when the user store is down, hiding its message', async () => {
    const store = createMemoryUserStore();
    const created = await store.create({ email: 'a@example.com', passwordHash: null, roles: ['admin'] });
    const { server } = setup({ adminToken, users: true, store: { ...store, get: () => Promise.reject(new UnavailableError('ECONNREFUSED 10.0.0.5')) } });
    const res = await request(server)
      .get('/api/admin/ping')
      .set('authorization', `Bearer ${(await tokens.issue(created)).token}`);
    expect(res.status).toBe(503);
    expect(JSON.stringify(res.body)).not.toMatch(/ECONNREFUSED|10\.0\.0\.5/);
  });

  it('answers a wrong token with 403 and a malformed header with 401', async () => {
    const { server } = setup();
    expect((await request(server).get('/api/admin/ping').set('authorization', 'Bearer nope')).status).toBe(403);
    expect((await request(server).get('/api/admin/ping').set('authorization', adminToken)).status).toBe(401);
  });

  it('refuses every near miss of the admin token: a prefix, an extension, one byte off, a longer or non-ASCII one', async () => {
    const { server } = setup();
    const misses = [
      adminToken.slice(0, -1),
      `${adminToken}x`,
      `${adminToken.slice(0, -1)}N`,
      `${adminToken}${'A'.repeat(300)}`,
      'x'.repeat(300),
      `${adminToken}é`,
    ];
    for (const token of misses) {
      const res = await request(server).get('/api/admin/ping').set('authorization', `Bearer ${token}`);
      expect(res.status, token).toBe(403);
    }
  });

  it('takes an admin token longer than the compared buffer, and only that token', async () => {
    const long = `L${'0123456789'.repeat(40)}`;
    const { server } = setup({ adminToken: long });
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${long}`)).status).toBe(200);
    expect(
      (
        await request(server)
          .get('/api/admin/ping')
          .set('authorization', `Bearer ${long.slice(0, -1)}`)
      ).status,
    ).toBe(403);
    expect((await request(server).get('/api/admin/ping').set('authorization', `Bearer ${long}0`)).status).toBe(403);
    expect(
      (
        await request(server)
          .get('/api/admin/ping')
          .set('authorization', `Bearer ${long.slice(0, 256)}`)
      ).status,
    ).toBe(403);
  });

  it('opens nothing when no admin token is configured', async () => {
    const res = await request(setup({}).server).get('/api/admin/ping').set('authorization', 'Bearer anything-at-all-here');
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/ADMIN_TOKEN is not configured/);
  });

  it('refuses a bare TokenService in place of a session verifier', () => {
    expect(() => adminGuard({ sessions: tokens as never })).toThrow(/sessions/);
    expect(() => requireUser({ sessions: tokens as never })).toThrow(/sessions/);
  });
});

describe('requireUser', () => {
  it('takes a user token and gives its Principal through getPrincipal / requirePrincipal only, not res.locals', async () => {
    const { server, user } = setup();
    const someone = await user(['user']);
    const res = await request(server).get('/api/me').set('authorization', `Bearer ${someone.token}`);
    expect(res.status).toBe(200);
    expect(res.body.principal).toEqual({ userId: someone.id, roles: ['user'] });
    expect(res.body.claims).toMatchObject({ userId: someone.id, roles: ['user'], tokenGeneration: 0 });
    expect(res.body.locals).toEqual({});
  });

  it('answers requirePrincipal without a verified user token with 401 problem+json', async () => {
    const { server } = setup();
    const res = await request(server).get('/api/anyone').set('authorization', `Bearer ${adminToken}`);
    expect([res.status, res.headers['content-type']]).toEqual([401, expect.stringMatching(/^application\/problem\+json/)]);
    expect(res.body.detail).toMatch(/Authorization: Bearer <token>/);
  });

  it("gives no Principal for the admin token (no user), and the user's for an admin user token", async () => {
    const { server, user } = setup();
    const viaToken = await request(server).get('/api/admin/whoami').set('authorization', `Bearer ${adminToken}`);
    expect(viaToken.body).toEqual({ principal: null, actor: 'admin-token' });
    const admin = await user(['admin', 'user']);
    const viaUser = await request(server).get('/api/admin/whoami').set('authorization', `Bearer ${admin.token}`);
    expect(viaUser.body).toEqual({ principal: { userId: admin.id, roles: ['admin', 'user'] }, actor: admin.id });
  });

  it('answers no token with 401 naming the header, a missing role with 403, a revoked token with 401', async () => {
    const { server, store, user } = setup();
    const none = await request(server).get('/api/me');
    expect(none.status).toBe(401);
    expect(none.body.detail).toMatch(/Authorization: Bearer <token>/);
    const roleless = await user([]);
    expect((await request(server).get('/api/me').set('authorization', `Bearer ${roleless.token}`)).status).toBe(403);
    const someone = await user(['user']);
    await store.delete(someone.id);
    expect((await request(server).get('/api/me').set('authorization', `Bearer ${someone.token}`)).status).toBe(401);
  });
});
