import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import pino from 'pino';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { metrics } from '@opentelemetry/api';
import { createDatabase, ensureVectorExtension, migrate, type Database, type VectorSupport } from '@aikb/core/db';
import { until } from '@aikb/test-support';
import { createFeatureFlagClient, createMemoryFlagStore, type FeatureFlagClient } from '@aikb/core/flags';
import { createHealthRegistry, createStatusRegistry, type HealthRegistry } from '@aikb/core/health';
import { searchStoreMigrations } from '@aikb/core/search';
import { errorHandler, requireUser } from '@aikb/express';
import type { SessionVerifier, VerifiedSession } from '@aikb/core/auth';
import type { Principal } from '@aikb/core';
import { loadConfig, type EmbeddingsConfig, type ServerConfig } from '../config';
import type { Infrastructure } from '../infrastructure';
import { RBAC_FILTERING_FLAG, SEARCH_DIMENSIONS, VECTOR_VALIDATION_FLAG, migrateSearchTables, searchSubsystem } from './search';

/** The default configuration: the hashing embedder. */
const hashingConfig = { embeddings: { kind: 'hashing', dimensions: SEARCH_DIMENSIONS } } as ServerConfig;

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
      config: hashingConfig,
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
      searchSubsystem.start({ config: hashingConfig, logger: pino({ level: 'silent' }), infra, status: createStatusRegistry(), flags, meter: noopMeter }),
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
      expect(first).toMatchObject({
        kind: 'migrated',
        applied: ['search.0001_create_tables', 'search.0002_hnsw_ef_construction', 'search.0003_principal_indexes'],
        upToDate: 0,
        dimensions: SEARCH_DIMENSIONS,
      });
      expect(await searchConfig()).toEqual([{ dimensions: SEARCH_DIMENSIONS }]);
      expect(await migrateSearchTables(db.pool, silent)).toMatchObject({ kind: 'migrated', applied: [], upToDate: 3 });
    });

    it('without pgvector creates nothing and says why', async () => {
      db = await createDatabase({ dataDir: 'memory://', vector: false });
      const outcome = await migrateSearchTables(db.pool, silent);
      expect(outcome).toEqual({ kind: 'skipped', reason: expect.stringMatching(/no pgvector extension/) as string });
      expect(await searchConfig()).toBeUndefined();
    });
  });

  describe('with EMBEDDINGS_URL: an OpenAI-compatible embedding server', () => {
    const apiKey = 'sk-fake-embeddings-key-0123456789';
    const D = 8;
    let fake: Server;
    let requests: { authorization: string | undefined; model: unknown; input: string[] }[];

    /** A vector of D letter counts: texts sharing words point the same way. */
    function embed(text: string): number[] {
      const vector = Array.from({ length: D }, () => 0);
      for (const c of text.toLowerCase()) if (c >= 'a' && c <= 'z') vector[c.charCodeAt(0) % D]! += 1;
      vector[0]! += 0.001; // never the zero vector
      return vector;
    }

    beforeEach(async () => {
      requests = [];
      fake = createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          const parsed = JSON.parse(body) as { model: unknown; input: string[] };
          requests.push({ authorization: req.headers.authorization, model: parsed.model, input: parsed.input });
          if (req.url !== '/v1/embeddings' || req.headers.authorization !== `Bearer ${apiKey}`) {
            res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad key"}');
            return;
          }
          const data = parsed.input.map((text, index) => ({ object: 'embedding', index, embedding: embed(text) }));
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data, model: parsed.model }));
        });
      });
      await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    });
    afterEach(async () => {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    });

    const configFor = (): ServerConfig =>
      loadConfig(
        {
          EMBEDDINGS_URL: `http://127.0.0.1:${(fake.address() as AddressInfo).port}/v1`,
          EMBEDDINGS_MODEL: 'fake-embed',
          EMBEDDINGS_DIMENSIONS: String(D),
          EMBEDDINGS_API_KEY: apiKey,
        },
        '/',
      );

    /** Starts search on a fresh embedded database with `config`, logging at debug level into `lines`. */
    async function startWith(config: ServerConfig) {
      const lines: string[] = [];
      const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) }));
      db = await createDatabase({ dataDir: 'memory://' });
      const support = await ensureVectorExtension(db.pool);
      health = createHealthRegistry();
      const status = createStatusRegistry();
      flags = createFeatureFlagClient({ store: createMemoryFlagStore() });
      const infra = { db, health, migrated: Promise.resolve(), vector: () => support } as unknown as Infrastructure;
      const { search } = await searchSubsystem.start({ config, logger, infra, status, flags, meter: noopMeter });
      return { search, status, lines };
    }

    it('indexes and searches with the configured model, its D, and never shows the key', async () => {
      const { search, status, lines } = await startWith(configFor());

      expect(search.store.dimensions).toBe(D);
      expect((await db.pool.query<{ dimensions: number }>('SELECT dimensions FROM aikb_search_config')).rows).toEqual([{ dimensions: D }]);
      await search.store.indexDocument({ id: 'pool', title: 'Pool', text: 'Pool exhausted: restart the pool.', acl: ['role:user'] });
      await search.store.indexDocument({ id: 'cache', title: 'Cache', text: 'Zebra quartz vexing jumps.', acl: ['role:user'] });
      const found = await search.store.search({ principal: { userId: 'me', roles: ['user'] }, query: 'pool exhausted', mode: 'vector', k: 1 });
      expect(found.results.map((r) => r.documentId)).toEqual(['pool']);

      // Every text went to the fake server, with the model and the key.
      expect(requests.length).toBeGreaterThanOrEqual(3);
      expect(requests.every((r) => r.model === 'fake-embed' && r.authorization === `Bearer ${apiKey}`)).toBe(true);
      expect(requests.flatMap((r) => r.input)).toEqual(expect.arrayContaining(['pool exhausted']));
      await until(() => lines.some((line) => line.includes('the embedding server answers')), 'the start-up check');

      const report = await health.check();
      expect(report.components.search).toMatchObject({
        status: 'ok',
        dimensions: D,
        embedder: expect.stringMatching(/^openai-compatible\/127\.0\.0\.1:\d+\/fake-embed$/) as string,
      });
      const shown = JSON.stringify({ report, status: await status.collect(), logs: lines });
      expect(shown).toContain('fake-embed');
      expect(shown).not.toContain(apiKey);
    });

    it('logs a failing start-up check without the key, and search still starts', async () => {
      const config = configFor();
      const { lines } = await startWith({ ...config, embeddings: { ...config.embeddings, apiKey: 'sk-wrong-key-9876543210' } as EmbeddingsConfig });
      await until(() => lines.some((line) => line.includes('failed its start-up check')), 'the failed start-up check');
      expect(lines.join('\n')).toMatch(/refused the request \(HTTP 401\)/);
      expect(lines.join('\n')).not.toContain('sk-wrong-key');
      expect((await health.check()).components.search).toMatchObject({ status: 'ok' });
    });

    it('aikb migrate makes the tables for the configured D, and the server refuses tables of another D naming both', async () => {
      const silent = pino({ level: 'silent' });
      db = await createDatabase({ dataDir: 'memory://' });
      expect(await migrateSearchTables(db.pool, silent, configFor().embeddings)).toMatchObject({ kind: 'migrated', dimensions: D });
      await db.close();

      db = await createDatabase({ dataDir: 'memory://' });
      await migrateSearchTables(db.pool, silent); // the hashing embedder's 256
      health = createHealthRegistry();
      flags = createFeatureFlagClient({ store: createMemoryFlagStore() });
      const infra = { db, health, migrated: Promise.resolve(), vector: () => ({ available: true, version: '0.8.7' }) } as unknown as Infrastructure;
      await expect(
        searchSubsystem.start({ config: configFor(), logger: silent, infra, status: createStatusRegistry(), flags, meter: noopMeter }),
      ).rejects.toThrow(/256-dimension vectors but the embedder openai-compatible\/127\.0\.0\.1:\d+\/fake-embed makes 8-dimension/);
    });
  });
});
