import type { Clock } from '../clock';

/**
 * Settles as `work` does, or rejects with `Error(message)` once `ms` milliseconds of `clock` have
 * passed first. The timer is cleared either way; `work` itself is not cancelled.
 */
export async function withTimeout<T>(clock: Clock, work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: unknown;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = clock.setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer);
  }
}
