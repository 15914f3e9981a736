/**
 * The one clock every aikb primitive that reads time or sets timers takes as its `clock` option,
 * so tests drive deadlines, TTLs and windows with fake time (`vi.useFakeTimers()` fakes
 * {@link systemClock} too).
 */
export interface Clock {
  /** Milliseconds. Durations are differences of two readings. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock: `Date.now()` (epoch milliseconds, so a reading can be stored or compared with
 * another process's) and the global timers. A primitive that keeps a background timer unrefs it
 * itself ({@link unrefTimer}), so the clock's timers behave like the global ones.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A monotonic clock: `performance.now()` (milliseconds since the process started; never jumps
 * when the system time is set) and the global timers. The default of primitives that measure
 * durations and deadlines within one process (the login authenticator, the pool monitor, health
 * checks). Its readings mean nothing to another process: do not store them.
 */
export const monotonicClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Lets the process exit while the timer `handle` (from any {@link Clock}) is pending, when it can. */
export function unrefTimer(handle: unknown): void {
  (handle as { unref?: () => void } | null)?.unref?.();
}
