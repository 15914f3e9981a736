import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config';

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
      });
    });

    it('reads HTTP_*_TIMEOUT_MS and HTTP_MAX_CONNECTIONS', () => {
      const env = {
        HTTP_HEADERS_TIMEOUT_MS: '2000',
        HTTP_REQUEST_TIMEOUT_MS: '4000',
        HTTP_KEEPALIVE_TIMEOUT_MS: '1000',
        HTTP_IDLE_TIMEOUT_MS: '8000',
        HTTP_MAX_CONNECTIONS: '50',
      };
      expect(loadConfig(env, '/').http).toEqual({
        headersTimeoutMs: 2000,
        requestTimeoutMs: 4000,
        keepAliveTimeoutMs: 1000,
        idleTimeoutMs: 8000,
        maxConnections: 50,
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
    [{ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' }, 'HTTP_HEADERS_TIMEOUT_MS', /not be greater than HTTP_REQUEST_TIMEOUT_MS/],
    [{ TRUST_PROXY: 'everyone' }, 'TRUST_PROXY', /must be false, true, a number of hops/],
  ])('rejects %j naming the variable', (env, variable, message) => {
    let error: unknown;
    try {
      loadConfig(env, '/');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message).toMatch(message);
    expect((error as ConfigError).message.startsWith(variable)).toBe(true);
  });

  it('reads AUTH_JWT_SECRET and refuses one shorter than 32 characters', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: 's'.repeat(32) }, '/').jwtSecret).toBe('s'.repeat(32));
    expect(() => loadConfig({ AUTH_JWT_SECRET: 'short' }, '/')).toThrow(/^AUTH_JWT_SECRET must be at least 32 characters$/);
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
