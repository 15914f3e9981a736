/** A running average of measured durations, starting from a declared estimate. */
export class CostEstimate {
  #value: number;
  readonly #weight: number;

  constructor(initialMs: number, weight = 0.1) {
    this.#value = initialMs;
    this.#weight = weight;
  }

  get value(): number {
    return this.#value;
  }

  record(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.#value += (ms - this.#value) * this.#weight;
  }

  set(ms: number): void {
    if (Number.isFinite(ms) && ms > 0) this.#value = ms;
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
