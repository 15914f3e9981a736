import type { FlagPropagation } from '@aikb/core';

/**
 * The HTTP shapes of flag state, in seconds as the runbook shows them (`cacheAge`,
 * `convergesWithinSeconds`); core reports milliseconds. Kept here so every route answers the same.
 */

/** The runbook's `cacheAge`: whole seconds since the load, and the TTL in seconds. */
export function cacheAgeBody(ageMs: number, ttlMs: number): { secondsSinceUpdate: number; ttl: number } {
  return { secondsSinceUpdate: Math.max(0, Math.floor(ageMs / 1000)), ttl: ttlMs / 1000 };
}

/** `propagation` as the admin API answers it: the convergence bound rounded up to whole seconds. */
export function propagationBody({ bus, status, convergesWithinMs }: FlagPropagation): {
  bus: string;
  status: FlagPropagation['status'];
  convergesWithinSeconds: number;
} {
  return { bus, status, convergesWithinSeconds: Math.ceil(convergesWithinMs / 1000) };
}
