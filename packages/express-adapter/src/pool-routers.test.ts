import express from 'express';
import type { PoolClient } from 'pg';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '@aikb/core';
import { checkDatabase, createDatabase } from '@aikb/core/db';
import { createHealthRegistry } from '@aikb/core/health';
import { createPoolMonitor, type PoolMonitor } from '@aikb/core/pool';
import { adminGuard, errorHandler, healthRouter, leakHuntRouter, notFound, poolStatsRouter } from './index';

const TOKEN = 'admin-token-for-leak-hunting-tests';
const fakePool = () => ({ connect: async () => ({}) as PoolClient, totalCount: 0, idleCount: 0, waitingCount: 0, options: { max: 4 } });

let monitor: PoolMonitor | undefined;
let now = 0;
afterEach(() => {
  monitor?.close();
  monitor = undefined;
});

function app(options?: Parameters<typeof leakHuntRouter>[1]) {
  now = 0;
  monitor = createPoolMonitor(fakePool(), { clock: { ...systemClock, now: () => now } });
  return express()
    .use('/api/health/pool-stats', poolStatsRouter(monitor))
    .use('/api/admin', adminGuard({ adminToken: TOKEN }))
    .use('/api/admin/pool/leak-hunting', leakHuntRouter(monitor, options))
    .use(notFound())
    .use(errorHandler());
}

describe('leakHuntRouter', () => {
  it('starts a hunt for the minutes asked, shows it in pool-stats, and ends it on {"enabled": false}', async () => {
    const server = app();
    const started = await request(server).post('/api/admin/pool/leak-hunting').set('Authorization', `Bearer ${TOKEN}`).send({ enabled: true, minutes: 2 });
    expect(started.status).toBe(200);
    expect(started.body).toEqual({ capturingStacks: true, always: false, remainingMs: 120_000 });
    now += 30_000;
    const stats = await request(server).get('/api/health/pool-stats');
    expect(stats.body.leakHunt).toEqual({ capturingStacks: true, always: false, remainingMs: 90_000 });
    const stopped = await request(server).post('/api/admin/pool/leak-hunting').set('Authorization', `Bearer ${TOKEN}`).send({ enabled: false });
    expect(stopped.body).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
  });

  it('hunts for the default 15 minutes, and stops by itself once they pass', async () => {
    const server = app();
    // The runbook's curl style: JSON without a Content-Type.
    const res = await request(server)
      .post('/api/admin/pool/leak-hunting')
      .set('Authorization', `Bearer ${TOKEN}`)
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('{"enabled": true}');
    expect(res.body.remainingMs).toBe(15 * 60_000);
    now += 15 * 60_000;
    expect(monitor!.leakHunt().capturingStacks).toBe(false);
  });

  it('is refused without the admin credential, changing nothing', async () => {
    const server = app();
    for (const [auth, status] of [
      [undefined, 401],
      ['Bearer wrong', 403],
    ] as const) {
      const req = request(server).post('/api/admin/pool/leak-hunting').send({ enabled: true });
      const res = await (auth ? req.set('Authorization', auth) : req);
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect(monitor!.leakHunt().capturingStacks).toBe(false);
  });

  it.each([
    ['no body', undefined, 'body'],
    ['an array', [true], 'body'],
    ['a string', '"yes"', 'body'],
    ['enabled as a string', { enabled: 'true' }, 'enabled'],
    ['an unknown field', { enabled: true, hours: 1 }, 'hours'],
    ['zero minutes', { enabled: true, minutes: 0 }, 'minutes'],
    ['negative minutes', { enabled: true, minutes: -5 }, 'minutes'],
    ['minutes as a string', { enabled: true, minutes: '5' }, 'minutes'],
    ['minutes above the bound', { enabled: true, minutes: 1441 }, 'minutes'],
    ['minutes with enabled false', { enabled: false, minutes: 5 }, 'minutes'],
    ['invalid JSON', '{"enabled": tru', 'body'],
  ])('answers 400 problem+json naming the field for %s, changing nothing', async (_name, body, field) => {
    const server = app();
    const req = request(server).post('/api/admin/pool/leak-hunting').set('Authorization', `Bearer ${TOKEN}`).set('Content-Type', 'application/json');
    const res = await (body === undefined ? req : req.send(typeof body === 'string' ? body : JSON.stringify(body)));
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 400, field });
    expect(monitor!.leakHunt()).toEqual({ capturingStacks: false, always: false, remainingMs: 0 });
  });

  it("refuses minutes beyond the monitor's own bound as a 400", async () => {
    now = 0;
    monitor = createPoolMonitor(fakePool(), { clock: { ...systemClock, now: () => now }, maxLeakHuntMs: 60_000 });
    const server = express().use('/hunt', leakHuntRouter(monitor)).use(errorHandler());
    const res = await request(server).post('/hunt').send({ enabled: true, minutes: 2 });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('minutes');
  });

  it('rejects bad options at construction, naming the option', () => {
    const m = createPoolMonitor(fakePool());
    expect(() => leakHuntRouter(m, { maxMinutes: 0 })).toThrow(/maxMinutes must be a positive number/);
    expect(() => leakHuntRouter(m, { defaultMinutes: 90, maxMinutes: 60 })).toThrow(/defaultMinutes must be a positive number ≤ maxMinutes/);
    m.close();
  });
});

describe('the health check of a monitored pool', () => {
  it('reports the pool as before the check: the database check waiting for the idle connection is not queued', async () => {
    const db = await createDatabase({ dataDir: 'memory://', vector: false });
    const pool = createPoolMonitor(db.pool);
    try {
      const health = createHealthRegistry();
      health.register('database', async () => ({ ...(await checkDatabase(db.pool)) }));
      health.register('pool', () => ({ status: 'ok', ...pool.stats() }));
      const server = express()
        .use('/api/health/pool-stats', poolStatsRouter(pool))
        .use('/api/health', healthRouter({ registry: health }));
      await db.pool.query('SELECT 1');
      for (let i = 0; i < 3; i++) {
        const res = await request(server).get('/api/health');
        const { status: _status, latencyMs: _latency, ...figures } = res.body.components.pool;
        expect(figures).toMatchObject({ activeConnections: 0, availableConnections: 1, queuedRequests: 0, maxConnections: 1, utilizationPercent: 0 });
        const stats = (await request(server).get('/api/health/pool-stats')).body;
        expect(figures.queuedRequests).toBe(stats.queuedRequests);
      }
    } finally {
      pool.close();
      await db.close();
    }
  });
});
