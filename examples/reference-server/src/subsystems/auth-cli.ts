import { parseArgs } from 'node:util';
import { createArgon2Hasher, createPostgresUserStore, createUserDirectory } from '@aikb/core/auth';
import { createDatabase, migrate } from '@aikb/core/db';
import { loadConfig } from '../config';
import { createLogger } from '../logger';
import { serverMigrations } from '../migrations';
import { promptHidden, readAll } from '../terminal';

export const USERS_USAGE = `  aikb-server users add --email <email> --role <role> [--role <role>...] [--password-stdin]
                          add a user (the server must be stopped in embedded mode);
                          the password is prompted for, or read from stdin`;

/** `aikb-server users add ...`: validates, hashes with argon2id and stores the user; prints one line. */
export async function runUsersCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { email: { type: 'string' }, role: { type: 'string', multiple: true }, 'password-stdin': { type: 'boolean' } },
  });
  if (positionals[0] !== 'add') throw new Error(`unknown users command "${positionals[0] ?? ''}"; usage:\n${USERS_USAGE}`);
  if (!values.email) throw new Error('users add needs --email <email>');
  let password: string;
  if (values['password-stdin']) password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
  else if (process.stdin.isTTY) password = await promptHidden(`password for ${values.email}: `);
  else throw new Error('users add: stdin is not a terminal; pass --password-stdin to read the password from it');

  const config = loadConfig();
  const logger = createLogger({ ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  const db = config.databaseUrl ? await createDatabase({ url: config.databaseUrl, max: 1, logger }) : await createDatabase({ dataDir: config.dataDir, logger });
  try {
    await migrate(db.pool, serverMigrations, { logger });
    const users = createUserDirectory({ store: createPostgresUserStore({ pool: db.pool, logger }), hasher: createArgon2Hasher() });
    const user = await users.add({ email: values.email, password, roles: values.role ?? [] }, { actor: 'cli' });
    process.stdout.write(`added user ${user.email} (id ${user.id}, roles: ${user.roles.join(', ') || 'none'})\n`);
  } finally {
    await db.close();
  }
}
