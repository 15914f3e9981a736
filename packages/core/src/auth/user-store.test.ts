import { describe, expect, it } from 'vitest';
import { describeEachDatabase } from '@aikb/test-support';
import { migrate } from '../db';
import { isAikbError } from '../errors';
import { createMemoryUserStore } from './memory-user-store';
import { createPostgresUserStore, userStoreMigrations } from './postgres-user-store';
import { describeUserStoreContract } from './user-store.contract';

describe('MemoryUserStore', () => {
  describeUserStoreContract(() => createMemoryUserStore());
});

describeEachDatabase('PostgresUserStore', (db) => {
  describeUserStoreContract(async () => {
    await migrate(db().pool, userStoreMigrations);
    return createPostgresUserStore(db().pool);
  });
});

describe('PostgresUserStore outage', () => {
  it('reports an unreachable database as UNAVAILABLE', async () => {
    const pool = { query: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), connect: async () => Promise.reject(new Error('no')) };
    const store = createPostgresUserStore(pool as never);
    await expect(store.findByEmail('a@example.com')).rejects.toSatisfy((e) => isAikbError(e, 'UNAVAILABLE'));
  });
});
