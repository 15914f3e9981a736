import { systemClock, type Clock } from '../../src/clock';

/** A {@link Clock} whose time moves only when a test says so, with the global (fakeable) timers. */
export interface ManualClock extends Clock {
  /** Moves the clock `ms` forward; returns the new reading. */
  advance(ms: number): number;
}

/**
 * A clock reading `start` until {@link ManualClock.advance} moves it. Its timers are the global
 * ones, so a test that also fakes timers (`vi.useFakeTimers()`) drives them separately.
 */
export function createManualClock(start = 1_000_000): ManualClock {
  let now = start;
  return {
    now: () => now,
    setTimeout: systemClock.setTimeout,
    clearTimeout: systemClock.clearTimeout,
    advance: (ms) => (now += ms),
  };
}
