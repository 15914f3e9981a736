import { AikbError } from '../../errors';

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  timer: unknown;
}

/** Timers the gate uses to give up on a queued attempt. */
export interface GateTimers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The admission-control refusal: answered at the attempt's deadline like any other outcome. */
export function overloaded(): AikbError {
  return new AikbError('RESOURCE_EXHAUSTED', 'the server is busy verifying other logins; try again shortly', { details: { retryAfterSeconds: 1 } });
}

/**
 * Bounded concurrency for password verification, with admission control: an attempt whose
 * predicted finish (queue position × verify cost) falls after its deadline is refused at once,
 * and one still queued when it can no longer finish in time is taken out of the queue.
 */
export class HashGate {
  readonly #max: number;
  readonly #timers: GateTimers;
  #inFlight = 0;
  readonly #queue: Waiter[] = [];

  constructor(max: number, timers: GateTimers) {
    this.#max = max;
    this.#timers = timers;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** When a verify asked for now would finish, given `costMs` per verify. */
  predictFinish(costMs: number): number {
    const ahead = this.#inFlight + this.#queue.length;
    // Conservative: verifies in flight are assumed to have just started.
    const rounds = ahead < this.#max ? 0 : Math.floor((ahead - this.#max) / this.#max) + 1;
    return this.#timers.now() + (rounds + 1) * costMs;
  }

  /**
   * Takes a slot. With `deadline`, refuses (`RESOURCE_EXHAUSTED`) when the verify would end after
   * it, now or while waiting in the queue.
   */
  async acquire(costMs: number, deadline?: number): Promise<void> {
    if (deadline !== undefined && this.predictFinish(costMs) > deadline) throw overloaded();
    if (this.#inFlight < this.#max && this.#queue.length === 0) {
      this.#inFlight++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined };
      if (deadline !== undefined) {
        waiter.timer = this.#timers.setTimeout(
          () => {
            const index = this.#queue.indexOf(waiter);
            if (index >= 0) this.#queue.splice(index, 1);
            reject(overloaded());
          },
          Math.max(0, deadline - costMs - this.#timers.now()),
        );
      }
      this.#queue.push(waiter);
    });
  }

  release(): void {
    const next = this.#queue.shift();
    if (next) {
      if (next.timer !== undefined) this.#timers.clearTimeout(next.timer);
      next.resolve(); // the slot passes straight to the next waiter
      return;
    }
    this.#inFlight--;
  }
}
