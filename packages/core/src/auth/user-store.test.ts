import { describe, expect, it } from 'vitest';
import { describeEachDatabase, describePostgresStoreOptions } from '@aikb/test-support';
import { migrate } from '../db';
import { isAikbError, ValidationError } from '../errors';
import { createMemoryUserStore } from './memory-user-store';
import { createPostgresUserStore, userStoreMigrations } from './postgres-user-store';
import { describeUserStoreContract } from './user-store.contract';

describe('MemoryUserStore', () => {
  describeUserStoreContract(() => createMemoryUserStore());
});

describeEachDatabase('PostgresUserStore', (db) => {
  describeUserStoreContract(async () => {
    await migrate(db().pool, userStoreMigrations);
    return createPostgresUserStore({ pool: db().pool });
  });
});

describe('PostgresUserStore outage', () => {
  it('reports an unreachable database as UNAVAILABLE', async () => {
    const pool = {
      query: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
      connect: async () => Promise.reject(new Error('no')),
    };
    const store = createPostgresUserStore({ pool: pool as never });
    await expect(store.findByEmail('a@example.com')).rejects.toSatisfy((e) => isAikbError(e, 'UNAVAILABLE'));
  });
});

describeEachDatabase('PostgresUserStore input the database refuses', (db) => {
  it('rejects a NUL in an email or id as a ValidationError naming the field, and keeps working', async () => {
    await migrate(db().pool, userStoreMigrations);
    const store = createPostgresUserStore({ pool: db().pool });
    const user = await store.create({ email: 'nul@example.com', passwordHash: 'h', roles: ['user'] });
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['email', () => store.findByEmail('a\u0000@example.com')],
      ['id', () => store.get('x\u0000')],
      ['email', () => store.create({ email: 'b\u0000@example.com', passwordHash: 'h', roles: [] })],
      ['roles', () => store.create({ email: 'c@example.com', passwordHash: 'h', roles: ['a\u0000'] })],
      ['email', () => store.update(user.id, { email: 'd\u0000@example.com' })],
      ['id', () => store.delete('\u0000')],
    ];
    for (const [field, call] of calls) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ field });
      expect((error as Error).message).not.toMatch(/byte sequence|UTF8/);
    }
    // Nothing changed, and the connection still serves (PGlite breaks it on a refused parameter).
    expect(await store.get(user.id)).toMatchObject({ email: 'nul@example.com' });
    expect(await store.list()).toHaveLength(1);
  });
});

describe('PostgresUserStore refused input', () => {
  it.each([
    ['22P02', 'invalid input syntax for type uuid: "zz"'],
    ['22021', 'invalid byte sequence for encoding "UTF8": 0x00'],
    ['54000', 'index row size 3000 exceeds btree version 4 maximum 2704'],
  ])('turns SQLSTATE %s into a ValidationError without the server message', async (code, message) => {
    const pool = { query: async () => Promise.reject(Object.assign(new Error(message), { code })), connect: async () => Promise.reject(new Error('no')) };
    const store = createPostgresUserStore({ pool: pool as never });
    const error = await store.update('some-id', { email: 'long@example.com' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).not.toContain(message);
    expect((error as ValidationError).field).toMatch(/^(id|email)$/);
  });
});

describePostgresStoreOptions('createPostgresUserStore', createPostgresUserStore, (store) => store.get('u1'));
