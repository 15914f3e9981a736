/** What {@link AdmissionCost} reads the time and the calibrated cost from. */
export interface AdmissionCostOptions {
  /** The calibrated (or declared) cost of one verify, in milliseconds: read at every use. */
  baseline: () => number;
  /** Milliseconds, monotonic (the authenticator's injected clock). */
  now: () => number;
  /** The estimate never leaves `[baseline / ceilingFactor, baseline × ceilingFactor]`. */
  ceilingFactor?: number;
  /** Without new samples, the distance to the baseline halves every `halfLifeMs`. */
  halfLifeMs?: number;
  /** Weight of a new sample in the running average. */
  weight?: number;
}

/**
 * The verify cost admission control predicts with: a running average of measured verify times,
 * bounded by the calibrated cost and drawn back to it with time.
 *
 * Why bounded: a measured verify includes whatever delayed its completion on this machine (an
 * event loop stalled by a flood, CPU taken by other processes). Left unbounded, a burst drove the
 * average so high that admission refused every attempt before any verify ran, so no new sample
 * could ever bring it down (issue 8). Clamping to a small multiple of the calibrated cost, and
 * decaying towards it when no samples arrive, makes that state impossible to stay in.
 */
export class AdmissionCost {
  readonly #baseline: () => number;
  readonly #now: () => number;
  readonly #factor: number;
  readonly #halfLifeMs: number;
  readonly #weight: number;
  #average: number | undefined;
  #at = 0;

  constructor(options: AdmissionCostOptions) {
    this.#baseline = options.baseline;
    this.#now = options.now;
    this.#factor = options.ceilingFactor ?? 2;
    this.#halfLifeMs = options.halfLifeMs ?? 5000;
    this.#weight = options.weight ?? 0.1;
  }

  #clamp(ms: number, base: number): number {
    return Math.min(base * this.#factor, Math.max(base / this.#factor, ms));
  }

  /** The cost to predict with now, in milliseconds. */
  get value(): number {
    const base = this.#baseline();
    if (this.#average === undefined) return base;
    const elapsed = Math.max(0, this.#now() - this.#at);
    return this.#clamp(base + (this.#average - base) * 0.5 ** (elapsed / this.#halfLifeMs), base);
  }

  /** Adds one measured verify, in milliseconds. */
  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const current = this.value;
    this.#average = current + (this.#clamp(ms, this.#baseline()) - current) * this.#weight;
    this.#at = this.#now();
  }
}

/** Runs `verify` `samples` times and returns the median wall time, in milliseconds. */
export async function measureMedian(samples: number, verify: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < Math.max(1, samples); i++) {
    const start = performance.now();
    await verify();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
