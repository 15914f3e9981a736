import { describe, expect, it } from 'vitest';
import { createFakeClock } from '@aikb/test-support';
import { createTtlCache } from './index';

const fakeClock = (start = 1_000_000) => createFakeClock(start);

describe('TtlCache', () => {
  it('serves an entry as fresh until its TTL passes, then keeps it as a stale fallback', () => {
    const time = fakeClock();
    const cache = createTtlCache<string>({ ttlSeconds: 300, clock: time.now });
    cache.set('feature_flags:a', 'on');
    time.advance(299_999);
    expect(cache.isFresh(cache.peek('feature_flags:a')!)).toBe(true);
    time.advance(1);
    const entry = cache.peek('feature_flags:a');
    expect(entry?.value).toBe('on');
    expect(cache.isFresh(entry!)).toBe(false);
  });

  it('invalidates by exact key and by glob, keeping invalidated values as fallbacks', () => {
    const cache = createTtlCache<number>({ clock: fakeClock().now });
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

  it('reports ages per key and overall (the oldest entry) with the TTL', () => {
    const time = fakeClock();
    const cache = createTtlCache<number>({ ttlSeconds: 60, clock: time.now });
    cache.set('a', 1);
    time.advance(45_000);
    cache.set('b', 2);
    time.advance(20_500);
    const info = cache.info();
    expect(info).toMatchObject({ secondsSinceUpdate: 65, ttl: 60, size: 2, stale: 1 });
    expect(info.keys).toEqual({ a: { secondsSinceUpdate: 65, ttl: 60, stale: true }, b: { secondsSinceUpdate: 20, ttl: 60, stale: false } });
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
    [{ ttlSeconds: 0 }, /ttlSeconds must be a positive number/],
    [{ ttlSeconds: Number.NaN }, /ttlSeconds must be a positive number/],
    [{ maxEntries: 1.5 }, /maxEntries must be a positive integer/],
    [{ clock: 5 as unknown as () => number }, /clock must be a function/],
  ])('rejects %j naming the option', (options, message) => {
    expect(() => createTtlCache(options)).toThrow(message);
  });
});
