import { describe, expect, it } from 'vitest';
import type { Pool, PoolClient } from 'pg';
import { describeEachDatabase } from '@aikb/test-support';
import { withTransaction } from './index';

/** A pool whose client records statements and releases, and fails the statements it is told to. */
function scriptedPool(fail: Readonly<Record<string, unknown>> = {}) {
  const statements: string[] = [];
  const releases: unknown[] = [];
  const client = {
    query: async (sql: string) => {
      statements.push(sql);
      if (sql in fail) throw fail[sql];
      return { rows: [] };
    },
    release: (error?: unknown) => void releases.push(error),
  } as unknown as PoolClient;
  return { pool: { connect: async () => client } as Pick<Pool, 'connect'>, statements, releases };
}

const logger = () => {
  const errors: unknown[] = [];
  return { errors, logger: { debug() {}, info() {}, warn() {}, error: (obj: object) => void errors.push(obj) } };
};

describe('withTransaction', () => {
  it('rethrows the error of fn when ROLLBACK fails too, logs the ROLLBACK error and discards the client', async () => {
    const { pool, statements, releases } = scriptedPool({ ROLLBACK: new Error('rollback broke') });
    const log = logger();
    await expect(withTransaction(pool, async () => Promise.reject(new Error('original')), { logger: log.logger })).rejects.toThrow('original');
    expect(statements).toEqual(['BEGIN', 'ROLLBACK']);
    expect(log.errors).toHaveLength(1);
    expect(releases).toHaveLength(1);
    expect(releases[0]).toBeInstanceOf(Error);
  });

  it('discards the client when BEGIN fails, without running fn', async () => {
    const { pool, releases } = scriptedPool({ BEGIN: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    let ran = false;
    await expect(withTransaction(pool, async () => void (ran = true))).rejects.toThrow('reset');
    expect(ran).toBe(false);
    expect(releases[0]).toBeInstanceOf(Error);
  });

  it('runs fn again after a serialization failure or deadlock, at most `retries` times', async () => {
    for (const code of ['40001', '40P01']) {
      const { pool, releases } = scriptedPool();
      let attempts = 0;
      const conflict = () => Object.assign(new Error('could not serialize'), { code });
      await expect(withTransaction(pool, async () => (++attempts < 3 ? Promise.reject(conflict()) : 'done'), { retries: 2 })).resolves.toBe('done');
      expect(attempts).toBe(3);
      expect(releases).toEqual([undefined, undefined, undefined]);
      attempts = 0;
      await expect(withTransaction(pool, async () => Promise.reject(conflict()), { retries: 1 })).rejects.toMatchObject({ code });
      expect(attempts).toBe(0);
    }
  });

  it('does not retry other errors', async () => {
    const { pool } = scriptedPool();
    let attempts = 0;
    const duplicate = async () => {
      attempts++;
      throw Object.assign(new Error('dup'), { code: '23505' });
    };
    await expect(withTransaction(pool, duplicate, { retries: 5 })).rejects.toMatchObject({ code: '23505' });
    expect(attempts).toBe(1);
  });

  it('starts with the isolation level asked for', async () => {
    const { pool, statements } = scriptedPool();
    await withTransaction(pool, async () => 1, { isolationLevel: 'serializable' });
    expect(statements).toEqual(['BEGIN ISOLATION LEVEL SERIALIZABLE', 'COMMIT']);
  });

  it('rejects invalid options with a TypeError naming the option, before connecting', async () => {
    let connected = false;
    const pool = { connect: async () => ((connected = true), {} as PoolClient) } as Pick<Pool, 'connect'>;
    await expect(withTransaction(pool, async () => 1, { retries: -1 })).rejects.toThrow(/retries/);
    await expect(withTransaction(pool, async () => 1, { retries: 11 })).rejects.toThrow(/retries/);
    await expect(withTransaction(pool, async () => 1, { isolationLevel: 'snapshot' as never })).rejects.toThrow(/isolationLevel/);
    await expect(withTransaction(pool, async () => 1, { logger: {} as never })).rejects.toThrow(/logger/);
    expect(connected).toBe(false);
  });
});

describeEachDatabase('withTransaction', (db, backend) => {
  const table = async () => {
    await db().pool.query('CREATE TABLE IF NOT EXISTS tx_items (k int NOT NULL, v text NOT NULL)');
    await db().pool.query('TRUNCATE tx_items');
  };
  const count = async () => Number((await db().pool.query<{ n: string }>('SELECT count(*) AS n FROM tx_items')).rows[0]!.n);

  it('commits what fn wrote and returns its result, releasing the client', async () => {
    await table();
    const result = await withTransaction(db().pool, async (client) => {
      await client.query("INSERT INTO tx_items VALUES (1, 'a'), (2, 'b')");
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(await count()).toBe(2);
    expect(db().pool.totalCount).toBe(db().pool.idleCount);
  });

  it('rolls back everything fn wrote when it throws, rethrows its error and releases the client', async () => {
    await table();
    const failure = new Error('stop');
    await expect(
      withTransaction(db().pool, async (client) => {
        await client.query("INSERT INTO tx_items VALUES (1, 'a')");
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await count()).toBe(0);
    expect(db().pool.totalCount).toBe(db().pool.idleCount);
  });

  it('rolls back after a statement the server refused, and the pool keeps working', async () => {
    await table();
    await expect(
      withTransaction(db().pool, async (client) => {
        await client.query("INSERT INTO tx_items VALUES (1, 'a')");
        await client.query('SELECT 1/0');
      }),
    ).rejects.toMatchObject({ code: '22012' });
    expect(await count()).toBe(0);
  });

  // Two transactions at once need two connections: embedded PGlite has one (pool size 1), so these
  // two run on PostgreSQL only and show as skipped under [pglite]. The retry logic itself is
  // covered on every backend by the scripted-pool tests above.
  it.runIf(backend === 'postgres')('runs the loser of two conflicting SERIALIZABLE transactions again, and both commit', async () => {
    await table();
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((resolve) => (release = resolve));
    let attempts = 0;
    // Each reads the count of k = 1 rows, then inserts one more: a write skew serializable refuses.
    const run = (v: string) =>
      withTransaction(
        db().pool,
        async (client) => {
          const first = ++attempts <= 2;
          const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM tx_items WHERE k = 1');
          if (first && ++arrived === 2) release();
          if (first) await bothRead;
          await client.query('INSERT INTO tx_items VALUES (1, $1)', [`${v}${rows[0]!.n}`]);
        },
        { isolationLevel: 'serializable', retries: 3 },
      );
    await Promise.all([run('a'), run('b')]);
    // At least one retry. PostgreSQL may abort both first attempts (each is the other's pivot when
    // both insert before either commits), and the two retries then race again: more than 3 is
    // correct behaviour on a loaded machine; what must hold is that both commit, serially.
    expect(attempts).toBeGreaterThanOrEqual(3);
    const values = (await db().pool.query<{ v: string }>('SELECT v FROM tx_items ORDER BY v')).rows.map((r) => r.v);
    // The retried one saw the other's row.
    expect(values.map((v) => v.slice(1)).sort()).toEqual(['0', '1']);
  });

  it.runIf(backend === 'postgres')('without retries the loser fails with 40001', async () => {
    await table();
    let arrived = 0;
    let release!: () => void;
    const bothRead = new Promise<void>((resolve) => (release = resolve));
    const run = () =>
      withTransaction(
        db().pool,
        async (client) => {
          await client.query('SELECT count(*) FROM tx_items WHERE k = 1');
          if (++arrived === 2) release();
          await bothRead;
          await client.query("INSERT INTO tx_items VALUES (1, 'x')");
        },
        { isolationLevel: 'serializable' },
      );
    const results = await Promise.allSettled([run(), run()]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: '40001' } });
    expect(db().pool.totalCount).toBe(db().pool.idleCount);
  });
});
