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

  it('serves feature flags from memory for CACHE_TTL_SECONDS (default 300, the runbook\'s 5 minutes)', () => {
    expect(loadConfig({}, '/').cacheTtlSeconds).toBe(300);
    expect(loadConfig({ CACHE_TTL_SECONDS: '30' }, '/').cacheTtlSeconds).toBe(30);
  });

  it('accepts the runbook\'s SUPABASE_POOL_SIZE as the pool size', () => {
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
});
