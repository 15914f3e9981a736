import { randomBytes } from 'node:crypto';
import type * as Argon2 from '@node-rs/argon2';
import { checkOptions } from '../options';
import type { PasswordHasher } from './auth';
import { measureMedian } from './internal/cost';
import { parsePhc, type PhcString } from './internal/phc';

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

/**
 * The default {@link PasswordHasher}: argon2id through `@node-rs/argon2` (prebuilt binaries, work
 * off the event loop). About 30 ms per verify at the default parameters on a current x86 core.
 *
 * What `verify` accepts: argon2 derives at the parameters written in the stored hash (so hashes
 * made before a change of parameters still verify, and `needsRehash` upgrades them), but only
 * within bounds, since the string comes from a database an attacker may write to: argon2id, i or
 * d, version 16 or 19, a hash of 32 to 64 bytes (never shorter than what this hasher makes), a
 * salt of 16 to 64 bytes, and a cost no larger than this hasher's or these ceilings, whichever is
 * larger: `m` ≤ 65536 KiB, `t` ≤ 10, `p` ≤ 8, `m`·`t` ≤ 262144. Anything else is a mismatch at the
 * cost of one verify at the current parameters.
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
  const check = checkOptions('createArgon2Hasher', options, true);
  check.number('memoryCost', { min: 1, max: 4 * 1024 * 1024, integer: true });
  check.number('timeCost', { min: 1, max: 100, integer: true });
  check.number('parallelism', { min: 1, max: 255, integer: true });
  const { memoryCost = 19456, timeCost = 2, parallelism = 1 } = options;
  if (memoryCost < 8 * parallelism) throw new TypeError(`createArgon2Hasher: memoryCost must be at least 8 × parallelism KiB (got ${memoryCost})`);
  const params = { memoryCost, timeCost, parallelism, algorithm: 2 /* Argon2id */ } as const;
  const ceiling = { m: Math.max(memoryCost, 65536), t: Math.max(timeCost, 10), p: Math.max(parallelism, 8), mt: Math.max(memoryCost * timeCost, 262144) };
  /** Whether {@link createArgon2Hasher}'s doc accepts the stored hash. */
  const acceptable = (parsed: PhcString | undefined) => {
    if (!parsed || !/^argon2(id|i|d)$/.test(parsed.id) || (parsed.version !== 16 && parsed.version !== 19)) return false;
    const { m, t, p } = parsed.params;
    if (Object.keys(parsed.params).length !== 3 || m === undefined || t === undefined || p === undefined) return false;
    if (p < 1 || p > ceiling.p || t < 1 || t > ceiling.t || m < 8 * p || m > ceiling.m || m * t > ceiling.mt) return false;
    return parsed.hash.length >= 32 && parsed.hash.length <= 64 && parsed.salt.length >= 16 && parsed.salt.length <= 64;
  };
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
      const usable = acceptable(parsePhc(encoded));
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
