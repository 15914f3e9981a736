import { describeEachDatabase } from '@aikb/test-support';
import { beforeAll, describe } from 'vitest';
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
  describeFlagStoreContract(() => createPostgresFlagStore(db().pool));
});
