import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { murmur3x86_32 } from './internal/murmur3';
import { rolloutBucket } from './index';

const require = createRequire(import.meta.url);
// unleash-client's own gradual-rollout normalisation, loaded from its published build.
const unleash = require('unleash-client/lib/strategy/util') as { normalizedStrategyValue(id: string, groupId: string): number };
// The murmur3 implementation unleash-client itself depends on.
const murmurhash3js = require(require.resolve('murmurhash3js', { paths: [require.resolve('unleash-client')] })) as {
  x86: { hash32(key: string, seed: number): number };
};

describe('murmur3x86_32', () => {
  it.each([
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['test', 0, 0xba6bd213],
    ['abc', 0, 0xb3dd93fa],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['Hello, world!', 0, 0xc0363e43],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
    ['ππππππππ', 0x9747b28c, 0xd58063c1],
  ])('hashes %j with seed %i to the reference value', (key, seed, expected) => {
    expect(murmur3x86_32(key, seed)).toBe(expected);
  });

  it('agrees with the murmurhash3js package on ASCII keys of every tail length', () => {
    for (let length = 0; length < 40; length++) {
      const key = 'flag_name:user-'.repeat(3).slice(0, length);
      expect(murmur3x86_32(key)).toBe(murmurhash3js.x86.hash32(key, 0));
    }
  });
});

describe('rolloutBucket', () => {
  const pairs: Array<[string, string, number]> = [
    ['priority_2_1_saga_pattern', 'user-1', 37],
    ['priority_2_1_saga_pattern', 'user-42', 77],
    ['priority_1_3_constant_time_auth', 'test-user', 94],
    ['beta', 'alice', 96],
    ['beta', 'bob', 85],
  ];

  it.each(pairs)('puts (%s, %s) in bucket %i, as unleash-client does', (name, userId, bucket) => {
    expect(rolloutBucket(name, userId)).toBe(bucket);
    expect(unleash.normalizedStrategyValue(userId, name)).toBe(bucket);
  });

  it('matches unleash-client for a thousand generated users', () => {
    for (let i = 0; i < 1000; i++) {
      const userId = `user-${i * 7919}`;
      expect(rolloutBucket('priority_2_2_rbac_api_filtering', userId)).toBe(unleash.normalizedStrategyValue(userId, 'priority_2_2_rbac_api_filtering'));
    }
  });

  it('spreads users evenly over 1..100', () => {
    const counts = new Array<number>(101).fill(0);
    for (let i = 0; i < 100_000; i++) counts[rolloutBucket('spread', `u${i}`)]!++;
    expect(counts[0]).toBe(0);
    for (let b = 1; b <= 100; b++) expect(counts[b]).toBeGreaterThan(800);
  });
});

describe('bucketsFor', () => {
  it('equals rolloutBucket for every flag-name and user-id length, ASCII or not', async () => {
    const { bucketsFor } = await import('./bucket');
    const users = ['', 'a', 'ab', 'abc', 'abcd', 'user-12345', 'ünïcödé', '用户', 'x'.repeat(37)];
    for (let length = 1; length < 12; length++) {
      const name = 'flag_name_x'.slice(0, length);
      const bucket = bucketsFor(name);
      for (const user of users) expect(bucket(user)).toBe(rolloutBucket(name, user));
    }
  });
});
