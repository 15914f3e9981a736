import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
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
  /**
   * `TRUST_PROXY`: which peers may set the client address through `X-Forwarded-For` (Express's
   * `trust proxy`). Default `false`: nobody, the client address is the TCP peer's, so a client
   * cannot pick the IP that per-IP rate limits count. See {@link TrustProxy}.
   */
  readonly trustProxy: TrustProxy;
  /** Timeouts and the connection cap of the HTTP server (see {@link HttpLimits}). */
  readonly http: HttpLimits;
  /**
   * `POOL_CAPTURE_STACKS` (`1`/`true` or `0`/`false`, default off): record where every database
   * connection is acquired, for the server's whole life, so leak reports carry a stack. It costs
   * every query (see the README's performance table): prefer a bounded leak hunt switched on at
   * run time with `POST /api/admin/pool/leak-hunting`.
   */
  readonly poolCaptureStacks: boolean;
  /** The embedding model of search (see {@link EmbeddingsConfig}). */
  readonly embeddings: EmbeddingsConfig;
  /** `DRIVE_DIR` (default `<AIKB_DATA_DIR>/drive`): where uploaded files are kept (the file system Drive). */
  readonly driveDir: string;
  /** `UPLOAD_MAX_BYTES` (default 26 214 400, 25 MiB; at most 1 GiB): the largest file `POST /api/documents/upload` takes (413 past it). */
  readonly uploadMaxBytes: number;
  /**
   * `SAGA_LEASE_MS` (default 30 000, from 1 000 to 600 000): how long a saga's lease lasts without
   * renewal, so how soon another instance (or this one, restarted) recovers a saga whose process
   * died. Recovery runs every 10 s, or every lease when that is shorter.
   */
  readonly sagaLeaseMs: number;
  /**
   * Test-only hooks, read only when `AIKB_TEST_HOOKS=1` (refused with `NODE_ENV=production`):
   * `AIKB_TEST_BLOCK_UPLOAD_STEP` makes that step of every upload wait until it is aborted, and
   * `AIKB_TEST_FAIL_UPLOAD_STEP` makes it fail (so a test can kill the server mid-upload).
   */
  readonly testHooks: TestHooks | undefined;
}

/** The dimension of the local hashing embedder, the default: D of the search schema when `EMBEDDINGS_URL` is unset. */
export const HASHING_DIMENSIONS = 256;

/**
 * The embedding model of search, from the `EMBEDDINGS_*` variables:
 * - `EMBEDDINGS_URL` unset: the local hashing embedder (no model, no network; D = 256), good for
 *   keyword-like search and tests, not for meaning;
 * - `EMBEDDINGS_URL` set: an OpenAI-compatible `POST {EMBEDDINGS_URL}/embeddings` endpoint (OpenAI,
 *   Ollama's `/v1`, vLLM, LiteLLM), with `EMBEDDINGS_MODEL` and `EMBEDDINGS_DIMENSIONS` required.
 *
 * D (the dimensions) is fixed by the search schema once it exists: changing the model to one of
 * another D needs a new database (the server refuses to start and names both).
 */
export type EmbeddingsConfig = { readonly kind: 'hashing'; readonly dimensions: number } | OpenAiEmbeddingsConfig;

/** An OpenAI-compatible embeddings server (`EMBEDDINGS_URL` set). */
export interface OpenAiEmbeddingsConfig {
  readonly kind: 'openai';
  /** `EMBEDDINGS_URL`: the API root, `/embeddings` is appended (`https://api.openai.com/v1`, `http://localhost:11434/v1`). */
  readonly url: string;
  /** `EMBEDDINGS_MODEL`: the model name (`text-embedding-3-small`, `nomic-embed-text`). */
  readonly model: string;
  /** `EMBEDDINGS_DIMENSIONS`: the length of the model's vectors, 1 to 2000 (pgvector's index limit). */
  readonly dimensions: number;
  /**
   * `EMBEDDINGS_API_KEY`, or the first line of the file named by `EMBEDDINGS_API_KEY_FILE` (a
   * mounted secret): sent as `Authorization: Bearer`. Never logged nor shown in health or status.
   */
  readonly apiKey: string | undefined;
  /** `EMBEDDINGS_SEND_DIMENSIONS` (default off): send `dimensions` in requests (OpenAI's text-embedding-3 models shorten their vectors to it). */
  readonly sendDimensions: boolean;
  /** `EMBEDDINGS_TIMEOUT_MS` (default 30 000): one request's time limit (then retried up to 3 times). */
  readonly timeoutMs: number;
  /** `EMBEDDINGS_BATCH_SIZE` (default 64): texts per request. */
  readonly batchSize: number;
}

/** The steps of an upload a test hook can name. */
export const UPLOAD_STEPS = ['drive', 'rows', 'index'] as const;
/** One of {@link UPLOAD_STEPS}. */
export type UploadStep = (typeof UPLOAD_STEPS)[number];

/** See {@link ServerConfig.testHooks}. */
export interface TestHooks {
  readonly blockUploadStep: UploadStep | undefined;
  readonly failUploadStep: UploadStep | undefined;
}

/**
 * Express's `trust proxy` setting, from `TRUST_PROXY`:
 * - unset, empty or `false`: trust no proxy (the default);
 * - a whole number `n`: trust `n` hops of proxies in front of the server (`0` is `false`);
 * - a comma-separated list of `loopback`, `linklocal`, `uniquelocal`, IP addresses and CIDR ranges:
 *   trust `X-Forwarded-For` only from those peers;
 * - `true`: trust every hop, so the left-most `X-Forwarded-For` address wins. Only behind a proxy
 *   that overwrites the header, never when clients can reach the server directly.
 */
export type TrustProxy = boolean | number | readonly string[];

/** The HTTP server's limits: every connection is bounded in time, and their number is capped. */
export interface HttpLimits {
  /** `HTTP_HEADERS_TIMEOUT_MS` (default 10 000): the request line and headers must arrive within this (then 408). */
  readonly headersTimeoutMs: number;
  /** `HTTP_REQUEST_TIMEOUT_MS` (default 30 000): the whole request, body included, must arrive within this (then 408). */
  readonly requestTimeoutMs: number;
  /** `HTTP_KEEPALIVE_TIMEOUT_MS` (default 5 000): an idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** `HTTP_IDLE_TIMEOUT_MS` (default 60 000): a connection with no traffic either way for this long is closed. */
  readonly idleTimeoutMs: number;
  /** `HTTP_MAX_CONNECTIONS` (default 1024): connections beyond this are closed as soon as they are accepted. */
  readonly maxConnections: number;
  /**
   * `HTTP_LISTEN_BACKLOG` (default 4096): connections the kernel may hold accepted-but-not-yet-taken
   * while the server is busy (capped by `net.core.somaxconn`). Node's default, 511, overflows in a
   * burst of a thousand new connections: the kernel drops the rest and their clients retry a
   * second or three later, so a login answered at 500 ms is seen after 1.5–4 s.
   */
  readonly listenBacklog: number;
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

function flag(env: Env, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '' || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw new ConfigError(name, `must be 1, true, 0 or false (got "${env[name]}")`);
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

const TRUST_PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
const TRUST_PROXY_HELP = 'must be false, true, a number of hops, or a comma-separated list of loopback, linklocal, uniquelocal, IP addresses and CIDR ranges';

function trustProxy(env: Env): TrustProxy {
  const raw = env.TRUST_PROXY?.trim();
  if (raw === undefined || raw === '' || raw.toLowerCase() === 'false') return false;
  if (raw.toLowerCase() === 'true') return true;
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > 100) throw new ConfigError('TRUST_PROXY', `${TRUST_PROXY_HELP} (got "${env.TRUST_PROXY}": more than 100 hops)`);
    return hops === 0 ? false : hops;
  }
  const entries = raw.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    if (!isTrustedProxyEntry(entry)) throw new ConfigError('TRUST_PROXY', `${TRUST_PROXY_HELP} (got "${entry || env.TRUST_PROXY}")`);
  }
  return entries;
}

function isTrustedProxyEntry(entry: string): boolean {
  if (TRUST_PROXY_NAMES.includes(entry)) return true;
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return false;
  if (slash < 0) return true;
  const prefix = entry.slice(slash + 1);
  // proxy-addr also takes an IPv4 netmask (10.0.0.0/255.0.0.0).
  if (family === 4 && isIP(prefix) === 4) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function httpLimits(env: Env): HttpLimits {
  const limits = {
    headersTimeoutMs: integer(env, 'HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    requestTimeoutMs: integer(env, 'HTTP_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
    keepAliveTimeoutMs: integer(env, 'HTTP_KEEPALIVE_TIMEOUT_MS', 5_000, 100, 600_000),
    idleTimeoutMs: integer(env, 'HTTP_IDLE_TIMEOUT_MS', 60_000, 100, 3_600_000),
    maxConnections: integer(env, 'HTTP_MAX_CONNECTIONS', 1024, 1, 1_000_000),
    listenBacklog: integer(env, 'HTTP_LISTEN_BACKLOG', 4096, 1, 65_535),
  };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(
      'HTTP_HEADERS_TIMEOUT_MS',
      `must not be greater than HTTP_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs}): the headers are part of the request (got "${limits.headersTimeoutMs}")`,
    );
  }
  return limits;
}

const EMBEDDINGS_OPTIONAL = [
  'EMBEDDINGS_MODEL',
  'EMBEDDINGS_DIMENSIONS',
  'EMBEDDINGS_API_KEY',
  'EMBEDDINGS_API_KEY_FILE',
  'EMBEDDINGS_SEND_DIMENSIONS',
  'EMBEDDINGS_TIMEOUT_MS',
  'EMBEDDINGS_BATCH_SIZE',
];

function embeddingsApiKey(env: Env, cwd: string): string | undefined {
  const key = env.EMBEDDINGS_API_KEY;
  const file = env.EMBEDDINGS_API_KEY_FILE;
  if (key && file) throw new ConfigError('EMBEDDINGS_API_KEY_FILE', 'must not be set together with EMBEDDINGS_API_KEY: set one of them');
  let value = key;
  if (file) {
    try {
      // The first line: secret files usually end with a newline.
      value = readFileSync(path.resolve(cwd, file), 'utf8').split(/\r?\n/)[0]!.trim();
    } catch (error) {
      throw new ConfigError('EMBEDDINGS_API_KEY_FILE', `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`);
    }
    if (value === '') throw new ConfigError('EMBEDDINGS_API_KEY_FILE', 'names an empty file');
  }
  if (value === undefined || value === '') return undefined;
  // Never the value itself in the message: it is a secret.
  if (/\s/.test(value)) throw new ConfigError(file ? 'EMBEDDINGS_API_KEY_FILE' : 'EMBEDDINGS_API_KEY', 'must not contain spaces or line breaks');
  return value;
}

function embeddings(env: Env, cwd: string): EmbeddingsConfig {
  const raw = env.EMBEDDINGS_URL;
  if (raw === undefined || raw === '') {
    const orphan = EMBEDDINGS_OPTIONAL.find((name) => env[name] !== undefined && env[name] !== '');
    if (orphan) throw new ConfigError(orphan, 'is only read with EMBEDDINGS_URL (unset: the local hashing embedder): set EMBEDDINGS_URL too, or unset it');
    return { kind: 'hashing', dimensions: HASHING_DIMENSIONS };
  }
  const base = url(env, 'EMBEDDINGS_URL', ['http:', 'https:'], 'https://api.openai.com/v1');
  const parsed = new URL(base!);
  if (parsed.username || parsed.password) throw new ConfigError('EMBEDDINGS_URL', 'must not hold credentials: set EMBEDDINGS_API_KEY instead');
  if (parsed.search || parsed.hash) throw new ConfigError('EMBEDDINGS_URL', 'must be the API root without a query or fragment (/embeddings is appended)');
  const model = env.EMBEDDINGS_MODEL?.trim();
  if (!model) throw new ConfigError('EMBEDDINGS_MODEL', 'must be set with EMBEDDINGS_URL (the model name, such as text-embedding-3-small)');
  if (env.EMBEDDINGS_DIMENSIONS === undefined || env.EMBEDDINGS_DIMENSIONS === '')
    throw new ConfigError('EMBEDDINGS_DIMENSIONS', "must be set with EMBEDDINGS_URL (the length of the model's vectors, such as 1536)");
  return {
    kind: 'openai',
    url: base!,
    model,
    dimensions: integer(env, 'EMBEDDINGS_DIMENSIONS', 0, 1, 2000),
    apiKey: embeddingsApiKey(env, cwd),
    sendDimensions: flag(env, 'EMBEDDINGS_SEND_DIMENSIONS'),
    timeoutMs: integer(env, 'EMBEDDINGS_TIMEOUT_MS', 30_000, 100, 600_000),
    batchSize: integer(env, 'EMBEDDINGS_BATCH_SIZE', 64, 1, 2048),
  };
}

function uploadStep(env: Env, name: string): UploadStep | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!(UPLOAD_STEPS as readonly string[]).includes(raw)) throw new ConfigError(name, `must be one of ${UPLOAD_STEPS.join(', ')} (got "${raw}")`);
  return raw as UploadStep;
}

function testHooks(env: Env): TestHooks | undefined {
  if (!flag(env, 'AIKB_TEST_HOOKS')) return undefined;
  if (env.NODE_ENV === 'production')
    throw new ConfigError('AIKB_TEST_HOOKS', 'must not be set with NODE_ENV=production: it makes uploads block or fail on purpose');
  return { blockUploadStep: uploadStep(env, 'AIKB_TEST_BLOCK_UPLOAD_STEP'), failUploadStep: uploadStep(env, 'AIKB_TEST_FAIL_UPLOAD_STEP') };
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
  const driveDir = env.DRIVE_DIR ?? path.join(dataDir, 'drive');
  if (driveDir.trim() === '') throw new ConfigError('DRIVE_DIR', 'must not be empty');
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
    trustProxy: trustProxy(env),
    http: httpLimits(env),
    poolCaptureStacks: flag(env, 'POOL_CAPTURE_STACKS'),
    embeddings: embeddings(env, cwd),
    driveDir: path.resolve(cwd, driveDir),
    uploadMaxBytes: integer(env, 'UPLOAD_MAX_BYTES', 26_214_400, 1, 1_073_741_824),
    sagaLeaseMs: integer(env, 'SAGA_LEASE_MS', 30_000, 1_000, 600_000),
    testHooks: testHooks(env),
  };
}
