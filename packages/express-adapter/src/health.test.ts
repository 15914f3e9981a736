import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createHealthRegistry } from '@aikb/core/health';
import { healthRouter } from './index';

describe('healthRouter', () => {
  it('answers 200 with every component measured when all are ok', async () => {
    const registry = createHealthRegistry();
    registry.register('database', () => ({ status: 'ok' }));
    let now = 1_000_000;
    const app = express().use('/api/health', healthRouter({ registry, version: '1.2.3', now: () => now }));
    now += 65_000;
    const res = await request(app).get('/api/health');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', uptimeSeconds: 65, version: '1.2.3', components: { database: { status: 'ok' } } });
  });

  it('answers 503 naming the component that is down', async () => {
    const registry = createHealthRegistry();
    registry.register('database', () => ({ status: 'ok' }));
    registry.register('redis', () => ({ status: 'down', error: 'ECONNREFUSED' }));
    const res = await request(express().use('/api/health', healthRouter({ registry }))).get('/api/health');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'degraded', components: { redis: { status: 'down', error: 'ECONNREFUSED' } } });
  });
});
