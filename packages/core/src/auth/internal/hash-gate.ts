import type { Clock } from '../../clock';
import { AikbError } from '../../errors';

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  timer: unknown;
}

/** Timers the gate uses to give up on a queued attempt: the authenticator's clock. */
export type GateTimers = Clock;

/** The admission-control refusal: answered at the attempt's deadline like any other outcome. */
export function overloaded(): AikbError {
  return new AikbError('RESOURCE_EXHAUSTED', 'the server is busy verifying other logins; try again shortly', { details: { retryAfterSeconds: 1 } });
}

/** A place granted by {@link HashGate.admit}: held until {@link release}. */
export interface GateTicket {
  /**
   * Waits for a hashing slot. With a deadline, refuses (`RESOURCE_EXHAUSTED`) once a verify of
   * `costMs` could no longer end before it.
   */
  start(costMs: number): Promise<void>;
  /** Gives the place (or the slot) back. Idempotent. */
  release(): void;
}

/**
 * Bounded concurrency for password verification, with admission control decided once, up front:
 * {@link admit} runs before any other work of the attempt (rate limits, user lookup), so a refusal
 * costs nothing but a timer. Admitted attempts that have not started hashing yet are counted in the
 * prediction, so the bound holds while they do their lookups.
 *
 * An attempt that finds a slot free is always admitted, whatever the cost estimate: admission
 * control exists to keep the queue short, and an idle gate has none (so no estimate, however
 * wrong, can refuse an idle server's logins).
 */
export class HashGate {
  readonly #max: number;
  readonly #timers: GateTimers;
  #inFlight = 0;
  #reserved = 0;
  readonly #queue: Waiter[] = [];

  constructor(max: number, timers: GateTimers) {
    this.#max = max;
    this.#timers = timers;
  }

  /** Verifies running. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Attempts waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Attempts admitted that have not asked for a slot yet (still looking the user up). */
  get reserved(): number {
    return this.#reserved;
  }

  #ahead(): number {
    return this.#inFlight + this.#queue.length + this.#reserved;
  }

  /** When a verify asked for now would finish, given `costMs` per verify. */
  predictFinish(costMs: number): number {
    const ahead = this.#ahead();
    // Conservative: verifies in flight are assumed to have just started.
    const rounds = ahead < this.#max ? 0 : Math.floor((ahead - this.#max) / this.#max) + 1;
    return this.#timers.now() + (rounds + 1) * costMs;
  }

  /**
   * Admits an attempt, or throws `RESOURCE_EXHAUSTED` at once when no slot is free and its verify
   * (`costMs` each, behind everyone admitted before it) is predicted to end after `deadline`.
   * Synchronous, so nothing of a refused attempt ever waits on a store.
   */
  admit(costMs: number, deadline?: number): GateTicket {
    if (deadline !== undefined && this.#ahead() >= this.#max && this.predictFinish(costMs) > deadline) throw overloaded();
    this.#reserved++;
    let state: 'reserved' | 'waiting' | 'running' | 'done' = 'reserved';
    let waiter: Waiter | undefined;
    return {
      start: async (cost) => {
        if (state !== 'reserved') throw new TypeError('GateTicket: start() may be called once, before release()');
        this.#reserved--;
        state = 'waiting';
        if (this.#inFlight < this.#max && this.#queue.length === 0) {
          this.#inFlight++;
          state = 'running';
          return;
        }
        await new Promise<void>((resolve, reject) => {
          const entry: Waiter = { resolve, reject, timer: undefined };
          waiter = entry;
          if (deadline !== undefined) {
            entry.timer = this.#timers.setTimeout(
              () => {
                const index = this.#queue.indexOf(entry);
                if (index >= 0) this.#queue.splice(index, 1);
                state = 'done';
                reject(overloaded());
              },
              Math.max(0, deadline - cost - this.#timers.now()),
            );
          }
          this.#queue.push(entry);
        });
        state = 'running';
      },
      release: () => {
        const was = state;
        state = 'done';
        if (was === 'reserved') this.#reserved--;
        else if (was === 'waiting' && waiter) {
          const index = this.#queue.indexOf(waiter);
          if (index >= 0) this.#queue.splice(index, 1);
          if (waiter.timer !== undefined) this.#timers.clearTimeout(waiter.timer);
        } else if (was === 'running') this.#next();
      },
    };
  }

  #next(): void {
    const next = this.#queue.shift();
    if (next) {
      if (next.timer !== undefined) this.#timers.clearTimeout(next.timer);
      next.resolve(); // the slot passes straight to the next waiter
      return;
    }
    this.#inFlight--;
  }
}
