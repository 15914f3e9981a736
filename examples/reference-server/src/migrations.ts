import type { Migration } from '@aikb/core/db';
import { flagMigrations } from './subsystems/flags';

/** Every migration the server applies, in order. Each subsystem appends its store's migrations. */
export const serverMigrations: readonly Migration[] = [...flagMigrations];
