import { describe, expect, it } from 'vitest';
import { createIsolatedPostgres, describeEachDatabase, testDatabaseUrl } from '@aikb/test-support';
import { AikbError } from '../errors';
import { migrate, type Migration } from './index';

const migrations: Migration[] = [
  { id: 'test.0001_items', up: 'CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)' },
  {
    id: 'test.0002_seed',
    up: async (client) => {
      await client.query("INSERT INTO items (name) VALUES ('first')");
    },
  },
];

describeEachDatabase('migrate', (db) => {
  it('applies pending migrations in order and records them', async () => {
    const result = await migrate(db().pool, migrations, { tableName: 'mig_a' });
    expect(result.applied).toEqual(['test.0001_items', 'test.0002_seed']);
    const { rows } = await db().pool.query('SELECT name FROM items');
    expect(rows).toEqual([{ name: 'first' }]);
  });

  it('never applies a migration twice', async () => {
    const result = await migrate(db().pool, migrations, { tableName: 'mig_a' });
    expect(result).toEqual({ applied: [], skipped: ['test.0001_items', 'test.0002_seed'] });
    const { rows } = await db().pool.query('SELECT count(*)::int AS n FROM items');
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('rolls back a failing migration and records nothing for it', async () => {
    const failing: Migration[] = [{ id: 'bad.0001', up: 'CREATE TABLE half_done (id int); SELECT * FROM no_such_table' }];
    await expect(migrate(db().pool, failing, { tableName: 'mig_b' })).rejects.toThrow(/no_such_table/);
    const { rows } = await db().pool.query("SELECT to_regclass('half_done') AS t");
    expect(rows[0]).toEqual({ t: null });
    const recorded = await db().pool.query('SELECT id FROM mig_b');
    expect(recorded.rows).toEqual([]);
  });

  it('refuses a migration whose SQL changed after it was applied', async () => {
    const changed: Migration[] = [{ id: 'test.0001_items', up: 'CREATE TABLE items (id int)' }];
    const error = await migrate(db().pool, changed, { tableName: 'mig_a' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AikbError);
    expect((error as AikbError).code).toBe('FAILED_PRECONDITION');
  });

  it('rejects duplicate ids and bad table names before touching the database', async () => {
    await expect(migrate(db().pool, [migrations[0]!, migrations[0]!])).rejects.toThrow(/duplicate migration id/);
    await expect(migrate(db().pool, migrations, { tableName: 'x; DROP TABLE items' })).rejects.toThrow(TypeError);
  });
});

describe.runIf(testDatabaseUrl)('migrate [postgres] under concurrent start-up', () => {
  it('lets several instances start at once and applies each migration exactly once', async () => {
    const url = testDatabaseUrl!;
    const first = await createIsolatedPostgres(url, { max: 1 });
    // Every "instance" has its own pool on the same schema.
    const schema = /schema (\w+)/.exec(first.target)![1]!;
    const { createDatabase } = await import('./index');
    const others = await Promise.all([1, 2, 3, 4].map(() => createDatabase({ url, max: 1, poolConfig: { options: `-c search_path=${schema}` } })));
    try {
      const slow: Migration[] = [
        { id: 'race.0001', up: 'SELECT pg_sleep(0.2); CREATE TABLE race (id int)' },
        { id: 'race.0002', up: 'INSERT INTO race VALUES (1)' },
      ];
      const results = await Promise.all([first, ...others].map((d) => migrate(d.pool, slow)));
      expect(results.flatMap((r) => r.applied).sort()).toEqual(['race.0001', 'race.0002']);
      const { rows } = await first.pool.query('SELECT count(*)::int AS n FROM race');
      expect(rows[0]).toEqual({ n: 1 });
    } finally {
      await Promise.all(others.map((d) => d.close()));
      await first.close();
    }
  });
});
