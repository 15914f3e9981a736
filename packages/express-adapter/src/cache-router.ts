import { Router } from 'express';
import { ValidationError, type FeatureFlagClient } from '@aikb/core';
import { DEFAULT_JSON_BODY_LIMIT, jsonBody } from './json-body';
import { checkOptions } from '@aikb/core/options';
import { propagationBody } from './internal/flag-bodies';

/** {@link cacheRouter} options. */
export interface CacheRouterOptions {
  flags: FeatureFlagClient;
  /**
   * Largest body, in bytes, as received and once decoded.
   * @default 102400
   */
  maxBodyBytes?: number;
}

/**
 * `POST /invalidate` with `{ "keys": ["feature_flags:name", "feature_flags:*"] }` →
 * `{ invalidated: [...], propagation }`: the keys are reloaded here and, through the invalidation
 * bus, on every instance. While the bus is down, `propagation.status` is `degraded` (also the
 * `Aikb-Propagation` header): the other instances pick the change up by polling within
 * `propagation.convergesWithinSeconds`. Mount it at `/api/admin/cache` behind your admin guard.
 * It parses its own body by the package's one rule ({@link jsonBody}); no `express.json()` is
 * needed in front.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function cacheRouter(options: CacheRouterOptions): Router {
  const check = checkOptions('cacheRouter', options);
  check.object('flags', 'a FeatureFlagClient', true, ['invalidate', 'propagation']);
  check.number('maxBodyBytes', { min: 1, integer: true });
  const router = Router();
  router.post('/invalidate', jsonBody({ limit: options.maxBodyBytes ?? DEFAULT_JSON_BODY_LIMIT, required: true }), async (req, res) => {
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw new ValidationError('body', 'the body must be a JSON object like {"keys": ["feature_flags:*"]}');
    const unknown = Object.keys(body).find((key) => key !== 'keys');
    if (unknown !== undefined) throw new ValidationError(unknown, `unknown field "${unknown}": the body has only keys`);
    const invalidated = await options.flags.invalidate((body as { keys?: string[] }).keys as string[]);
    const propagation = options.flags.propagation();
    res.setHeader('Aikb-Propagation', propagation.status);
    res.json({ invalidated, propagation: propagationBody(propagation) });
  });
  return router;
}
