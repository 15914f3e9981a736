import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeWithRedis, hasRedisServer, until, useThrowawayRedis } from '@aikb/test-support';
import { createPostgresInvalidationBus, createRedisInvalidationBus, type InvalidationBus } from '../cache';
import { createDatabase, migrate, type Database } from '../db';
import { createFeatureFlagClient, createPostgresFlagStore, flagStoreMigrations, type FeatureFlagClient, type FlagStore } from './index';

let db: Database;
let store: FlagStore;
beforeAll(async () => {
  db = await createDatabase({ dataDir: 'memory://', vector: false });
  await migrate(db.pool, flagStoreMigrations);
  store = createPostgresFlagStore({ pool: db.pool });
});
afterAll(async () => {
  await db?.close();
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** One "instance": its own Redis connection, bus and client, sharing the database. */
async function instance(
  url: string,
  channel: string,
  redisOptions: object = {},
  on: FlagStore = store,
): Promise<{ flags: FeatureFlagClient; bus: InvalidationBus }> {
  const redis = new Redis(url, redisOptions).on('error', () => {});
  const bus = createRedisInvalidationBus({ redis, channel, publishTimeoutMs: 300 });
  const flags = createFeatureFlagClient({ store: on, bus });
  cleanups.push(
    () => redis.disconnect(),
    () => bus.close(),
    () => flags.close(),
  );
  await flags.start();
  // Connected, and the reload that follows a (first) connection done.
  await until(() => bus.state === 'connected' && flags.propagation().status === 'ok', 'bus connected');
  return { flags, bus };
}

describeWithRedis('FeatureFlagClient across instances', (url) => {
  it('shows a change made through A on B within moments, over separate Redis connections', async () => {
    const channel = `aikb:test:${randomBytes(6).toString('hex')}`;
    await store.put('cross_instance', { enabled: true, rolloutPercentage: 100 }, 'test');
    const a = await instance(url, channel);
    const b = await instance(url, channel);
    expect(b.flags.isEnabled('cross_instance', { userId: 'u1' })).toBe(true);
    await a.flags.updateFlag('cross_instance', { rolloutPercentage: 0 }, { actor: 'ops' });
    await until(() => !b.flags.isEnabled('cross_instance', { userId: 'u1' }), 'B sees the change');
    await a.flags.updateFlag('cross_instance', { enabled: false, rolloutPercentage: 100 });
    await until(() => b.flags.evaluate('cross_instance').reason === 'DISABLED', 'B sees the second change');
    expect(b.flags.stats()).toMatchObject({ stale: false, bus: { kind: 'redis', state: 'connected' } });
  });

  it('refreshes on B after an explicit invalidation on A of a change written behind both', async () => {
    const channel = `aikb:test:${randomBytes(6).toString('hex')}`;
    await store.put('behind_the_back', { enabled: true, rolloutPercentage: 100 }, 'test');
    const a = await instance(url, channel);
    const b = await instance(url, channel);
    await store.update('behind_the_back', { enabled: false }, 'sql console');
    expect(b.flags.isEnabled('behind_the_back')).toBe(true);
    await a.flags.invalidate(['feature_flags:behind_*']);
    await until(() => !b.flags.isEnabled('behind_the_back'), 'B refreshed');
  });
});

/** Resolves on the first change event of `flags` after which `holds()` is true; rejects after `timeoutMs`. */
function changeWhere(flags: FeatureFlagClient, holds: () => boolean, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (stop(), reject(new Error(`${what}: no such change within ${timeoutMs} ms`))), timeoutMs);
    const stop = flags.onChange(() => {
      if (!holds()) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}

describe.runIf(hasRedisServer())('FeatureFlagClient when Redis is killed and restarted', () => {
  const redisServer = useThrowawayRedis();
  const backends: Array<[string, () => Promise<FlagStore>]> = [['pglite', async () => store]];
  if (process.env.AIKB_TEST_DATABASE_URL) {
    backends.push([
      'postgres',
      async () => {
        const { createIsolatedPostgres } = await import('@aikb/test-support');
        const server = await createIsolatedPostgres(process.env.AIKB_TEST_DATABASE_URL!);
        cleanups.push(() => server.close());
        await migrate(server.pool, flagStoreMigrations);
        return createPostgresFlagStore({ pool: server.pool });
      },
    ]);
  }

  it.each(backends)('converges through the store within seconds while Redis is down, then stops polling when it is back [%s]', async (_, open) => {
    const shared = await open();
    const options = { retryStrategy: () => 50, maxRetriesPerRequest: 1 };
    await shared.put('through_outage', { enabled: true, rolloutPercentage: 100 }, 'test');
    const a = await instance(redisServer().url, 'aikb:invalidation', options, shared);
    const b = await instance(redisServer().url, 'aikb:invalidation', options, shared);
    expect(b.flags.stats()).toMatchObject({ polling: false, propagation: { bus: 'redis', status: 'ok' } });

    await redisServer().kill();
    await until(() => b.bus.state === 'disconnected' && a.bus.state === 'disconnected', 'both disconnected');
    const converged = changeWhere(b.flags, () => !b.flags.isEnabled('through_outage'), 'B sees the change made through A', 5000);
    // The write commits and says that propagation is degraded; the lost publish is not an error.
    const updated = await a.flags.updateFlag('through_outage', { enabled: false });
    expect(updated.enabled).toBe(false);
    expect(a.flags.propagation()).toEqual({ bus: 'redis', status: 'degraded', convergesWithinMs: 2000 });
    expect(() => b.flags.isEnabled('through_outage')).not.toThrow();
    await converged;
    expect(b.flags.stats()).toMatchObject({ stale: true, polling: true, propagation: { status: 'degraded' } });

    await redisServer().start();
    await until(() => a.bus.state === 'connected' && b.bus.state === 'connected', 'both reconnected', 15_000);
    await until(() => b.flags.propagation().status === 'ok' && a.flags.propagation().status === 'ok', 'polling stopped');
    expect(b.flags.stats()).toMatchObject({ stale: false, polling: false, bus: { state: 'connected' } });
    expect(b.flags.isEnabled('through_outage')).toBe(false);
    // And the bus carries changes again.
    await a.flags.updateFlag('through_outage', { enabled: true });
    await until(() => b.flags.isEnabled('through_outage'), 'B sees a change over the bus again');
  });
});

describe('FeatureFlagClient over Postgres LISTEN/NOTIFY', () => {
  it.runIf(process.env.AIKB_TEST_DATABASE_URL)('shows a change made through A on B [postgres]', async () => {
    const { createIsolatedPostgres } = await import('@aikb/test-support');
    const server = await createIsolatedPostgres(process.env.AIKB_TEST_DATABASE_URL!, { max: 6 });
    cleanups.push(() => server.close());
    await migrate(server.pool, flagStoreMigrations);
    const pgStore = createPostgresFlagStore({ pool: server.pool });
    await pgStore.put('over_notify', { enabled: true, rolloutPercentage: 100 }, 'test');
    const channel = `aikb_test_${randomBytes(6).toString('hex')}`;
    const make = async () => {
      const bus = createPostgresInvalidationBus({ pool: server.pool, channel });
      const flags = createFeatureFlagClient({ store: pgStore, bus });
      cleanups.push(
        () => bus.close(),
        () => flags.close(),
      );
      await flags.start();
      await until(() => bus.state === 'connected', 'listening');
      return flags;
    };
    const a = await make();
    const b = await make();
    await a.updateFlag('over_notify', { rolloutPercentage: 0 });
    await until(() => !b.isEnabled('over_notify', { userId: 'x' }), 'B sees the change');
  });
});
