import path from 'node:path';

/** A configuration problem: names the environment variable and what is wrong with it. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The server's configuration, read once from the environment at start-up. */
export interface ServerConfig {
  /** `PORT` (default 3000; 0 picks a free port). */
  readonly port: number;
  /** `HOST` (default 127.0.0.1; use 0.0.0.0 to accept connections from other machines). */
  readonly host: string;
  /** `DATABASE_URL`: a PostgreSQL server. Unset: embedded PGlite in {@link dataDir}. */
  readonly databaseUrl: string | undefined;
  /** `AIKB_DATA_DIR` (default ./data): where the embedded database keeps its files. */
  readonly dataDir: string;
  /** `DATABASE_POOL_SIZE` (alias `SUPABASE_POOL_SIZE`, default 10): connections to a server database. */
  readonly poolSize: number;
  /** `REDIS_URL`: Redis for cross-instance invalidation and rate limits. Unset: in-process only. */
  readonly redisUrl: string | undefined;
  /** `LOG_LEVEL` (default info). */
  readonly logLevel: LogLevel;
  /** `LOG_FILE`: also write JSON logs to this file. */
  readonly logFile: string | undefined;
  /** `NODE_ENV === 'production'`. */
  readonly production: boolean;
  /** `ADMIN_TOKEN`: the bearer token that opens `/api/admin`. */
  readonly adminToken: string | undefined;
  /** `CACHE_TTL_SECONDS` (default 300): how long a feature flag is served from memory without a reload. */
  readonly cacheTtlSeconds: number;
  /** `AUTH_JWT_SECRET`: signs user tokens (at least 32 characters). Required in production. */
  readonly jwtSecret: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number from ${min} to ${max} (got "${raw}")`);
  const value = Number(raw.trim());
  if (value < min || value > max) throw new ConfigError(name, `must be a whole number from ${min} to ${max} (got "${raw}")`);
  return value;
}

function url(env: Env, name: string, protocols: readonly string[], example: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `is not a valid URL (expected something like ${example})`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')} (expected something like ${example})`);
  }
  if (!parsed.hostname) throw new ConfigError(name, `has no host (expected something like ${example})`);
  return raw;
}

function adminToken(env: Env): string | undefined {
  const raw = env.ADMIN_TOKEN;
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 16 || /\s/.test(raw)) throw new ConfigError('ADMIN_TOKEN', 'must be at least 16 characters with no spaces');
  return raw;
}

function jwtSecret(env: Env): string | undefined {
  const raw = env.AUTH_JWT_SECRET;
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 32) throw new ConfigError('AUTH_JWT_SECRET', 'must be at least 32 characters');
  return raw;
}

/**
 * Reads and validates the configuration.
 *
 * @param env the environment (default `process.env`)
 * @param cwd what relative paths are resolved against (default: where `npm` was run, else the process's cwd)
 * @throws {ConfigError} naming the first bad variable
 */
export function loadConfig(env: Env = process.env, cwd: string = env.INIT_CWD ?? process.cwd()): ServerConfig {
  const logLevel = (env.LOG_LEVEL ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')} (got "${env.LOG_LEVEL}")`);
  }
  const host = env.HOST ?? '127.0.0.1';
  if (host.trim() === '') throw new ConfigError('HOST', 'must not be empty');
  const dataDir = env.AIKB_DATA_DIR ?? 'data';
  if (dataDir.trim() === '') throw new ConfigError('AIKB_DATA_DIR', 'must not be empty');
  const poolVariable = env.DATABASE_POOL_SIZE !== undefined ? 'DATABASE_POOL_SIZE' : 'SUPABASE_POOL_SIZE';
  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    host,
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:'], 'postgres://user:password@localhost:5432/aikb'),
    dataDir: path.resolve(cwd, dataDir),
    poolSize: integer(env, poolVariable, 10, 1, 1000),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:'], 'redis://localhost:6379'),
    logLevel: logLevel as LogLevel,
    logFile: env.LOG_FILE ? path.resolve(cwd, env.LOG_FILE) : undefined,
    production: env.NODE_ENV === 'production',
    adminToken: adminToken(env),
    cacheTtlSeconds: integer(env, 'CACHE_TTL_SECONDS', 300, 1, 86_400),
    jwtSecret: jwtSecret(env),
  };
}
