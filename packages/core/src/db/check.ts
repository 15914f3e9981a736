import type { Queryable } from './database';

/** The result of {@link checkDatabase}. */
export interface DatabaseCheck {
  readonly status: 'ok' | 'down';
  /** Round-trip time of `SELECT 1`, in milliseconds. */
  readonly latencyMs: number;
  /** Why the check failed. */
  readonly error?: string;
}

/**
 * Measures whether the database answers: runs `SELECT 1` and times it. Never throws; a check
 * slower than `timeoutMs` counts as down (the query itself is left to the pool's own timeouts).
 */
export async function checkDatabase(pool: Queryable, { timeoutMs = 2000 }: { timeoutMs?: number } = {}): Promise<DatabaseCheck> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pool.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: 'ok', latencyMs: Math.round((performance.now() - started) * 100) / 100 };
  } catch (error) {
    return {
      status: 'down',
      latencyMs: Math.round((performance.now() - started) * 100) / 100,
      error: (error as Error).message || (error as { code?: string }).code || 'unknown error',
    };
  } finally {
    clearTimeout(timer);
  }
}
