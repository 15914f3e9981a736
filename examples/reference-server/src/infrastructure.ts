import pRetry from 'p-retry';
import { Redis } from 'ioredis';
import {
  checkDatabase,
  createDatabase,
  ensureVectorExtension,
  isPgConnectionError,
  migrate,
  type Database,
  type Migration,
  type VectorSupport,
} from '@aikb/core/db';
import { createHealthRegistry, type HealthRegistry } from '@aikb/core/health';
import type { ServerConfig } from './config';
import type { PinoLogger } from './logger';

/** The connections every subsystem shares, opened once at start-up. */
export interface Infrastructure {
  readonly db: Database;
  /** Present when `REDIS_URL` is set; reconnects by itself. */
  readonly redis: Redis | undefined;
  readonly health: HealthRegistry;
  /** Resolves once migrations have been applied (at once, or after the database came back). */
  readonly migrated: Promise<void>;
  /** Resolves after the first migration attempt, whatever its outcome. */
  readonly firstMigrationAttempt: Promise<void>;
  /** What pgvector support the database has, once migrated. */
  vector(): VectorSupport | undefined;
  close(): Promise<void>;
}

/**
 * Opens the database (server or embedded) and Redis and registers their health checks.
 *
 * A configured Postgres or Redis that is down at start-up is not fatal: the server starts
 * degraded, migrations are retried in the background, and both reconnect by themselves.
 */
export async function openInfrastructure(config: ServerConfig, logger: PinoLogger, migrations: readonly Migration[]): Promise<Infrastructure> {
  const db = config.databaseUrl
    ? await createDatabase({ url: config.databaseUrl, max: config.poolSize, logger })
    : await createDatabase({ dataDir: config.dataDir, logger });
  logger.info({ database: db.target, kind: db.kind }, `database: ${db.kind === 'pglite' ? 'embedded PGlite' : 'PostgreSQL'} at ${db.target}`);

  const redis = config.redisUrl ? openRedis(config.redisUrl, logger) : undefined;
  const health = createHealthRegistry();

  let migrationState: 'pending' | 'applied' = 'pending';
  let vector: VectorSupport | undefined;
  const abort = new AbortController();
  let attempted!: () => void;
  const firstMigrationAttempt = new Promise<void>((resolve) => (attempted = resolve));
  const migrated = pRetry(
    async () => {
      const result = await migrate(db.pool, migrations, { logger });
      vector = await ensureVectorExtension(db.pool);
      if (!vector.available) logger.warn({ reason: vector.reason }, `pgvector unavailable: ${vector.reason}`);
      migrationState = 'applied';
      logger.info(
        { applied: result.applied.length, skipped: result.skipped.length },
        `migrations: ${result.applied.length} applied, ${result.skipped.length} already up to date`,
      );
    },
    {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: 500,
      maxTimeout: 10_000,
      signal: abort.signal,
      shouldRetry: ({ error }) => isPgConnectionError(error),
      onFailedAttempt: ({ error, attemptNumber }) => {
        attempted();
        if (isPgConnectionError(error)) {
          // One line per attempt, without a stack: an outage is expected here, not a bug.
          logger.warn({ error: error.message, attempt: attemptNumber }, `database unreachable (${error.message}); migrations will be retried`);
        }
      },
    },
  );
  // A failure here is reported by health and by whoever awaits `migrated`; never an unhandled rejection.
  migrated.then(attempted, attempted);
  migrated.catch((error: unknown) => {
    if (!abort.signal.aborted) logger.error({ err: error }, `migrations failed: ${(error as Error).message}`);
  });

  health.register('database', async () => {
    // The checks of one health request start together. Those that read state (the pool monitor's
    // figures, registered later) do so synchronously: let them read it before this check's own
    // query takes or opens a connection, so they report the pool as it was before the check.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const check = await checkDatabase(db.pool);
    return {
      ...check,
      status: check.status === 'ok' && migrationState === 'applied' ? 'ok' : check.status === 'ok' ? 'degraded' : 'down',
      kind: db.kind,
      migrations: migrationState,
      ...(vector ? { vector: vector.available ? 'available' : 'unavailable' } : {}),
    };
  });
  health.register('redis', async () => {
    if (!redis) return { status: 'disabled', message: 'REDIS_URL not set: caches and rate limits are in-process' };
    if (redis.status !== 'ready') return { status: 'down', connection: redis.status };
    await redis.ping();
    return { status: 'ok', connection: redis.status };
  });

  return {
    db,
    redis,
    health,
    migrated,
    firstMigrationAttempt,
    vector: () => vector,
    async close() {
      abort.abort();
      redis?.disconnect();
      await db.close();
    },
  };
}

function openRedis(url: string, logger: PinoLogger): Redis {
  const redis = new Redis(url, {
    // Fail commands fast while disconnected instead of queueing them without bound.
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5000),
    lazyConnect: false,
  });
  let reported = false;
  redis.on('error', (error) => {
    // ioredis emits an error per failed reconnect: report the outage once, not every 200 ms.
    if (!reported) logger.warn({ err: error }, `redis unreachable: ${error.message}; reconnecting`);
    reported = true;
  });
  // A connection the server closed (or that broke without an error) reconnects with no 'error'
  // event: say so too, once per outage. Not emitted for disconnect() (shutdown).
  redis.on('reconnecting', (delayMs: number) => {
    if (!reported) logger.warn({ delayMs }, `redis connection lost; reconnecting in ${delayMs} ms`);
    reported = true;
  });
  redis.on('ready', () => {
    if (reported) logger.info({}, 'redis reconnected');
    reported = false;
  });
  return redis;
}
