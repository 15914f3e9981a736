import { monotonicClock, type Clock } from '../clock';
import { withTimeout } from '../internal/timeout';
import { checkOptions } from '../options';
import type { Queryable } from './database';

/** The result of {@link checkDatabase}. */
export interface DatabaseCheck {
  readonly status: 'ok' | 'down';
  /** Round-trip time of `SELECT 1`, in milliseconds. */
  readonly latencyMs: number;
  /** Why the check failed. */
  readonly error?: string;
}

/** {@link checkDatabase} options. */
export interface CheckDatabaseOptions {
  /**
   * A check that has not answered after this many milliseconds counts as down.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * Measures `latencyMs` and sets the timeout's timer.
   * @default monotonicClock
   */
  clock?: Clock;
}

/**
 * Measures whether the database answers: runs `SELECT 1` and times it. Never throws on a database
 * failure; a check slower than `timeoutMs` counts as down (the query itself is left to the pool's
 * own timeouts).
 *
 * @throws {TypeError} naming the option when `timeoutMs` or `clock` is invalid
 */
export async function checkDatabase(pool: Queryable, options: CheckDatabaseOptions = {}): Promise<DatabaseCheck> {
  const check = checkOptions('checkDatabase', options, true);
  check.number('timeoutMs', { min: 0, exclusiveMin: true });
  check.clock();
  const { timeoutMs = 2000, clock = monotonicClock } = options;
  const started = clock.now();
  const elapsed = () => Math.round((clock.now() - started) * 100) / 100;
  try {
    await withTimeout(clock, pool.query('SELECT 1'), timeoutMs, `no answer within ${timeoutMs} ms`);
    return { status: 'ok', latencyMs: elapsed() };
  } catch (error) {
    return { status: 'down', latencyMs: elapsed(), error: (error as Error).message || (error as { code?: string }).code || 'unknown error' };
  }
}
