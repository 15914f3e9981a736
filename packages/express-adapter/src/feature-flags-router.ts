import { Router, type Request, type Response } from 'express';
import { NotFoundError, ValidationError, type FeatureFlagClient, type Flag, type FlagDefinition, type FlagPatch } from '@aikb/core';
import { cacheAgeBody, propagationBody } from './internal/flag-bodies';
import { DEFAULT_JSON_BODY_LIMIT, jsonBody } from './json-body';
import { checkOptions } from '@aikb/core/options';

/** {@link featureFlagsRouter} options. */
export interface FeatureFlagsRouterOptions {
  flags: FeatureFlagClient;
  /**
   * Who the audit trail records for a change made through this request.
   * @default () => 'admin'
   */
  actor?: (req: Request) => string;
  /**
   * Largest body of a `POST` or `PUT`, in bytes, as received and once decoded.
   * @default 102400
   */
  maxBodyBytes?: number;
  /**
   * The flags `POST /_rollback` sets to rollout 0: a flag name or a glob (`*` any run of
   * characters, `?` one), e.g. `priority_*` for the flags gating new code.
   * @default '*' (every flag)
   */
  rollbackFlags?: string;
}

/** What the audit trail's `actor` of a change made by `POST /_rollback` starts with, before the acting user. */
export const ROLLBACK_ACTOR_PREFIX = 'rollback:';

function present(flag: Flag) {
  const { name, enabled, rolloutPercentage, description, lastUpdated, version } = flag;
  return { name, enabled, rolloutPercentage, description, lastUpdated, version };
}

function name(req: Request): string {
  return String(req.params.name);
}

async function notFound(flags: FeatureFlagClient, flagName: string): Promise<NotFoundError> {
  return NotFoundError.named(
    'flag',
    flagName,
    (await flags.listFlags()).map((f) => f.name),
  );
}

/**
 * A write's answer: the flag, and how the change reaches the other instances
 * (`FeatureFlagClient.propagation()`), also as the `Aikb-Propagation` header.
 */
function written(res: Response, flags: FeatureFlagClient, flag: Flag, status = 200): void {
  const propagation = flags.propagation();
  res.setHeader('Aikb-Propagation', propagation.status);
  res.status(status).json({ ...present(flag), propagation: propagationBody(propagation) });
}

/**
 * The runbook's feature-flag admin API, to mount at `/api/admin/feature-flags` behind your admin
 * guard: list (`?include=cache-info`), read, update (`POST`, strict), create or replace (`PUT`),
 * per-user status with the bucket, the audit history, and the emergency rollback (`POST /_rollback`:
 * every flag matching `rollbackFlags` to rollout 0 in one call, recorded in each flag's history with
 * the actor `rollback:<actor>`, answered with `{ pattern, rolledBack: [{ name,
 * previousRolloutPercentage, rolloutPercentage, version, lastUpdated }], actor, propagation }`).
 * `POST` and `PUT` parse their own body by
 * the package's one rule ({@link jsonBody}: JSON, or curl's form-urlencoded label for `-d` as in
 * the runbook's commands; else 415; over `maxBodyBytes` 413; missing or malformed 400): no
 * `express.json()` is needed in front. Every error is a problem+json naming the field.
 *
 * A successful write (`POST`, `PUT`) is durable in the store, whatever the invalidation bus is
 * doing. Its answer is the flag plus a `propagation` member, also sent as the `Aikb-Propagation`
 * header (`ok`, `degraded` or `none`):
 * ```json
 * { "name": "...", "enabled": false, ..., "propagation": { "bus": "redis", "status": "degraded", "convergesWithinSeconds": 2 } }
 * ```
 * `degraded` means the bus is down or the publish failed: other instances do not get the change at
 * once but by polling the store (and the publish is retried), within `convergesWithinSeconds`.
 * `none`: there is no bus, other instances see the change when their cached copy expires.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function featureFlagsRouter(options: FeatureFlagsRouterOptions): Router {
  const check = checkOptions('featureFlagsRouter', options);
  check.object('flags', 'a FeatureFlagClient', true, ['evaluate', 'getFlag', 'listFlags', 'putFlag', 'updateFlag']);
  check.function('actor');
  check.number('maxBodyBytes', { min: 1, integer: true });
  check.string('rollbackFlags');
  const { flags, rollbackFlags = '*' } = options;
  const actor = options.actor ?? (() => 'admin');
  const body = jsonBody({ limit: options.maxBodyBytes ?? DEFAULT_JSON_BODY_LIMIT, required: true });
  const router = Router();

  router.get('/', async (req, res) => {
    const include = req.query.include;
    if (include !== undefined && include !== 'cache-info') throw new ValidationError('include', 'include accepts only "cache-info"');
    const list = (await flags.listFlags()).map(present);
    if (include !== 'cache-info') {
      res.json({ flags: list });
      return;
    }
    const { cache } = flags.stats();
    const cacheAge = (entry: { ageMs: number; stale: boolean } | undefined) =>
      entry ? { ...cacheAgeBody(entry.ageMs, cache.ttlMs), stale: entry.stale } : null;
    res.json({
      flags: list.map((flag) => ({ ...flag, cacheAge: cacheAge(Object.hasOwn(cache.flags, flag.name) ? cache.flags[flag.name] : undefined) })),
      cacheAge: cacheAgeBody(cache.ageMs, cache.ttlMs),
    });
  });

  // A flag name cannot start with "_", so this path never shadows a flag's.
  router.post('/_rollback', async (req, res) => {
    const changes = await flags.updateFlags(rollbackFlags, { rolloutPercentage: 0 }, { actor: `${ROLLBACK_ACTOR_PREFIX}${actor(req)}` });
    const propagation = flags.propagation();
    res.setHeader('Aikb-Propagation', propagation.status);
    res.json({
      pattern: rollbackFlags,
      rolledBack: changes.map((change) => ({
        name: change.name,
        previousRolloutPercentage: change.before?.rolloutPercentage ?? null,
        rolloutPercentage: change.after.rolloutPercentage,
        version: change.version,
        lastUpdated: change.at,
      })),
      actor: changes[0]?.actor ?? `${ROLLBACK_ACTOR_PREFIX}${actor(req)}`,
      propagation: propagationBody(propagation),
    });
  });

  router.get('/:name', async (req, res) => {
    const flag = await flags.getFlag(name(req));
    if (!flag) throw await notFound(flags, name(req));
    res.json(present(flag));
  });

  router.post('/:name', body, async (req, res) => {
    written(res, flags, await flags.updateFlag(name(req), req.body as FlagPatch, { actor: actor(req) }));
  });

  router.put('/:name', body, async (req, res) => {
    const { flag, created } = await flags.putFlag(name(req), req.body as FlagDefinition, { actor: actor(req) });
    written(res, flags, flag, created ? 201 : 200);
  });

  router.get('/:name/status', async (req, res) => {
    const userId = req.query.userId;
    if (userId !== undefined && (typeof userId !== 'string' || userId.length === 0))
      throw new ValidationError('userId', 'userId must be a single non-empty value');
    const context = userId === undefined ? {} : { userId };
    // What this instance serves now, from its cache: the point of the check is to see whether a
    // change has reached it. Only a flag it does not hold yet is read from the store.
    let decision = flags.evaluate(name(req), context);
    if (decision.reason === 'DEFAULT') {
      if (!(await flags.getFlag(name(req)))) throw await notFound(flags, name(req));
      decision = flags.evaluate(name(req), context);
    }
    res.json({
      name: decision.name,
      userId: userId ?? null,
      enabled: decision.value,
      bucket: decision.bucket ?? null,
      rolloutPercentage: decision.rolloutPercentage ?? null,
      reason: decision.reason,
      cacheAgeSeconds: Math.floor((decision.cacheAgeMs ?? 0) / 1000),
      stale: decision.stale,
      version: decision.version ?? null,
    });
  });

  router.get('/:name/history', async (req, res) => {
    const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
    const history = await flags.history(name(req), limit === undefined ? {} : { limit });
    if (history.length === 0 && !(await flags.getFlag(name(req)))) throw await notFound(flags, name(req));
    res.json({ name: name(req), history });
  });

  return router;
}
