import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RequestHandler, Router } from 'express';
import type { Redis } from 'ioredis';
import {
  createArgon2Hasher,
  createConstantTimeAuthenticator,
  createLoginRateLimiter,
  createPostgresUserStore,
  createSessionVerifier,
  createTokenService,
  createUserDirectory,
  type ConstantTimeAuthenticator,
  type SessionVerifier,
  type TokenService,
  type UserDirectory,
} from '@aikb/core/auth';
import { adminGuard, loginHandler, requireUser, usersRouter } from '@aikb/express';
import { ConfigError } from '../config';
import type { ServerContext } from '../context';
import type { Subsystem } from '../lifecycle';

/** The flag that switches constant-time padding (wired by the flags subsystem). */
export const CONSTANT_TIME_FLAG = 'priority_1_3_constant_time_auth';
const FLOOR_MS = 500;
/**
 * Jitter drawn by the server: ±15 ms, not ±20, so that answers stay inside the runbook's
 * 480–520 ms window as a client measures them — the request's parsing and the response's trip add
 * a few milliseconds the server cannot pad away (measured: 2–6 ms with six concurrent logins).
 */
const JITTER_MS = 15;
/**
 * How long a user's state (exists, disabled, roles, token generation) is reused to check tokens:
 * the longest a user change takes to apply on an instance that missed the bus message.
 */
export const SESSION_CACHE_TTL_MS = 1000;
/** Seeded in embedded mode only, so the runbook's login commands work out of the box. */
export const SEED_USER = { email: 'test@example.com', password: 'test12345', roles: ['user'] } as const;

/** What the auth subsystem gives the app. */
export interface AuthSubsystem {
  /** The admin token in force (from ADMIN_TOKEN or generated in embedded mode); undefined: only admin-role user tokens open /api/admin. */
  readonly adminToken: string | undefined;
  readonly tokens: TokenService;
  /** Checks user tokens against the user's current state (revocation). */
  readonly sessions: SessionVerifier;
  readonly authenticator: ConstantTimeAuthenticator;
  readonly users: UserDirectory;
  /** `POST /auth/login`: it reads its own body (mount it before any global body parser, so every answer comes at the deadline). */
  readonly login: RequestHandler;
  /** Guards `/api/admin`. */
  readonly adminGuard: RequestHandler;
  /** Requires a user token (for `/api/documents`, `/api/search`). */
  readonly requireUser: RequestHandler;
  /** `/api/admin/users`. */
  readonly usersRouter: Router;
  /** Prints, once the server listens, what an operator must see once (a generated admin token). */
  announce(): void;
}

/** A secret read from `file`, or generated (32 random bytes, base64url) and written there with mode 0600. */
function storedSecret(file: string): { value: string; generated: boolean } {
  try {
    const value = readFileSync(file, 'utf8').trim();
    if (value.length >= 32) {
      chmodSync(file, 0o600);
      return { value, generated: false };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const value = randomBytes(32).toString('base64url');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { value, generated: true };
}

/** What the auth subsystem needs from those started before it. */
type BaseContext = Pick<ServerContext, 'config' | 'logger' | 'infra' | 'status' | 'meter' | 'flags' | 'bus'>;

function resolveAdminToken({ config, logger }: BaseContext): { token: string | undefined; notice?: string } {
  if (config.adminToken) return { token: config.adminToken };
  if (config.production) throw new ConfigError('ADMIN_TOKEN', 'is required when NODE_ENV=production (at least 16 characters)');
  if (config.databaseUrl) {
    logger.warn({}, 'ADMIN_TOKEN not set: /api/admin opens only to user tokens with the admin role');
    return { token: undefined };
  }
  const file = path.join(config.dataDir, 'admin-token');
  const secret = storedSecret(file);
  if (!secret.generated) {
    logger.info({ file }, `admin token: using the one stored in ${file}`);
    return { token: secret.value };
  }
  logger.info({ file }, `admin token generated and stored in ${file} (mode 0600)`);
  // Shown once, on the terminal only: never in the JSON logs.
  return { token: secret.value, notice: `aikb-server: generated an admin token (shown once; stored in ${file}, mode 0600):\n  ADMIN_TOKEN=${secret.value}\n` };
}

function resolveJwtSecret({ config, logger }: BaseContext): string {
  if (config.jwtSecret) return config.jwtSecret;
  if (config.production) throw new ConfigError('AUTH_JWT_SECRET', 'is required when NODE_ENV=production (at least 32 characters)');
  const file = path.join(config.dataDir, 'jwt-secret');
  if (config.databaseUrl)
    logger.warn({ file }, `AUTH_JWT_SECRET not set: using a secret stored in ${file}; set it so that every instance accepts the same tokens`);
  return storedSecret(file).value;
}

/**
 * A connection of the rate limiter's own, failing fast: its commands neither queue behind other
 * traffic nor wait out reconnections while Redis is down (the limiter then answers from
 * in-process limits within its 100 ms timeout). Closed with the shared connection.
 */
function rateLimitRedis(shared: Redis | undefined): Redis | undefined {
  if (!shared) return undefined;
  const redis = shared.duplicate({ commandTimeout: 100, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  // The shared connection reports outages; this one would only repeat them.
  redis.on('error', () => {});
  shared.once('end', () => redis.disconnect());
  return redis;
}

/**
 * Creates the auth subsystem: users in Postgres, argon2id, the constant-time authenticator
 * (500 ms ± 15 ms drawn, inside the runbook's 480–520 ms as clients see it), rate limits (Redis when configured), user tokens, the admin guard, a status
 * provider and metrics. In embedded mode it seeds the runbook's test user and generates the admin
 * token and the JWT secret under the data dir.
 *
 * @throws {ConfigError} with NODE_ENV=production and no ADMIN_TOKEN or AUTH_JWT_SECRET
 */
export async function createAuthSubsystem(ctx: BaseContext): Promise<AuthSubsystem> {
  const { config, infra } = ctx;
  const logger = ctx.logger.child({ subsystem: 'auth' });
  const { token: adminToken, notice } = resolveAdminToken(ctx);
  const tokens = createTokenService({ secret: resolveJwtSecret(ctx) });
  const hasher = createArgon2Hasher();
  await hasher.calibrate(3);
  const store = createPostgresUserStore({ pool: infra.db.pool, logger });
  // The flags subsystem's bus (it creates and closes it): a user change reaches every instance at once.
  const sessions = createSessionVerifier({ tokens, store, bus: ctx.bus, cacheTtlMs: SESSION_CACHE_TTL_MS, logger });
  const users = createUserDirectory({
    store,
    hasher,
    logger,
    async onChange(change) {
      logger.info(
        { audit: 'user', userId: change.userId, action: change.action, actor: change.actor, fields: change.fields },
        `user ${change.action}d by ${change.actor}`,
      );
      await sessions.invalidate(change.userId);
    },
  });
  const authenticator = createConstantTimeAuthenticator({
    store,
    hasher,
    floorMs: FLOOR_MS,
    jitterMs: JITTER_MS,
    // Read per attempt, so turning the flag off or on reaches every instance at once. Fails closed:
    // while the flag is unknown (store unreachable at start), logins stay constant-time.
    constantTime: () => ctx.flags.isEnabled(CONSTANT_TIME_FLAG, {}, true),
    rateLimiter: createLoginRateLimiter({ redis: rateLimitRedis(infra.redis), keyPrefix: 'aikb:login' }),
    logger,
    // aikb_auth_login_duration_seconds, aikb_auth_deadline_overruns_total, aikb_auth_admission_refusals_total
    meter: ctx.meter,
  });
  logger.info(
    {
      floorMs: FLOOR_MS,
      jitterMs: JITTER_MS,
      hasher: hasher.algorithm,
      verifyCostMs: Math.round(hasher.verifyCostMs),
      maxConcurrentHashes: authenticator.maxConcurrentHashes,
    },
    `constant-time auth enabled: floor ${FLOOR_MS} ms ± ${JITTER_MS} ms`,
  );

  if (!config.databaseUrl && !config.production && !(await store.findByEmail(SEED_USER.email))) {
    await users.add({ email: SEED_USER.email, password: SEED_USER.password, roles: [...SEED_USER.roles] });
    logger.info({}, `seeded the runbook's test user ${SEED_USER.email} (embedded mode only)`);
  }

  ctx.status.register('auth', () => ({
    constantTime: { enabled: ctx.flags.isEnabled(CONSTANT_TIME_FLAG, {}, true), flag: CONSTANT_TIME_FLAG },
    floorMs: FLOOR_MS,
    jitterMs: JITTER_MS,
    hasher: { algorithm: hasher.algorithm, parameters: hasher.parameters, verifyCostMs: Math.round(hasher.verifyCostMs * 10) / 10 },
    maxConcurrentHashes: authenticator.maxConcurrentHashes,
    rateLimits: infra.redis ? 'redis' : 'memory',
    adminToken: adminToken ? 'configured' : 'not set',
    sessions: { cacheTtlMs: SESSION_CACHE_TTL_MS, invalidation: ctx.bus.kind, ...sessions.stats() },
    ...authenticator.stats(),
  }));

  return {
    adminToken,
    tokens,
    sessions,
    authenticator,
    users,
    login: loginHandler({ authenticator, tokens }),
    adminGuard: adminGuard({ adminToken, sessions }),
    requireUser: requireUser({ sessions }),
    usersRouter: usersRouter({ users }),
    announce() {
      if (notice) process.stderr.write(notice);
    },
  };
}

/** The auth subsystem: provides `auth`. Nothing to close: it holds no connection of its own (the rate limiter's closes with Redis). */
export const authSubsystem: Subsystem<BaseContext, Pick<ServerContext, 'auth'>> = {
  name: 'auth',
  start: async (ctx) => ({ auth: await createAuthSubsystem(ctx) }),
};
