import express from 'express';
import pino from 'pino';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { metrics } from '@opentelemetry/api';
import { createDatabase, ensureVectorExtension, migrate, type Database, type VectorSupport } from '@aikb/core/db';
import { createFeatureFlagClient, createMemoryFlagStore, type FeatureFlagClient } from '@aikb/core/flags';
import { createHealthRegistry, createStatusRegistry, type HealthRegistry } from '@aikb/core/health';
import { searchStoreMigrations } from '@aikb/core/search';
import { errorHandler, requireUser } from '@aikb/express';
import type { SessionVerifier, VerifiedSession } from '@aikb/core/auth';
import type { Principal } from '@aikb/core';
import type { ServerConfig } from '../config';
import type { Infrastructure } from '../infrastructure';
import { RBAC_FILTERING_FLAG, SEARCH_DIMENSIONS, VECTOR_VALIDATION_FLAG, migrateSearchTables, searchSubsystem } from './search';

/** No SDK registered: the global meter records nothing (the metrics are tested in core). */
const noopMeter = metrics.getMeter('search-subsystem-test');

/** A session verifier that accepts any token as `principal`. */
function stubSessions(principal: Principal): SessionVerifier {
  return {
    verify: () => Promise.resolve({ principal } as unknown as VerifiedSession),
    invalidate: () => undefined,
  } as unknown as SessionVerifier;
}

describe('searchSubsystem', () => {
  let db: Database;
  let health: HealthRegistry;
  let flags: FeatureFlagClient;

  async function start(options: { vector: boolean }) {
    db = await createDatabase({ dataDir: 'memory://', vector: options.vector });
    const support: VectorSupport = options.vector
      ? await ensureVectorExtension(db.pool)
      : { available: false, reason: 'this PostgreSQL server has no pgvector extension' };
    health = createHealthRegistry();
    flags = createFeatureFlagClient({ store: createMemoryFlagStore() });
    await flags.start();
    await flags.putFlag(VECTOR_VALIDATION_FLAG, { enabled: true, rolloutPercentage: 100 });
    await flags.putFlag(RBAC_FILTERING_FLAG, { enabled: true, rolloutPercentage: 100 });
    const infra = { db, health, migrated: Promise.resolve(), vector: () => support } as unknown as Infrastructure;
    return searchSubsystem.start({
      config: {} as ServerConfig,
      logger: pino({ level: 'silent' }),
      infra,
      status: createStatusRegistry(),
      flags,
      meter: noopMeter,
    });
  }

  beforeEach(() => {
    db = undefined as unknown as Database;
  });
  afterEach(async () => {
    await flags?.close();
    await db?.close();
  });

  it('starts without pgvector, reporting search unavailable in health, and answers 503', async () => {
    const { search } = await start({ vector: false });
    const report = await health.check();
    expect(report.components.search).toMatchObject({ status: 'disabled', available: false, reason: expect.stringMatching(/pgvector/) as string });
    expect(report.status).toBe('ok');
    await expect(search.store.search({ principal: { userId: 'u', roles: [] }, query: 'x' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('refuses to start on a schema made for another dimension, naming both', async () => {
    db = await createDatabase({ dataDir: 'memory://' });
    await ensureVectorExtension(db.pool);
    await migrate(db.pool, searchStoreMigrations({ dimensions: 64 }));
    const existing = db;
    health = createHealthRegistry();
    flags = createFeatureFlagClient({ store: createMemoryFlagStore() });
    const infra = { db: existing, health, migrated: Promise.resolve(), vector: () => ({ available: true, version: '0.8.7' }) } as unknown as Infrastructure;
    await expect(
      searchSubsystem.start({ config: {} as ServerConfig, logger: pino({ level: 'silent' }), infra, status: createStatusRegistry(), flags, meter: noopMeter }),
    ).rejects.toThrow(/64-dimension vectors but the embedder hashing-v1\/256 makes 256-dimension/);
  });

  it('gates validation and filtering by the runbook flags, per request', async () => {
    const { search } = await start({ vector: true });
    expect((await health.check()).components.search).toMatchObject({ status: 'ok', dimensions: 256 });
    await search.store.indexDocument({ id: 'mine', title: 'Mine', text: 'Pool exhausted runbook.', acl: ['role:user'] });
    await search.store.indexDocument({ id: 'theirs', title: 'Theirs', text: 'Pool exhausted, secret.', acl: ['user:other'] });
    const app = express()
      // Every request carries a token the stub verifier accepts as `me` (role `user`).
      .use((req, _res, next) => {
        req.headers.authorization = 'Bearer test';
        next();
      })
      .use(requireUser({ sessions: stubSessions({ userId: 'me', roles: ['user'] }) }))
      .use('/api', search.userRoutes)
      .use(errorHandler());
    const zero = { vector: Array.from({ length: 256 }, () => 0) };

    expect((await request(app).post('/api/search').send(zero)).body).toMatchObject({ problem: 'zero_vector' });
    await flags.putFlag(VECTOR_VALIDATION_FLAG, { enabled: false, rolloutPercentage: 0 });
    const unvalidated = await request(app).post('/api/search').send(zero);
    expect(unvalidated.status).toBe(200);
    expect(unvalidated.body.results.map((r: { documentId: string }) => r.documentId)).toEqual(['mine']);

    expect((await request(app).post('/api/search').send({ query: 'pool' })).body.strategy).toBe('exact');
    await flags.putFlag(RBAC_FILTERING_FLAG, { enabled: false, rolloutPercentage: 0 });
    const old = await request(app).post('/api/search').send({ query: 'pool', mode: 'vector' });
    expect(old.body).toMatchObject({ strategy: 'overfetch', complete: true });
    expect(old.body.results.map((r: { documentId: string }) => r.documentId)).toEqual(['mine']);
    expect((await request(app).get('/api/documents/theirs')).status).toBe(404);
  });

  describe('migrateSearchTables (aikb migrate)', () => {
    const silent = pino({ level: 'silent' });
    const searchConfig = async () =>
      (await db.pool.query<{ ok: boolean }>("SELECT to_regclass('aikb_search_config') IS NOT NULL AS ok")).rows[0]!.ok
        ? (await db.pool.query<{ dimensions: number }>('SELECT dimensions FROM aikb_search_config')).rows
        : undefined;

    it('creates the search tables for the server dimension when the database has pgvector, once', async () => {
      db = await createDatabase({ dataDir: 'memory://' });
      const first = await migrateSearchTables(db.pool, silent);
      expect(first).toMatchObject({ kind: 'migrated', applied: ['search.0001_create_tables'], upToDate: 0, dimensions: SEARCH_DIMENSIONS });
      expect(await searchConfig()).toEqual([{ dimensions: SEARCH_DIMENSIONS }]);
      expect(await migrateSearchTables(db.pool, silent)).toMatchObject({ kind: 'migrated', applied: [], upToDate: 1 });
    });

    it('without pgvector creates nothing and says why', async () => {
      db = await createDatabase({ dataDir: 'memory://', vector: false });
      const outcome = await migrateSearchTables(db.pool, silent);
      expect(outcome).toEqual({ kind: 'skipped', reason: expect.stringMatching(/no pgvector extension/) as string });
      expect(await searchConfig()).toBeUndefined();
    });
  });
});
