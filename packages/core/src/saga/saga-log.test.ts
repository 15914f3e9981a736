import { describe, expect, it } from 'vitest';
import { describeEachDatabase } from '@aikb/test-support';
import { migrate } from '../db';
import { isAikbError, ValidationError } from '../errors';
import { createMemorySagaLog } from './memory-saga-log';
import { createPostgresSagaLog, sagaLogMigrations } from './postgres-saga-log';
import { describeSagaLogContract } from './saga-log.contract';

describe('MemorySagaLog', () => {
  describeSagaLogContract(() => createMemorySagaLog());
});

describeEachDatabase('PostgresSagaLog', (db) => {
  let migrated = false;
  describeSagaLogContract(async () => {
    if (!migrated) {
      await migrate(db().pool, sagaLogMigrations);
      migrated = true;
    }
    return createPostgresSagaLog({ pool: db().pool });
  });

  it('refuses a forbidden state change even by hand-written SQL (a trigger), and keeps serving', async () => {
    const log = createPostgresSagaLog({ pool: db().pool });
    const { record } = await log.create({
      id: 'sql-guard',
      name: 'guard',
      version: 1,
      idempotencyKey: null,
      policy: 'compensate',
      input: null,
      owner: 'o',
      nowMs: 1,
      leaseExpiresAtMs: 2,
    });
    await log.transition(record.id, { owner: 'o', nowMs: 3, leaseExpiresAtMs: 4 }, { from: 'running', to: 'completed' });
    await expect(db().pool.query("UPDATE aikb_sagas SET state = 'running' WHERE id = 'sql-guard'")).rejects.toThrow(/cannot go from completed to running/);
    expect((await log.get('sql-guard'))!.state).toBe('completed');
  });

  it('applies its migrations once', async () => {
    expect((await migrate(db().pool, sagaLogMigrations)).applied).toEqual([]);
  });
});

describe('createPostgresSagaLog', () => {
  it('checks its options at construction', () => {
    expect(() => createPostgresSagaLog(undefined as never)).toThrow(/createPostgresSagaLog: options must be an object/);
    expect(() => createPostgresSagaLog({} as never)).toThrow(/createPostgresSagaLog: pool must be a pg.Pool/);
    expect(() => createPostgresSagaLog({ pool: { query() {}, connect() {} } as never, logger: {} as never })).toThrow(/logger/);
  });

  it('reports an unreachable database as UNAVAILABLE and a NUL in an id as a ValidationError', async () => {
    const pool = {
      query: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
      connect: async () => Promise.reject(new Error('no')),
    };
    const log = createPostgresSagaLog({ pool: pool as never });
    await expect(log.get('x')).rejects.toSatisfy((e) => isAikbError(e, 'UNAVAILABLE'));
    await expect(log.get('x\u0000')).rejects.toSatisfy((e) => e instanceof ValidationError && e.field === 'id');
  });
});
