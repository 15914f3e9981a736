import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { errorHandler } from '@aikb/express';
import { createAdminGuard } from './admin-guard';
import { loadConfig } from './config';

function app(adminToken?: string) {
  const config = loadConfig(adminToken ? { ADMIN_TOKEN: adminToken } : {}, '/');
  return express()
    .use('/api/admin', createAdminGuard({ config }))
    .get('/api/admin/ping', (_req, res) => {
      res.json({ ok: true });
    })
    .use(errorHandler());
}

describe('createAdminGuard', () => {
  const token = 'a-very-long-admin-token';

  it('lets the admin token through', async () => {
    const res = await request(app(token)).get('/api/admin/ping').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(200);
  });

  it('answers a missing header with 401 naming the header it expects', async () => {
    const res = await request(app(token)).get('/api/admin/ping');
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/Authorization: Bearer <ADMIN_TOKEN>/);
  });

  it('answers a wrong token with 403 and a malformed header with 401', async () => {
    expect((await request(app(token)).get('/api/admin/ping').set('authorization', 'Bearer nope')).status).toBe(403);
    expect((await request(app(token)).get('/api/admin/ping').set('authorization', token)).status).toBe(401);
  });

  it('opens nothing when no admin token is configured', async () => {
    const res = await request(app()).get('/api/admin/ping').set('authorization', 'Bearer anything-at-all-here');
    expect(res.status).toBe(401);
    expect(res.body.detail).toMatch(/ADMIN_TOKEN is not configured/);
  });
});
