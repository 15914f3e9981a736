import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from './histogram';

describe('LatencyHistogram', () => {
  it('reports percentiles within 5% of the exact values', () => {
    const histogram = new LatencyHistogram();
    for (let i = 1; i <= 10_000; i++) histogram.record(i / 10);
    const { p50, p95, p99, max, count } = histogram.summary();
    expect(count).toBe(10_000);
    expect(p50 / 500).toBeGreaterThanOrEqual(1);
    expect(p50 / 500).toBeLessThan(1.05);
    expect(p95 / 950).toBeLessThan(1.05);
    expect(p99 / 990).toBeLessThan(1.05);
    expect(max).toBe(1000);
  });

  it('reports zeros when empty and ignores negative or NaN durations', () => {
    const histogram = new LatencyHistogram();
    histogram.record(-1);
    histogram.record(Number.NaN);
    expect(histogram.summary()).toEqual({ count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 });
  });
});
