import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { createDatabase, type Database } from '../../src/db';
import { testDatabaseUrl } from './services';

/** A backend a Postgres-backed suite runs on. */
export interface TestBackend {
  /** `pglite` or `postgres`: shown in the suite title, so the log says where each test ran. */
  readonly name: 'pglite' | 'postgres';
  /** A fresh, empty database: a new in-memory PGlite, or a new schema on the test server. */
  create(): Promise<Database>;
}

/** Embedded PGlite, always; the real server too when `AIKB_TEST_DATABASE_URL` is set. */
export function testBackends(): TestBackend[] {
  const backends: TestBackend[] = [{ name: 'pglite', create: () => createDatabase({ dataDir: 'memory://' }) }];
  const url = testDatabaseUrl;
  if (url) backends.push({ name: 'postgres', create: () => createIsolatedPostgres(url) });
  return backends;
}

/**
 * A database on the test server in a schema of its own (dropped on close), so suites running in
 * parallel never see each other's tables.
 */
export async function createIsolatedPostgres(url: string, options: { max?: number } = {}): Promise<Database> {
  const schema = `aikb_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await admin.end();
  }
  const db = await createDatabase({ url, max: options.max ?? 5, poolConfig: { options: `-c search_path=${schema},public` } });
  return {
    ...db,
    pool: db.pool,
    kind: db.kind,
    target: `${db.target} (schema ${schema})`,
    async close() {
      await db.close();
      const cleanup = new pg.Client({ connectionString: url });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

/**
 * Declares `suite` once per backend, as `describe('<title> [pglite]')` and
 * `describe('<title> [postgres]')`, with a fresh database for each.
 *
 * @example
 * ```ts
 * describeEachDatabase('PostgresFlagStore', (db) => {
 *   it('stores a flag', async () => { const store = createPostgresFlagStore({ pool: db().pool }) ... })
 * })
 * ```
 */
export function describeEachDatabase(title: string, suite: (db: () => Database, backend: TestBackend['name']) => void): void {
  for (const backend of testBackends()) {
    describe(`${title} [${backend.name}]`, () => {
      let database: Database | undefined;
      beforeAll(async () => {
        database = await backend.create();
      });
      afterAll(async () => {
        await database?.close();
      });
      suite(() => {
        if (!database) throw new Error('database not ready: use db() inside a test or hook');
        return database;
      }, backend.name);
    });
  }
}

/**
 * A new, empty database on the test server (for a whole process under test, such as the
 * reference server), dropped by the returned `drop`.
 */
export async function createTemporaryDatabase(url: string): Promise<{ url: string; drop(this: void): Promise<void> }> {
  const name = `aikb_e2e_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const target = new URL(url);
  target.pathname = `/${name}`;
  return {
    url: target.href,
    async drop() {
      const cleanup = new pg.Client({ connectionString: url });
      await cleanup.connect();
      try {
        await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}
