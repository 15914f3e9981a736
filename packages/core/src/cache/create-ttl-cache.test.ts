import { createManualClock } from '@aikb/test-support';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../clock';
import { createTtlCache } from './index';

describe('TtlCache', () => {
  it('serves an entry as fresh until its TTL passes, then keeps it as a stale fallback', () => {
    const time = createManualClock();
    const cache = createTtlCache<string>({ ttlMs: 300_000, clock: time });
    cache.set('feature_flags:a', 'on');
    time.advance(299_999);
    expect(cache.isFresh(cache.peek('feature_flags:a')!)).toBe(true);
    time.advance(1);
    const entry = cache.peek('feature_flags:a');
    expect(entry?.value).toBe('on');
    expect(cache.isFresh(entry!)).toBe(false);
  });

  it('invalidates by exact key and by glob, keeping invalidated values as fallbacks', () => {
    const cache = createTtlCache<number>({ clock: createManualClock() });
    for (const key of ['feature_flags:priority_2_1', 'feature_flags:priority_2_2', 'feature_flags:priority_1_3', 'other:x']) cache.set(key, 1);
    expect(cache.invalidate('feature_flags:priority_2_*').sort()).toEqual(['feature_flags:priority_2_1', 'feature_flags:priority_2_2']);
    expect(cache.isFresh(cache.peek('feature_flags:priority_1_3')!)).toBe(true);
    expect(cache.isFresh(cache.peek('feature_flags:priority_2_1')!)).toBe(false);
    expect(cache.peek('feature_flags:priority_2_1')?.value).toBe(1);
    expect(cache.invalidate('feature_flags:priority_1_3')).toEqual(['feature_flags:priority_1_3']);
    expect(cache.invalidate('feature_flags:*').sort()).toHaveLength(3);
    expect(cache.invalidate('feature_flags:nothing')).toEqual([]);
    expect(cache.isFresh(cache.peek('other:x')!)).toBe(true);
  });

  it('treats glob metacharacters other than * and ? literally', () => {
    const cache = createTtlCache<number>();
    cache.set('feature_flags:a.b', 1);
    cache.set('feature_flags:aXb', 1);
    expect(cache.invalidate('feature_flags:a.b')).toEqual(['feature_flags:a.b']);
    expect(cache.invalidate('feature_flags:a?b').sort()).toEqual(['feature_flags:a.b', 'feature_flags:aXb']);
  });

  it('reports ages per key and overall (the oldest entry) with the TTL, as plain JSON', () => {
    const time = createManualClock();
    const cache = createTtlCache<number>({ ttlMs: 60_000, clock: time });
    cache.set('a', 1);
    time.advance(45_000);
    cache.set('b', 2);
    time.advance(20_500);
    const stats = cache.stats();
    expect(stats).toEqual({ ageMs: 65_500, ttlMs: 60_000, size: 2, stale: 1, keys: { a: { ageMs: 65_500, stale: true }, b: { ageMs: 20_500, stale: false } } });
    expect(JSON.parse(JSON.stringify(stats))).toEqual(stats);
  });

  it('evicts the least recently used entry beyond maxEntries, telling onEvict', () => {
    const evicted: string[] = [];
    const cache = createTtlCache<number>({ maxEntries: 2, onEvict: (key) => evicted.push(key) });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.peek('a');
    cache.set('c', 3);
    expect(cache.keys().sort()).toEqual(['a', 'c']);
    expect(evicted).toEqual(['b']);
    cache.set('a', 4);
    cache.delete('c');
    expect(evicted).toEqual(['b']);
  });

  it.each([
    [{ ttlMs: 0 }, /^createTtlCache: ttlMs must be a number > 0 \(got 0\)$/],
    [{ ttlMs: Number.NaN }, /ttlMs must be a number > 0/],
    [{ maxEntries: 1.5 }, /maxEntries must be a whole number ≥ 1/],
    [{ clock: 5 as unknown as Clock }, /clock must be a Clock/],
    [{ clock: { now: () => 0 } as unknown as Clock }, /clock must be a Clock \(with a setTimeout\(\) method\)/],
  ])('rejects %j naming the option', (options, message) => {
    expect(() => createTtlCache(options)).toThrow(message);
  });
});
