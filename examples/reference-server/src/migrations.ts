import { userStoreMigrations } from '@aikb/core/auth';
import type { Migration } from '@aikb/core/db';
import { flagStoreMigrations } from '@aikb/core/flags';
import { sagaLogMigrations } from '@aikb/core/saga';
import { documentFileMigrations } from './documents/document-store';

/** Every migration the server applies, in order. Each subsystem appends its store's migrations. */
export const serverMigrations: readonly Migration[] = [...flagStoreMigrations, ...userStoreMigrations, ...sagaLogMigrations, ...documentFileMigrations];
