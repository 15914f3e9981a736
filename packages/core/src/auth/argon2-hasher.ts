import { randomBytes } from 'node:crypto';
import type * as Argon2 from '@node-rs/argon2';
import type { PasswordHasher } from './auth';
import { measureMedian } from './internal/cost';
import { parsePhc } from './internal/phc';

/** {@link createArgon2Hasher} options. Defaults are OWASP's argon2id recommendation. */
export interface Argon2HasherOptions {
  /**
   * Memory per hash, in KiB.
   * @default 19456 (19 MiB)
   */
  memoryCost?: number;
  /**
   * Passes over memory.
   * @default 2
   */
  timeCost?: number;
  /**
   * Lanes.
   * @default 1
   */
  parallelism?: number;
}

type Argon2Module = typeof Argon2;
let argon2Module: Promise<Argon2Module> | undefined;
// Loaded on first use, so importing @aikb/core/auth loads no native binding.
const loadArgon2 = () => (argon2Module ??= import('@node-rs/argon2'));

function positiveInteger(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw new TypeError(`createArgon2Hasher: ${name} must be an integer from 1 to ${max} (got ${value})`);
  return value;
}

/**
 * The default {@link PasswordHasher}: argon2id through `@node-rs/argon2` (prebuilt binaries, work
 * off the event loop). About 30 ms per verify at the default parameters on a current x86 core.
 *
 * @throws {TypeError} naming the option when a parameter is out of range
 * @example
 * ```ts
 * const hasher = createArgon2Hasher()
 * const stored = await hasher.hash('correct horse')   // '$argon2id$v=19$m=19456,t=2,p=1$...'
 * await hasher.verify(stored, 'correct horse')        // true
 * ```
 */
export function createArgon2Hasher(options: Argon2HasherOptions = {}): PasswordHasher {
  const memoryCost = positiveInteger('memoryCost', options.memoryCost, 19456, 4 * 1024 * 1024);
  const timeCost = positiveInteger('timeCost', options.timeCost, 2, 100);
  const parallelism = positiveInteger('parallelism', options.parallelism, 1, 255);
  if (memoryCost < 8 * parallelism) throw new TypeError(`createArgon2Hasher: memoryCost must be at least 8 × parallelism KiB (got ${memoryCost})`);
  const params = { memoryCost, timeCost, parallelism, algorithm: 2 /* Argon2id */ } as const;
  // ≈ 1.3 GB/s of memory filling per lane: declared until calibrated.
  let costMs = Math.max(1, (memoryCost * timeCost) / 1300 / Math.max(1, Math.min(parallelism, 2)));
  let dummy: Promise<string> | undefined;
  const dummyHash = async () => (dummy ??= loadArgon2().then((a) => a.hash(randomBytes(16), params)));

  const hasher: PasswordHasher = {
    algorithm: 'argon2id',
    parameters: Object.freeze({ m: memoryCost, t: timeCost, p: parallelism }),
    get verifyCostMs() {
      return costMs;
    },
    async hash(password) {
      const argon2 = await loadArgon2();
      return argon2.hash(password, params);
    },
    async verify(encoded, password) {
      const argon2 = await loadArgon2();
      const parsed = parsePhc(encoded);
      const usable = parsed !== undefined && /^argon2(id|i|d)$/.test(parsed.id);
      const target = usable ? encoded : await dummyHash();
      let ok: boolean;
      try {
        ok = await argon2.verify(target, password);
      } catch {
        ok = false;
      }
      return usable && ok;
    },
    needsRehash(encoded) {
      const parsed = parsePhc(encoded);
      if (!parsed || parsed.id !== 'argon2id' || parsed.version !== 19) return true;
      return parsed.params.m !== memoryCost || parsed.params.t !== timeCost || parsed.params.p !== parallelism;
    },
    async calibrate(samples = 5) {
      const target = await dummyHash();
      const argon2 = await loadArgon2();
      const measured = await measureMedian(samples, () => argon2.verify(target, 'calibration'));
      if (Number.isFinite(measured) && measured > 0) costMs = measured;
      return measured;
    },
  };
  return hasher;
}
