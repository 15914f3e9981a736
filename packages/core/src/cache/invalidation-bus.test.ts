import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createIsolatedPostgres,
  createThrowawayPostgres,
  describeWithRedis,
  hasPostgresBinaries,
  hasRedisServer,
  testDatabaseUrl,
  type ThrowawayPostgres,
  until,
  useThrowawayRedis,
} from '@aikb/test-support';
import { createDatabase, type Database } from '../db';
import {
  createInProcessInvalidationBus,
  createPostgresInvalidationBus,
  createRedisInvalidationBus,
  type InvalidationBusState,
  type InvalidationMessage,
} from './index';
import { describeInvalidationBusContract } from './invalidation-bus.contract';

describe('InProcessInvalidationBus', () => {
  describeInvalidationBusContract(async () => {
    const bus = createInProcessInvalidationBus();
    return [bus, bus];
  });
});

describeWithRedis('RedisInvalidationBus', (url) => {
  const clients: Redis[] = [];
  afterAll(() => clients.forEach((c) => c.disconnect()));
  describeInvalidationBusContract(async () => {
    // Two instances: separate connections, a channel of their own so parallel runs never mix.
    const channel = `aikb:test:${randomBytes(6).toString('hex')}`;
    const a = new Redis(url);
    const b = new Redis(url);
    clients.push(a, b);
    return [createRedisInvalidationBus({ redis: a, channel }), createRedisInvalidationBus({ redis: b, channel })];
  });

  it('rejects options that are not a redis client or a channel, naming them', () => {
    expect(() => createRedisInvalidationBus({ redis: {} as Redis })).toThrow(/redis must be an ioredis client/);
    const redis = new Redis(url, { lazyConnect: true });
    clients.push(redis);
    expect(() => createRedisInvalidationBus({ redis, channel: '' })).toThrow(/channel/);
  });
});

describe.runIf(hasRedisServer())('RedisInvalidationBus when Redis dies and comes back', () => {
  const redisServer = useThrowawayRedis();

  it('reports disconnected, rejects publish without throwing into subscribers, and delivers again after reconnecting', async () => {
    const options = { retryStrategy: () => 50, maxRetriesPerRequest: 1 };
    const a = new Redis(redisServer().url, options).on('error', () => {});
    const b = new Redis(redisServer().url, options).on('error', () => {});
    const busA = createRedisInvalidationBus({ redis: a, publishTimeoutMs: 300 });
    const busB = createRedisInvalidationBus({ redis: b, publishTimeoutMs: 300 });
    try {
      const states: InvalidationBusState[] = [];
      const seen: InvalidationMessage[] = [];
      busB.onStateChange((s) => states.push(s));
      busB.subscribe((m) => seen.push(m));
      await until(() => busA.state === 'connected' && busB.state === 'connected', 'connected');

      await redisServer().kill();
      await until(() => busB.state === 'disconnected', 'disconnected');
      await expect(busA.publish({ key: 'feature_flags:a', version: 1 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });

      await redisServer().start();
      await until(() => busA.state === 'connected' && busB.state === 'connected', 'reconnected', 15_000);
      await busA.publish({ key: 'feature_flags:a', version: 2 });
      await until(() => seen.some((m) => m.version === 2), 'delivery after reconnect');
      expect(states).toEqual(['connected', 'disconnected', 'connected']);
    } finally {
      await busA.close();
      await busB.close();
      a.disconnect();
      b.disconnect();
    }
  });
});

describe.runIf(hasRedisServer())('RedisInvalidationBus on the databases of one Redis server', () => {
  const redisServer = useThrowawayRedis();

  it('keeps deployments on different databases apart by default (pub/sub channels span every database)', async () => {
    const url = (db: number) => `${redisServer().url}/${db}`;
    const clients = [new Redis(url(1)), new Redis(url(1)), new Redis(url(2)), new Redis(redisServer().url)];
    const [one, sameDb, other, zero] = clients.map((redis) => createRedisInvalidationBus({ redis }));
    try {
      const seen = new Map<string, InvalidationMessage[]>();
      for (const [name, bus] of Object.entries({ one, sameDb, other, zero })) {
        const messages: InvalidationMessage[] = [];
        seen.set(name, messages);
        bus!.subscribe((m) => messages.push(m));
      }
      await until(() => [one, sameDb, other, zero].every((bus) => bus!.state === 'connected'), 'connected');
      await one!.publish({ key: 'feature_flags:a', version: 1 });
      await other!.publish({ key: 'feature_flags:b', version: 1 });
      await zero!.publish({ key: 'feature_flags:c', version: 1 });
      // Markers published after those: Redis delivers in order, so a subscriber that sees its
      // marker has seen every earlier message it was going to receive.
      await one!.publish({ key: 'marker', version: 1 });
      await other!.publish({ key: 'marker', version: 2 });
      await zero!.publish({ key: 'marker', version: 3 });
      const marked = (name: string, version: number) => seen.get(name)!.some((m) => m.key === 'marker' && m.version === version);
      await until(() => marked('sameDb', 1) && marked('other', 2) && marked('zero', 3), 'the markers');
      const keys = (name: string) => seen.get(name)!.map((m) => m.key);
      expect(keys('sameDb')).toEqual(['feature_flags:a', 'marker']);
      expect(keys('other')).toEqual(['feature_flags:b', 'marker']);
      expect(keys('zero')).toEqual(['feature_flags:c', 'marker']);
    } finally {
      for (const bus of [one, sameDb, other, zero]) await bus!.close();
      for (const client of clients) client.disconnect();
    }
  });
});

describe('PostgresInvalidationBus publish on a broken database', () => {
  it('rejects with an UnavailableError that does not carry the driver text', async () => {
    const reset = Object.assign(new Error('read ECONNRESET at 10.0.0.7:5432'), { code: 'ECONNRESET' });
    const denied = Object.assign(new Error('permission denied for function pg_notify'), { code: '42501' });
    for (const failure of [reset, denied]) {
      const pool = { query: async () => Promise.reject(failure), connect: async () => new Promise<never>(() => {}) };
      const bus = createPostgresInvalidationBus({ pool: pool as never });
      const error = await bus.publish({ key: 'a', version: 1 }).catch((e: unknown) => e);
      await bus.close();
      expect(error).toMatchObject({ code: 'UNAVAILABLE', cause: failure });
      expect((error as Error).message).not.toMatch(/ECONNRESET|10\.0\.0\.7|permission/);
    }
  });
});

describe.runIf(testDatabaseUrl)('PostgresInvalidationBus [postgres]', () => {
  let db: Database;
  beforeAll(async () => {
    db = await createIsolatedPostgres(testDatabaseUrl!, { max: 6 });
  });
  afterAll(async () => {
    await db?.close();
  });
  describeInvalidationBusContract(async () => {
    const channel = `aikb_test_${randomBytes(6).toString('hex')}`;
    return [createPostgresInvalidationBus({ pool: db.pool, channel }), createPostgresInvalidationBus({ pool: db.pool, channel })];
  });

  it('rejects a channel that is not an identifier', () => {
    expect(() => createPostgresInvalidationBus({ pool: db.pool, channel: 'bad channel' })).toThrow(/channel must match/);
  });
});

describe.runIf(hasPostgresBinaries())('PostgresInvalidationBus when Postgres restarts', () => {
  let server: ThrowawayPostgres;
  beforeAll(async () => {
    server = await createThrowawayPostgres();
    await server.start();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('reports disconnected while Postgres is down and listens again when it is back', async () => {
    const db = await createDatabase({ url: server.url, max: 4, connectionTimeoutMs: 1000 });
    const listener = createPostgresInvalidationBus({ pool: db.pool, reconnectDelayMs: 50 });
    const publisher = createPostgresInvalidationBus({ pool: db.pool, reconnectDelayMs: 50 });
    try {
      const states: InvalidationBusState[] = [];
      const seen: InvalidationMessage[] = [];
      listener.onStateChange((s) => states.push(s));
      listener.subscribe((m) => seen.push(m));
      await until(() => listener.state === 'connected', 'listening');
      await server.stop();
      await until(() => listener.state === 'disconnected', 'disconnected');
      await expect(publisher.publish({ key: 'feature_flags:a', version: 1 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await server.start();
      await until(() => listener.state === 'connected', 'listening again', 15_000);
      await publisher.publish({ key: 'feature_flags:a', version: 2 });
      await until(() => seen.some((m) => m.version === 2), 'delivery after restart');
      expect(states).toEqual(['connected', 'disconnected', 'connected']);
    } finally {
      await listener.close();
      await publisher.close();
      await db.close();
    }
  });
});

describe('invalidation bus options', () => {
  // Checked before anything connects: these fakes are never used.
  const redis = { publish() {}, duplicate() {} } as unknown as Redis;
  const pool = { query() {}, connect() {} } as never;

  it.each([
    [() => createRedisInvalidationBus(undefined as never), /^createRedisInvalidationBus: options must be an object/],
    [() => createRedisInvalidationBus({ redis: {} as Redis }), /^createRedisInvalidationBus: redis must be an ioredis client/],
    [() => createRedisInvalidationBus({ redis, channel: '' }), /^createRedisInvalidationBus: channel must be a non-empty string/],
    [() => createRedisInvalidationBus({ redis, publishTimeoutMs: 0 }), /^createRedisInvalidationBus: publishTimeoutMs must be a number > 0/],
    [() => createRedisInvalidationBus({ redis, logger: {} as never }), /^createRedisInvalidationBus: logger must be a Logger/],
    [() => createPostgresInvalidationBus(undefined as never), /^createPostgresInvalidationBus: options must be an object/],
    [
      () => createPostgresInvalidationBus({ pool: { query() {} } as never }),
      /^createPostgresInvalidationBus: pool must be a pg\.Pool \(with a connect\(\) method\)/,
    ],
    [() => createPostgresInvalidationBus({ pool, channel: 'bad channel' }), /^createPostgresInvalidationBus: channel must match/],
    [() => createPostgresInvalidationBus({ pool, reconnectDelayMs: -1 }), /^createPostgresInvalidationBus: reconnectDelayMs must be a number ≥ 0/],
    [() => createPostgresInvalidationBus({ pool, logger: {} as never }), /^createPostgresInvalidationBus: logger must be a Logger/],
    [() => createInProcessInvalidationBus({ logger: {} as never }), /^createInProcessInvalidationBus: logger must be a Logger/],
  ])('rejects a bad option at construction with a TypeError naming it (%#)', (make, message) => {
    expect(make).toThrow(TypeError);
    expect(make).toThrow(message);
  });
});
