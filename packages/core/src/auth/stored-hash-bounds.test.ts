import type * as Crypto from 'node:crypto';
import type * as Argon2 from '@node-rs/argon2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createArgon2Hasher } from './argon2-hasher';
import { createScryptHasher } from './scrypt-hasher';

/**
 * A stored hash carries its own cost parameters. These tests record what the hashers hand to the
 * key derivation, and refuse to run a costly one (the old code would have allocated gigabytes),
 * so an absurd stored hash shows up as a recorded call instead of an exhausted machine.
 */
const derived = vi.hoisted(() => ({ scrypt: [] as Array<{ N: number; r: number; p: number; keyLength: number }>, argon2: [] as string[] }));

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof Crypto>();
  const scrypt = (
    password: string | Buffer,
    salt: Buffer,
    keyLength: number,
    options: { N: number; r: number; p: number },
    callback: (error: Error | null, key: Buffer) => void,
  ) => {
    derived.scrypt.push({ N: options.N, r: options.r, p: options.p, keyLength });
    if (options.N * options.r * options.p > 2 ** 17 * 8) return callback(new Error('test refuses a costly derivation'), Buffer.alloc(0));
    return actual.scrypt(password, salt, keyLength, options, callback);
  };
  return { ...actual, scrypt };
});

vi.mock('@node-rs/argon2', async (importOriginal) => {
  const actual = await importOriginal<typeof Argon2>();
  const verify = async (encoded: string, password: string) => {
    derived.argon2.push(encoded);
    const m = Number(/m=(\d+)/.exec(encoded)?.[1] ?? 0);
    const t = Number(/t=(\d+)/.exec(encoded)?.[1] ?? 0);
    if (m > 65536 || t > 10) throw new Error('test refuses a costly derivation');
    return actual.verify(encoded, password);
  };
  return { ...actual, verify };
});

afterEach(() => {
  derived.scrypt.length = 0;
  derived.argon2.length = 0;
});

describe('createScryptHasher with a stored hash it did not make', () => {
  const hasher = createScryptHasher({ logN: 12 });
  const salt = Buffer.alloc(16, 7).toString('base64').replace(/=+$/, '');
  const key = Buffer.alloc(32, 9).toString('base64').replace(/=+$/, '');

  it.each([
    ['a huge N', `$scrypt$ln=22,r=8,p=1$${salt}$${key}`],
    ['a huge r and p', `$scrypt$ln=17,r=32,p=16$${salt}$${key}`],
    ['a 16-byte key', `$scrypt$ln=12,r=8,p=1$${salt}$${key.slice(0, 22)}`],
  ])('answers false for %s and derives only at its own parameters', async (_what, stored) => {
    expect(await hasher.verify(stored, 'pw')).toBe(false);
    expect(derived.scrypt).toEqual([{ N: 2 ** 12, r: 8, p: 1, keyLength: 32 }]);
  });

  it('still verifies a hash made with weaker parameters at their cost', async () => {
    const weaker = await createScryptHasher({ logN: 10 }).hash('pw');
    derived.scrypt.length = 0;
    expect(await hasher.verify(weaker, 'pw')).toBe(true);
    expect(derived.scrypt).toEqual([{ N: 2 ** 10, r: 8, p: 1, keyLength: 32 }]);
  });
});

describe('createArgon2Hasher with a stored hash it did not make', () => {
  const hasher = createArgon2Hasher({ memoryCost: 2048, timeCost: 2 });
  const salt = Buffer.alloc(16, 7).toString('base64').replace(/=+$/, '');
  const key = Buffer.alloc(32, 9).toString('base64').replace(/=+$/, '');

  it.each([
    ['4 GiB of memory', `$argon2id$v=19$m=4194304,t=2,p=1$${salt}$${key}`],
    ['a thousand passes', `$argon2id$v=19$m=65536,t=1000,p=1$${salt}$${key}`],
    ['a 4-byte hash', `$argon2id$v=19$m=2048,t=2,p=1$${salt}$${key.slice(0, 6)}`],
    ['a 4-byte salt', `$argon2id$v=19$m=2048,t=2,p=1$${salt.slice(0, 6)}$${key}`],
  ])('answers false for %s and never hands it to argon2', async (_what, stored) => {
    expect(await hasher.verify(stored, 'pw')).toBe(false);
    expect(derived.argon2).toHaveLength(1);
    expect(derived.argon2[0]).not.toBe(stored);
    expect(derived.argon2[0]).toMatch(/^\$argon2id\$v=19\$m=2048,t=2,p=1\$/);
  });
});
