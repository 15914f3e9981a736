import { randomFillSync } from 'node:crypto';
import type * as Crypto from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof Crypto>();
  return { ...actual, randomFillSync: vi.fn(actual.randomFillSync) };
});

/** A fresh copy of the module: its random pool starts empty. */
const load = async () => {
  vi.resetModules();
  return import('./trace-context');
};

afterEach(() => {
  vi.mocked(randomFillSync).mockClear();
});

describe('generateTraceId and generateSpanId', () => {
  it('hand out valid ids, each random byte used once, across many refills of the pool', async () => {
    const { generateSpanId, generateTraceId, isValidSpanId, isValidTraceId } = await load();
    const traces = new Set<string>();
    const spans = new Set<string>();
    // 10 000 of each: 240 000 bytes, about 60 refills of the 4 KiB pool.
    for (let i = 0; i < 10_000; i++) {
      traces.add(generateTraceId());
      spans.add(generateSpanId());
    }
    expect(traces.size).toBe(10_000);
    expect(spans.size).toBe(10_000);
    expect([...traces].every(isValidTraceId)).toBe(true);
    expect([...spans].every(isValidSpanId)).toBe(true);
    // Drawn in blocks, not per id.
    expect(vi.mocked(randomFillSync).mock.calls.length).toBeLessThan(100);
  });

  it('never returns the all-zero (invalid) id: it draws again', async () => {
    const { generateTraceId, isValidTraceId } = await load();
    // The first block is all zeros; the next is real.
    vi.mocked(randomFillSync).mockImplementationOnce(((buffer: Buffer) => buffer.fill(0)) as typeof randomFillSync);
    const id = generateTraceId();
    expect(isValidTraceId(id)).toBe(true);
    expect(vi.mocked(randomFillSync).mock.calls.length).toBe(2);
  });
});
