import type { Router } from 'express';
import { createInProcessInvalidationBus, createPostgresInvalidationBus, createRedisInvalidationBus, type InvalidationBus } from '@aikb/core/cache';
import { createFeatureFlagClient, createPostgresFlagStore, type FlagClientStats, type FlagDefinition } from '@aikb/core/flags';
import { cacheRouter, featureFlagsRouter, requestActor } from '@aikb/express';
import type { ServerContext } from '../context';
import type { Subsystem } from '../lifecycle';

/**
 * The flags this server gates, created at start-up when missing (enabled at 100%, as the
 * runbook's pre-deployment checklist asks). An existing flag is never overwritten.
 */
export const SEEDED_FLAGS: Readonly<Record<string, FlagDefinition>> = {
  priority_1_1_vector_validation: { enabled: true, rolloutPercentage: 100, description: 'Validates query vectors before search' },
  priority_1_3_constant_time_auth: { enabled: true, rolloutPercentage: 100, description: 'Prevents timing attacks on auth' },
  priority_2_1_saga_pattern: { enabled: true, rolloutPercentage: 100, description: 'Saga with compensation for document uploads' },
  priority_2_2_rbac_api_filtering: { enabled: true, rolloutPercentage: 100, description: 'Filters search results by role' },
};

/** The flags that gate new code, as a glob: what the emergency rollback sets to rollout 0. */
export const GATED_FLAGS = 'priority_*';

/** What the flags subsystem needs from those started before it. */
type FlagsNeeds = Pick<ServerContext, 'config' | 'logger' | 'infra' | 'status' | 'meter'>;

function createBus(ctx: FlagsNeeds): InvalidationBus {
  const { infra, logger } = ctx;
  // Redis when there is one; otherwise Postgres LISTEN/NOTIFY on a server database; embedded
  // PGlite is one process with one connection, so in-process is all there is to fan out to.
  if (infra.redis) return createRedisInvalidationBus({ redis: infra.redis, logger });
  if (infra.db.kind === 'postgres') return createPostgresInvalidationBus({ pool: infra.db.pool, logger });
  return createInProcessInvalidationBus({ logger });
}

/**
 * The `flags` member of the system status, in the shape it has always had (seconds, as the
 * runbook shows them): core's `stats()` reports milliseconds.
 */
function statusBody({ flags, cache, evaluations, bus, stale, propagation, polling, lastRefresh, lastRefreshError }: FlagClientStats) {
  return {
    flags,
    cache: { secondsSinceUpdate: Math.floor(cache.ageMs / 1000), ttl: cache.ttlMs / 1000, size: cache.size, staleEntries: cache.staleEntries },
    bus,
    stale,
    propagation: { bus: propagation.bus, status: propagation.status, convergesWithinSeconds: Math.ceil(propagation.convergesWithinMs / 1000) },
    polling,
    lastRefresh,
    lastRefreshError,
    stats: { evaluations, cache: { hits: cache.hits, misses: cache.misses } },
  };
}

/**
 * Starts feature flags on the server database: Postgres store, invalidation bus, seeding, status
 * (`flags` in the system status) and metrics (through `ctx.meter`). With the database still down, it starts
 * empty (every flag gives its default) and loads and seeds once migrations have run.
 */
async function startFlags(ctx: FlagsNeeds): Promise<Pick<ServerContext, 'flags' | 'bus'>> {
  const { config, infra, logger } = ctx;
  const bus = createBus(ctx);
  const client = createFeatureFlagClient({
    store: createPostgresFlagStore({ pool: infra.db.pool, logger }),
    bus,
    cacheTtlMs: config.cacheTtlSeconds * 1000,
    logger,
    meter: ctx.meter,
  });
  ctx.status.register('flags', () => statusBody(client.stats()));

  const seeded = infra.migrated
    .then(async () => {
      for (const [name, definition] of Object.entries(SEEDED_FLAGS)) await client.ensureFlag(name, definition);
      await client.start();
      logger.info({ bus: bus.kind, ttlSeconds: config.cacheTtlSeconds }, `feature flags: ${client.stats().flags} loaded, invalidation over ${bus.kind}`);
    })
    .catch((error: unknown) => logger.error({ err: error }, `feature flags: could not seed or load (${(error as Error).message})`));
  // Migrated already (embedded, or a server database that was up): serve with every flag loaded.
  if (infra.vector() !== undefined) await seeded;

  return { flags: client, bus };
}

/** The flags subsystem: provides `flags` and the `bus` (which it creates, so it closes it, after the client). */
export const flagsSubsystem: Subsystem<FlagsNeeds, Pick<ServerContext, 'flags' | 'bus'>> = {
  name: 'flags',
  start: startFlags,
  async close({ flags, bus }) {
    await flags.close();
    await bus.close();
  },
};

/**
 * The admin routes by mount path, `/feature-flags` and `/cache` (`/cache/invalidate`), for the
 * guarded `/api/admin` router: mounted there each under its path, not inside a router of their
 * own that every admin request would walk into.
 */
export function flagAdminRoutes(ctx: Pick<ServerContext, 'flags'>): ReadonlyArray<readonly [string, Router]> {
  // The flag history records who acted: the user id of a user token, `admin-token` for ADMIN_TOKEN.
  // The emergency rollback (`POST /feature-flags/_rollback`, `aikb rollback`) sets every gated
  // flag to rollout 0: those named `priority_*`, as the seeded ones are.
  return [
    ['/feature-flags', featureFlagsRouter({ flags: ctx.flags, actor: requestActor, rollbackFlags: GATED_FLAGS })],
    ['/cache', cacheRouter({ flags: ctx.flags })],
  ];
}
