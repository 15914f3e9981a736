import { describeEachDatabase, describePostgresStoreOptions } from '@aikb/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError, ValidationError } from '../errors';
import { migrate } from '../db';
import { describeFlagStoreContract } from './flag-store.contract';
import { createMemoryFlagStore, createPostgresFlagStore, flagStoreMigrations } from './index';

describe('MemoryFlagStore', () => {
  describeFlagStoreContract(() => createMemoryFlagStore());
});

describeEachDatabase('PostgresFlagStore', (db) => {
  beforeAll(async () => {
    await migrate(db().pool, flagStoreMigrations);
  });
  describeFlagStoreContract(() => createPostgresFlagStore({ pool: db().pool }));
});

describe('PostgresFlagStore outage', () => {
  it('reports an unreachable database as an UnavailableError without the driver text', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:5432'), { code: 'ECONNREFUSED' });
    const pool = { query: async () => Promise.reject(refused), connect: async () => Promise.reject(refused) };
    const store = createPostgresFlagStore({ pool: pool as never });
    const error = await store.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).not.toMatch(/ECONNREFUSED|10\.0\.0\.7/);
  });
});

describeEachDatabase('PostgresFlagStore input the database refuses', (db) => {
  it('rejects a NUL in a description, an actor or a name as a ValidationError naming the field, and keeps working', async () => {
    await migrate(db().pool, flagStoreMigrations);
    const store = createPostgresFlagStore({ pool: db().pool });
    await store.put('nul_test', { enabled: true, rolloutPercentage: 10, description: 'before' }, 'admin');
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['description', () => store.put('nul_test', { enabled: true, rolloutPercentage: 10, description: 'a\u0000b' }, 'admin')],
      ['description', () => store.update('nul_test', { description: '\u0000' }, 'admin')],
      ['actor', () => store.update('nul_test', { enabled: false }, 'user\u0000')],
      ['name', () => store.get('x\u0000')],
      ['name', () => store.history('x\u0000')],
    ];
    for (const [field, call] of calls) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ field });
    }
    expect(await store.get('nul_test')).toMatchObject({ description: 'before', enabled: true });
    expect(await store.history('nul_test')).toHaveLength(1);
  });

  it('turns input the server refuses (SQLSTATE class 22) into a ValidationError without its message', async () => {
    const refusing = {
      query: async () => Promise.reject(Object.assign(new Error('invalid input syntax for type bigint: "NaN"'), { code: '22P02' })),
      connect: async () => Promise.reject(new Error('no')),
    };
    const error = await createPostgresFlagStore({ pool: refusing as never })
      .history('f', { limit: Number.NaN })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).not.toMatch(/bigint|NaN/);
  });
});

describePostgresStoreOptions('createPostgresFlagStore', createPostgresFlagStore, (store) => store.list());
