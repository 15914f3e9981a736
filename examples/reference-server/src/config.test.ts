import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config';

/** The error `loadConfig(env)` throws: a {@link ConfigError}. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env, '/');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('needs no configuration at all: embedded database in ./data, port 3000, in-process cache', () => {
    const config = loadConfig({}, '/srv/aikb');
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      redisUrl: undefined,
      dataDir: path.resolve('/srv/aikb/data'),
      poolSize: 10,
      logLevel: 'info',
      production: false,
    });
  });

  it('reads every variable', () => {
    const config = loadConfig(
      {
        PORT: '8080',
        HOST: '0.0.0.0',
        DATABASE_URL: 'postgres://app@db:5432/aikb',
        REDIS_URL: 'redis://cache:6379',
        AIKB_DATA_DIR: '/var/lib/aikb',
        DATABASE_POOL_SIZE: '15',
        LOG_LEVEL: 'debug',
        LOG_FILE: '/var/log/aikb/server.log',
        NODE_ENV: 'production',
      },
      '/',
    );
    expect(config).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: 'postgres://app@db:5432/aikb',
      redisUrl: 'redis://cache:6379',
      dataDir: '/var/lib/aikb',
      poolSize: 15,
      logLevel: 'debug',
      logFile: '/var/log/aikb/server.log',
      production: true,
    });
  });

  it('captures pool acquire stacks only with POOL_CAPTURE_STACKS=1 or true, and refuses other values', () => {
    expect(loadConfig({}, '/').poolCaptureStacks).toBe(false);
    for (const raw of ['', '0', 'false', 'FALSE']) expect(loadConfig({ POOL_CAPTURE_STACKS: raw }, '/').poolCaptureStacks).toBe(false);
    for (const raw of ['1', 'true', ' True ']) expect(loadConfig({ POOL_CAPTURE_STACKS: raw }, '/').poolCaptureStacks).toBe(true);
    for (const raw of ['yes', '2', 'on'])
      expect(() => loadConfig({ POOL_CAPTURE_STACKS: raw }, '/')).toThrow(/POOL_CAPTURE_STACKS.*must be 1, true, 0 or false/);
  });

  it("serves feature flags from memory for CACHE_TTL_SECONDS (default 300, the runbook's 5 minutes)", () => {
    expect(loadConfig({}, '/').cacheTtlSeconds).toBe(300);
    expect(loadConfig({ CACHE_TTL_SECONDS: '30' }, '/').cacheTtlSeconds).toBe(30);
  });

  describe('TRUST_PROXY', () => {
    it('trusts no proxy by default: X-Forwarded-For cannot pick the client address', () => {
      expect(loadConfig({}, '/').trustProxy).toBe(false);
      expect(loadConfig({ TRUST_PROXY: '' }, '/').trustProxy).toBe(false);
      expect(loadConfig({ TRUST_PROXY: 'false' }, '/').trustProxy).toBe(false);
      expect(loadConfig({ TRUST_PROXY: '0' }, '/').trustProxy).toBe(false);
    });

    it.each([
      ['true', true],
      ['TRUE', true],
      ['1', 1],
      ['2', 2],
      ['loopback', ['loopback']],
      ['loopback, linklocal,uniquelocal', ['loopback', 'linklocal', 'uniquelocal']],
      ['10.0.0.1', ['10.0.0.1']],
      ['10.0.0.0/8, 192.168.1.0/24,::1, fd00::/8', ['10.0.0.0/8', '192.168.1.0/24', '::1', 'fd00::/8']],
      ['10.0.0.0/255.0.0.0', ['10.0.0.0/255.0.0.0']],
    ])('accepts what Express accepts: %s', (raw, expected) => {
      expect(loadConfig({ TRUST_PROXY: raw }, '/').trustProxy).toEqual(expected);
    });

    it.each(['yes', 'localhost', '10.0.0.0/33', '::1/129', '300.1.1.1', 'loopback,', '10.0.0.0/8;evil', '1.5', '-1', '101'])(
      'rejects "%s" with a ConfigError naming TRUST_PROXY',
      (raw) => {
        expect(() => loadConfig({ TRUST_PROXY: raw }, '/')).toThrow(ConfigError);
        expect(() => loadConfig({ TRUST_PROXY: raw }, '/')).toThrow(/^TRUST_PROXY must be false, true, a number of hops/);
      },
    );
  });

  describe('HTTP limits', () => {
    it('bounds every connection by default: headers 10 s, request 30 s, keep-alive 5 s, idle 60 s, 1024 connections', () => {
      expect(loadConfig({}, '/').http).toEqual({
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        keepAliveTimeoutMs: 5_000,
        idleTimeoutMs: 60_000,
        maxConnections: 1024,
        listenBacklog: 4096,
      });
    });

    it('reads HTTP_*_TIMEOUT_MS, HTTP_MAX_CONNECTIONS and HTTP_LISTEN_BACKLOG', () => {
      const env = {
        HTTP_HEADERS_TIMEOUT_MS: '2000',
        HTTP_REQUEST_TIMEOUT_MS: '4000',
        HTTP_KEEPALIVE_TIMEOUT_MS: '1000',
        HTTP_IDLE_TIMEOUT_MS: '8000',
        HTTP_MAX_CONNECTIONS: '50',
        HTTP_LISTEN_BACKLOG: '128',
      };
      expect(loadConfig(env, '/').http).toEqual({
        headersTimeoutMs: 2000,
        requestTimeoutMs: 4000,
        keepAliveTimeoutMs: 1000,
        idleTimeoutMs: 8000,
        maxConnections: 50,
        listenBacklog: 128,
      });
    });
  });

  it("accepts the runbook's SUPABASE_POOL_SIZE as the pool size", () => {
    expect(loadConfig({ SUPABASE_POOL_SIZE: '15' }, '/').poolSize).toBe(15);
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT', /whole number from 0 to 65535/],
    [{ PORT: '70000' }, 'PORT', /whole number/],
    [{ PORT: '-1' }, 'PORT', /whole number/],
    [{ DATABASE_URL: 'nonsense' }, 'DATABASE_URL', /not a valid URL/],
    [{ DATABASE_URL: 'mysql://x/y' }, 'DATABASE_URL', /must start with postgres:\/\/ or postgresql:\/\//],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL', /must start with redis:\/\//],
    [{ SUPABASE_POOL_SIZE: '0' }, 'SUPABASE_POOL_SIZE', /whole number from 1/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /must be one of/],
    [{ CACHE_TTL_SECONDS: '0' }, 'CACHE_TTL_SECONDS', /whole number from 1 to 86400/],
    [{ CACHE_TTL_SECONDS: '5m' }, 'CACHE_TTL_SECONDS', /whole number/],
    [{ HTTP_HEADERS_TIMEOUT_MS: '0' }, 'HTTP_HEADERS_TIMEOUT_MS', /whole number from 100/],
    [{ HTTP_REQUEST_TIMEOUT_MS: '30s' }, 'HTTP_REQUEST_TIMEOUT_MS', /whole number/],
    [{ HTTP_REQUEST_TIMEOUT_MS: '0' }, 'HTTP_REQUEST_TIMEOUT_MS', /whole number from 100/],
    [{ HTTP_KEEPALIVE_TIMEOUT_MS: '-5' }, 'HTTP_KEEPALIVE_TIMEOUT_MS', /whole number/],
    [{ HTTP_IDLE_TIMEOUT_MS: '99' }, 'HTTP_IDLE_TIMEOUT_MS', /whole number from 100/],
    [{ HTTP_MAX_CONNECTIONS: '0' }, 'HTTP_MAX_CONNECTIONS', /whole number from 1 to 1000000/],
    [{ HTTP_LISTEN_BACKLOG: '70000' }, 'HTTP_LISTEN_BACKLOG', /whole number from 1 to 65535/],
    [{ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' }, 'HTTP_HEADERS_TIMEOUT_MS', /not be greater than HTTP_REQUEST_TIMEOUT_MS/],
    [{ TRUST_PROXY: 'everyone' }, 'TRUST_PROXY', /must be false, true, a number of hops/],
  ])('rejects %j naming the variable', (env, variable, message) => {
    const error = configError(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toMatch(message);
    expect(error.message.startsWith(variable)).toBe(true);
  });

  it('reads AUTH_JWT_SECRET and refuses one shorter than 32 characters', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: 's'.repeat(32) }, '/').jwtSecret).toBe('s'.repeat(32));
    expect(() => loadConfig({ AUTH_JWT_SECRET: 'short' }, '/')).toThrow(/^AUTH_JWT_SECRET must be at least 32 characters$/);
  });

  describe('embeddings (EMBEDDINGS_*)', () => {
    const server = { EMBEDDINGS_URL: 'http://127.0.0.1:11434/v1', EMBEDDINGS_MODEL: 'nomic-embed-text', EMBEDDINGS_DIMENSIONS: '768' };
    const secret = 'sk-test-0123456789abcdef';

    it('uses the local hashing embedder (D = 256) when EMBEDDINGS_URL is unset', () => {
      expect(loadConfig({}, '/').embeddings).toEqual({ kind: 'hashing', dimensions: 256 });
      expect(loadConfig({ EMBEDDINGS_URL: '' }, '/').embeddings).toEqual({ kind: 'hashing', dimensions: 256 });
    });

    it('reads an OpenAI-compatible server with its model, dimensions and defaults', () => {
      expect(loadConfig(server, '/').embeddings).toEqual({
        kind: 'openai',
        url: 'http://127.0.0.1:11434/v1',
        model: 'nomic-embed-text',
        dimensions: 768,
        apiKey: undefined,
        sendDimensions: false,
        timeoutMs: 30_000,
        batchSize: 64,
      });
      expect(
        loadConfig(
          { ...server, EMBEDDINGS_API_KEY: secret, EMBEDDINGS_SEND_DIMENSIONS: 'true', EMBEDDINGS_TIMEOUT_MS: '5000', EMBEDDINGS_BATCH_SIZE: '16' },
          '/',
        ).embeddings,
      ).toMatchObject({ apiKey: secret, sendDimensions: true, timeoutMs: 5000, batchSize: 16 });
    });

    it('reads the API key from the first line of EMBEDDINGS_API_KEY_FILE, relative to the working directory', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'aikb-config-'));
      try {
        writeFileSync(path.join(dir, 'key'), `${secret}\n`);
        writeFileSync(path.join(dir, 'empty'), '\n');
        expect(loadConfig({ ...server, EMBEDDINGS_API_KEY_FILE: 'key' }, dir).embeddings).toMatchObject({ apiKey: secret });
        expect(() => loadConfig({ ...server, EMBEDDINGS_API_KEY_FILE: 'empty' }, dir)).toThrow(/EMBEDDINGS_API_KEY_FILE names an empty file/);
        expect(() => loadConfig({ ...server, EMBEDDINGS_API_KEY_FILE: 'missing' }, dir)).toThrow(/EMBEDDINGS_API_KEY_FILE cannot be read \(ENOENT\)/);
        expect(() => loadConfig({ ...server, EMBEDDINGS_API_KEY_FILE: 'key', EMBEDDINGS_API_KEY: secret }, dir)).toThrow(
          /EMBEDDINGS_API_KEY_FILE must not be set together with EMBEDDINGS_API_KEY/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it.each([
      [{ ...server, EMBEDDINGS_URL: 'ftp://models/v1' }, 'EMBEDDINGS_URL', /must start with http:\/\/ or https:\/\//],
      [{ ...server, EMBEDDINGS_URL: 'not a url' }, 'EMBEDDINGS_URL', /is not a valid URL/],
      [{ ...server, EMBEDDINGS_URL: 'https://user:hunter2@api.example/v1' }, 'EMBEDDINGS_URL', /must not hold credentials/],
      [{ ...server, EMBEDDINGS_URL: 'https://api.example/v1?key=1' }, 'EMBEDDINGS_URL', /without a query/],
      [{ ...server, EMBEDDINGS_MODEL: undefined }, 'EMBEDDINGS_MODEL', /must be set with EMBEDDINGS_URL/],
      [{ ...server, EMBEDDINGS_MODEL: ' ' }, 'EMBEDDINGS_MODEL', /must be set with EMBEDDINGS_URL/],
      [{ ...server, EMBEDDINGS_DIMENSIONS: undefined }, 'EMBEDDINGS_DIMENSIONS', /must be set with EMBEDDINGS_URL/],
      [{ ...server, EMBEDDINGS_DIMENSIONS: '3072' }, 'EMBEDDINGS_DIMENSIONS', /from 1 to 2000/],
      [{ ...server, EMBEDDINGS_DIMENSIONS: 'x' }, 'EMBEDDINGS_DIMENSIONS', /whole number/],
      [{ ...server, EMBEDDINGS_TIMEOUT_MS: '10' }, 'EMBEDDINGS_TIMEOUT_MS', /from 100 to 600000/],
      [{ ...server, EMBEDDINGS_BATCH_SIZE: '0' }, 'EMBEDDINGS_BATCH_SIZE', /from 1 to 2048/],
      [{ ...server, EMBEDDINGS_SEND_DIMENSIONS: 'yes' }, 'EMBEDDINGS_SEND_DIMENSIONS', /must be 1, true, 0 or false/],
      [{ ...server, EMBEDDINGS_API_KEY: 'two words' }, 'EMBEDDINGS_API_KEY', /must not contain spaces/],
      [{ EMBEDDINGS_MODEL: 'nomic-embed-text' }, 'EMBEDDINGS_MODEL', /only read with EMBEDDINGS_URL/],
      [{ EMBEDDINGS_API_KEY: secret }, 'EMBEDDINGS_API_KEY', /only read with EMBEDDINGS_URL/],
    ])('refuses %j naming %s', (env, variable, message) => {
      const error = configError(env);
      expect(error).toMatchObject({ variable });
      expect(error.message).toMatch(message);
      // A secret never appears in a configuration error.
      expect(error.message).not.toMatch(/hunter2|sk-test|two words/);
    });
  });
  describe('uploads', () => {
    it('keeps Drive under the data dir and takes 25 MiB files by default, with no test hooks', () => {
      const config = loadConfig({ AIKB_DATA_DIR: 'var' }, '/srv/aikb');
      expect(config).toMatchObject({ driveDir: path.resolve('/srv/aikb/var/drive'), uploadMaxBytes: 26_214_400, sagaLeaseMs: 30_000, testHooks: undefined });
      expect(loadConfig({ DRIVE_DIR: '/mnt/drive', UPLOAD_MAX_BYTES: '1048576', SAGA_LEASE_MS: '2000' }, '/')).toMatchObject({
        driveDir: '/mnt/drive',
        uploadMaxBytes: 1_048_576,
        sagaLeaseMs: 2000,
      });
    });

    it.each([
      [{ UPLOAD_MAX_BYTES: '0' }, 'UPLOAD_MAX_BYTES'],
      [{ UPLOAD_MAX_BYTES: '25MB' }, 'UPLOAD_MAX_BYTES'],
      [{ UPLOAD_MAX_BYTES: String(2 ** 31) }, 'UPLOAD_MAX_BYTES'],
      [{ SAGA_LEASE_MS: '10' }, 'SAGA_LEASE_MS'],
      [{ DRIVE_DIR: ' ' }, 'DRIVE_DIR'],
      [{ AIKB_TEST_HOOKS: '1', NODE_ENV: 'production' }, 'AIKB_TEST_HOOKS'],
      [{ AIKB_TEST_HOOKS: '1', AIKB_TEST_BLOCK_UPLOAD_STEP: 'upload' }, 'AIKB_TEST_BLOCK_UPLOAD_STEP'],
    ])('refuses %o naming %s', (env, variable) => {
      expect(() => loadConfig(env, '/')).toThrow(ConfigError);
      expect(() => loadConfig(env, '/')).toThrow(new RegExp(`^${variable} `));
    });

    it('reads the test hooks only with AIKB_TEST_HOOKS=1', () => {
      expect(loadConfig({ AIKB_TEST_BLOCK_UPLOAD_STEP: 'index' }, '/').testHooks).toBeUndefined();
      expect(loadConfig({ AIKB_TEST_HOOKS: '1', AIKB_TEST_BLOCK_UPLOAD_STEP: 'index' }, '/').testHooks).toEqual({
        blockUploadStep: 'index',
        failUploadStep: undefined,
      });
    });
  });
});
