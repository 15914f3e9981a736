import { systemClock, type Clock } from '../../src/clock';
import { settle } from './until';

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
    setTimeout: (callback, ms) => systemClock.setTimeout(callback, ms),
    clearTimeout: (handle) => systemClock.clearTimeout(handle),
    advance: (ms) => (now += ms),
  };
}

/** A {@link Clock} the test moves by hand. */
export interface FakeClock extends Clock {
  /** Moves time `ms` forward, running the timers that fall due in time order, synchronously. */
  advance(ms: number): number;
  /**
   * Moves time `ms` forward like {@link advance}, letting the work each timer starts
   * {@link settle} before the next one falls due (and before the first).
   */
  tick(ms: number): Promise<void>;
  /** How many timers are waiting. */
  pending(): number;
}

/** Creates a {@link FakeClock} that reads `start` until moved. */
export function createFakeClock(start = 0): FakeClock {
  let now = start;
  let next = 0;
  const queue = new Map<number, { at: number; callback: () => void }>();
  /** Runs the earliest timer due by `target`; false when there is none. */
  const runNext = (target: number) => {
    let due: [number, { at: number; callback: () => void }] | undefined;
    for (const entry of queue) if (entry[1].at <= target && (!due || entry[1].at < due[1].at)) due = entry;
    if (!due) return false;
    queue.delete(due[0]);
    now = due[1].at;
    due[1].callback();
    return true;
  };
  return {
    now: () => now,
    setTimeout: (callback, ms) => (queue.set(++next, { at: now + Math.max(0, ms), callback }), next),
    clearTimeout: (handle) => void queue.delete(handle as number),
    advance(ms) {
      const target = now + ms;
      while (runNext(target));
      return (now = target);
    },
    async tick(ms) {
      const target = now + ms;
      await settle();
      while (runNext(target)) await settle();
      now = target;
    },
    pending: () => queue.size,
  };
}
