#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { isAikbError } from '@aikb/core';
import { createDatabase, migrate } from '@aikb/core/db';
import { createFsDriveStore } from '@aikb/core/drive';
import { ConfigError, loadConfig } from './config';
import { checkDrive, formatDriveCheck } from './documents/drive-check';
import { createLogger } from './logger';
import { serverMigrations } from './migrations';
import { startServer, StartupError } from './server';
import { runUsersCommand, USERS_USAGE } from './subsystems/auth-cli';
import { migrateSearchTables } from './subsystems/search';
import { version } from './version';

const USAGE = `aikb-server ${version}

Usage:
  aikb-server [serve]     start the HTTP server (the default)
  aikb-server migrate     apply database migrations (the search tables too when the
                          database has pgvector) and exit
${USERS_USAGE}
  aikb-server drive check [--json]
                          compare Drive (DRIVE_DIR) with the document table and the
                          search index: files without rows, rows without files, indexed
                          documents without rows, sagas in flight; exit 1 on orphans
  aikb-server --version   print the version
  aikb-server --help      print this help

To operate a running server (flags, rollback, sagas, users, ...): aikb --help.

Configuration comes from environment variables: PORT, HOST, DATABASE_URL, AIKB_DATA_DIR,
DATABASE_POOL_SIZE, REDIS_URL, LOG_LEVEL, LOG_FILE, NODE_ENV, ADMIN_TOKEN, AUTH_JWT_SECRET,
CACHE_TTL_SECONDS, TRUST_PROXY, DRIVE_DIR, UPLOAD_MAX_BYTES, SAGA_LEASE_MS, HTTP_HEADERS_TIMEOUT_MS,
HTTP_REQUEST_TIMEOUT_MS, HTTP_KEEPALIVE_TIMEOUT_MS, HTTP_IDLE_TIMEOUT_MS, HTTP_MAX_CONNECTIONS, HTTP_LISTEN_BACKLOG,
POOL_CAPTURE_STACKS (see the README).

Search embeds with a local hashing embedder (256 dimensions) unless EMBEDDINGS_URL names an
OpenAI-compatible API root (https://api.openai.com/v1, http://127.0.0.1:11434/v1 for Ollama);
then EMBEDDINGS_MODEL and EMBEDDINGS_DIMENSIONS are required, and EMBEDDINGS_API_KEY (or
EMBEDDINGS_API_KEY_FILE), EMBEDDINGS_SEND_DIMENSIONS, EMBEDDINGS_TIMEOUT_MS and
EMBEDDINGS_BATCH_SIZE are optional. "migrate" creates the search tables with that dimension.`;

/** One line on stderr, exit code 1: what an operator sees instead of a stack trace. */
function fail(message: string): never {
  process.stderr.write(`aikb-server: ${message}\n`);
  process.exit(1);
}

function explain(error: unknown): string {
  if (error instanceof ConfigError) return `invalid configuration: ${error.message}`;
  if (error instanceof StartupError) return error.message;
  if (isAikbError(error)) return error.message;
  const code = (error as NodeJS.ErrnoException)?.code;
  const message = (error as Error)?.message ?? String(error);
  return code ? `${message} (${code})` : message;
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  const server = await startServer(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function runMigrations(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  const db = config.databaseUrl ? await createDatabase({ url: config.databaseUrl, max: 1, logger }) : await createDatabase({ dataDir: config.dataDir, logger });
  try {
    const result = await migrate(db.pool, serverMigrations, { logger });
    logger.info(
      { applied: result.applied, skipped: result.skipped.length },
      `migrations: ${result.applied.length} applied, ${result.skipped.length} already up to date`,
    );
    const search = await migrateSearchTables(db.pool, logger, config.embeddings);
    if (search.kind === 'migrated') {
      logger.info(
        { applied: search.applied, skipped: search.upToDate, pgvector: search.pgvector, dimensions: search.dimensions },
        `search tables: ${search.applied.length} applied, ${search.upToDate} already up to date (pgvector ${search.pgvector}, ${search.dimensions} dimensions)`,
      );
    } else {
      logger.warn({ reason: search.reason }, `search tables skipped: ${search.reason}`);
    }
  } finally {
    await db.close();
  }
}

/** `aikb-server drive check [--json]`: exit 0 when clean, 1 when something is orphaned or waits for an operator. */
async function runDriveCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals[0] !== 'check' || positionals.length > 1) fail(`usage: aikb-server drive check [--json]`);
  const config = loadConfig();
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const db = config.databaseUrl ? await createDatabase({ url: config.databaseUrl, max: 1, logger }) : await createDatabase({ dataDir: config.dataDir, logger });
  try {
    const check = await checkDrive({ drive: createFsDriveStore({ root: config.driveDir, logger }), pool: db.pool });
    process.stdout.write(`${values.json ? JSON.stringify(check) : formatDriveCheck(check)}\n`);
    process.exitCode = check.clean ? 0 : 1;
  } finally {
    await db.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.version) {
    process.stdout.write(`${version}\n`);
    return;
  }
  const [command = 'serve'] = positionals;
  switch (command) {
    case 'serve':
      return serve();
    case 'migrate':
      return runMigrations();
    case 'users':
      return runUsersCommand(argv.slice(argv.indexOf('users') + 1));
    case 'drive':
      return runDriveCommand(argv.slice(argv.indexOf('drive') + 1));
    default:
      fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace') console.error(error);
  fail(explain(error));
});
