import pg from 'pg';
import { Redis } from 'ioredis';
import { servicesRequired, testDatabaseUrl, testRedisUrl } from './services';

/** Says which backends the run uses, and fails fast when a required service is missing or down. */
export default async function globalSetup(): Promise<void> {
  // Every vitest project runs the global setup; check and report once per run.
  if (process.env.AIKB_TEST_SETUP_DONE) return;
  process.env.AIKB_TEST_SETUP_DONE = '1';
  const missing: string[] = [];
  if (!testDatabaseUrl) missing.push('AIKB_TEST_DATABASE_URL');
  if (!testRedisUrl) missing.push('AIKB_TEST_REDIS_URL');
  if (servicesRequired && missing.length > 0) {
    throw new Error(`AIKB_REQUIRE_SERVICES=1 but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set`);
  }
  if (testDatabaseUrl) {
    const client = new pg.Client({ connectionString: testDatabaseUrl, connectionTimeoutMillis: 5000 });
    try {
      await client.connect();
      const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
      console.log(`[aikb tests] Postgres backends: pglite (embedded) and postgres ${rows[0]?.server_version} at ${redact(testDatabaseUrl)}`);
      // pgvector, where the server has it, goes in public once: a suite's CREATE EXTENSION would
      // otherwise put it in the suite's own schema, and dropping that schema would drop it for all.
      const vector = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'");
      if (vector.rowCount) {
        await client.query('CREATE EXTENSION IF NOT EXISTS vector SCHEMA public').catch((error: { code?: string }) => {
          if (error.code !== '23505' && error.code !== '42710') throw error; // another run created it at the same moment
        });
      }
    } catch (error) {
      throw new Error(`AIKB_TEST_DATABASE_URL=${redact(testDatabaseUrl)} is not reachable: ${(error as Error).message}`);
    } finally {
      await client.end().catch(() => {});
    }
  } else {
    console.log('[aikb tests] Postgres backends: pglite (embedded) only; set AIKB_TEST_DATABASE_URL to also run on a server');
  }
  if (testRedisUrl) {
    const redis = new Redis(testRedisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await redis.connect();
      const info = await redis.info('server');
      console.log(`[aikb tests] Redis: ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'} at ${redact(testRedisUrl)}`);
    } catch (error) {
      throw new Error(`AIKB_TEST_REDIS_URL=${redact(testRedisUrl)} is not reachable: ${(error as Error).message}`);
    } finally {
      redis.disconnect();
    }
  } else {
    console.log('[aikb tests] Redis: not configured; Redis-only cases are skipped (set AIKB_TEST_REDIS_URL to run them)');
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return '(unparseable URL)';
  }
}
