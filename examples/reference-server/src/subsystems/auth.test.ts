import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import pino from 'pino';
import { Registry } from 'prom-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessInvalidationBus } from '@aikb/core/cache';
import { createDatabase, migrate, type Database } from '@aikb/core/db';
import { createFeatureFlagClient, createMemoryFlagStore, type FeatureFlagClient } from '@aikb/core/flags';
import { createStatusRegistry } from '@aikb/core/health';
import { errorHandler } from '@aikb/express';
import { createPrometheusMeterProvider } from '@aikb/prometheus';
import { loadConfig } from '../config';
import type { ServerContext } from '../context';
import type { Infrastructure } from '../infrastructure';
import { serverMigrations } from '../migrations';
import { CONSTANT_TIME_FLAG, createAuthSubsystem, type AuthSubsystem } from './auth';

describe('createAuthSubsystem', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'aikb-auth-'));
  let db: Database;
  let auth: AuthSubsystem;
  let base: Omit<ServerContext, 'auth' | 'observability' | 'sagas' | 'search' | 'documents'>;
  let flags: FeatureFlagClient;

  beforeAll(async () => {
    db = await createDatabase({ dataDir: 'memory://', vector: false });
    await migrate(db.pool, serverMigrations);
    const infra = { db, redis: undefined, migrated: Promise.resolve(), firstMigrationAttempt: Promise.resolve() } as unknown as Infrastructure;
    flags = createFeatureFlagClient({ store: createMemoryFlagStore() });
    await flags.start();
    await flags.putFlag(CONSTANT_TIME_FLAG, { enabled: true, rolloutPercentage: 100 });
    const metrics = new Registry();
    base = {
      config: loadConfig({ AIKB_DATA_DIR: path.join(root, 'data') }, '/'),
      logger: pino({ level: 'silent' }),
      infra,
      status: createStatusRegistry(),
      metrics,
      meter: createPrometheusMeterProvider({ registry: metrics }).getMeter('test'),
      flags,
      bus: createInProcessInvalidationBus(),
    };
    auth = await createAuthSubsystem(base);
  });
  afterAll(async () => {
    await db.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('reports its configuration and counters on the status registry', async () => {
    const { auth: status } = await base.status.collect();
    expect(status).toMatchObject({
      constantTime: { enabled: true, flag: 'priority_1_3_constant_time_auth' },
      floorMs: 500,
      jitterMs: 15,
      hasher: { algorithm: 'argon2id', parameters: { m: 19456, t: 2, p: 1 } },
      rateLimits: 'memory',
      overruns: 0,
    });
    expect((status as { hasher: { verifyCostMs: number } }).hasher.verifyCostMs).toBeGreaterThan(0);
  });

  it('records each login in aikb_auth_login_duration_seconds by outcome, and exposes the overrun counter', async () => {
    const app = express().post('/auth/login', auth.login).use(errorHandler());
    expect((await request(app).post('/auth/login').send({ email: 'test@example.com', password: 'test12345' })).status).toBe(200);
    expect((await request(app).post('/auth/login').send({ email: 'ghost@example.com', password: 'test12345' })).status).toBe(401);
    const text = await base.metrics.metrics();
    expect(text).toMatch(/aikb_auth_login_duration_seconds_count\{outcome="success",constant_time="true"\} 1/);
    expect(text).toMatch(/aikb_auth_login_duration_seconds_count\{outcome="failure",constant_time="true"\} 1/);
    expect(text).toMatch(/# TYPE aikb_auth_deadline_overruns_total counter/);
  });

  it('follows the priority_1_3_constant_time_auth flag per attempt: off means natural timing', async () => {
    const app = express().post('/auth/login', auth.login).use(errorHandler());
    await flags.updateFlag(CONSTANT_TIME_FLAG, { enabled: false });
    try {
      expect((await request(app).post('/auth/login').send({ email: 'ghost@example.com', password: 'test12345' })).status).toBe(401);
      expect(await base.metrics.metrics()).toMatch(/aikb_auth_login_duration_seconds_count\{outcome="failure",constant_time="false"\} 1/);
      const { auth: status } = await base.status.collect();
      expect(status).toMatchObject({ constantTime: { enabled: false } });
    } finally {
      await flags.updateFlag(CONSTANT_TIME_FLAG, { enabled: true });
    }
  });

  it('stays constant-time while the flag is unknown (fails closed)', async () => {
    const unknown = createFeatureFlagClient({ store: createMemoryFlagStore() });
    await unknown.start();
    const status = createStatusRegistry();
    await createAuthSubsystem({ ...base, flags: unknown, status });
    expect((await status.collect()).auth).toMatchObject({ constantTime: { enabled: true } });
  });
});
