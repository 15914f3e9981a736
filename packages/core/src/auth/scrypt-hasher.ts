import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { checkOptions } from '../options';
import type { PasswordHasher } from './auth';
import { measureMedian } from './internal/cost';
import { formatPhc, parsePhc } from './internal/phc';

/** {@link createScryptHasher} options. Defaults are OWASP's scrypt recommendation. */
export interface ScryptHasherOptions {
  /**
   * log2 of the CPU/memory cost N.
   * @default 17 (N = 131072: 128 MiB and ≈ 500 ms per hash)
   */
  logN?: number;
  /**
   * Block size.
   * @default 8
   */
  r?: number;
  /**
   * Parallelism.
   * @default 1
   */
  p?: number;
  /**
   * Derived key length, in bytes.
   * @default 32
   */
  keyLength?: number;
}

function scrypt(password: string | Buffer, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password, salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key))));
}

/**
 * A dependency-free {@link PasswordHasher} on `node:crypto`'s scrypt, stored as
 * `$scrypt$ln=17,r=8,p=1$salt$hash`.
 *
 * Trade-off: at OWASP's strength (N = 2^17, r = 8) one hash needs 128 MiB (`maxmem` is raised to
 * fit) and ≈ 500 ms, longer than the default 500 ms login floor, so a constant-time authenticator
 * refuses it unless its floor is raised (e.g. 1000 ms). Lower `logN` to 15 (≈ 130 ms, 32 MiB) to
 * keep the 500 ms floor, at a quarter of the cracking cost; argon2id is the better default.
 *
 * @throws {TypeError} naming the option when a parameter is out of range
 */
export function createScryptHasher(options: ScryptHasherOptions = {}): PasswordHasher {
  const check = checkOptions('createScryptHasher', options, true);
  check.number('logN', { min: 10, max: 22, integer: true });
  check.number('r', { min: 1, max: 32, integer: true });
  check.number('p', { min: 1, max: 16, integer: true });
  check.number('keyLength', { min: 16, max: 64, integer: true });
  const { logN = 17, r = 8, p = 1, keyLength = 32 } = options;
  const run = (password: string | Buffer, salt: Buffer, ln: number, rr: number, pp: number, length: number) =>
    // 128·N·r bytes per lane, plus headroom: Node's default maxmem (32 MiB) is below OWASP's N.
    scrypt(password, salt, length, { N: 2 ** ln, r: rr, p: pp, maxmem: 128 * 2 ** ln * rr * pp + 32 * 1024 * 1024 });
  // ≈ 2 µs per N·r unit on a current x86 core: declared until calibrated.
  let costMs = Math.max(1, (2 ** logN * r * p) / 2056);
  const dummySalt = randomBytes(16);

  return {
    algorithm: 'scrypt',
    parameters: Object.freeze({ ln: logN, r, p }),
    get verifyCostMs() {
      return costMs;
    },
    async hash(password) {
      const salt = randomBytes(16);
      const key = await run(password, salt, logN, r, p, keyLength);
      return formatPhc('scrypt', { ln: logN, r, p }, salt, key);
    },
    async verify(encoded, password) {
      const parsed = parsePhc(encoded);
      const { ln, r: rr, p: pp } = parsed?.params ?? {};
      const usable =
        parsed !== undefined &&
        parsed.id === 'scrypt' &&
        ln !== undefined && ln >= 10 && ln <= 22 &&
        rr !== undefined && rr >= 1 && rr <= 32 &&
        pp !== undefined && pp >= 1 && pp <= 16 &&
        parsed.hash.length >= 16 && parsed.hash.length <= 64;
      // A malformed hash still costs one derivation at the current parameters.
      const key = usable
        ? await run(password, parsed.salt, ln, rr, pp, parsed.hash.length)
        : await run(password, dummySalt, logN, r, p, keyLength);
      return usable && timingSafeEqual(key, parsed.hash);
    },
    needsRehash(encoded) {
      const parsed = parsePhc(encoded);
      return !parsed || parsed.id !== 'scrypt' || parsed.params.ln !== logN || parsed.params.r !== r || parsed.params.p !== p || parsed.hash.length !== keyLength;
    },
    async calibrate(samples = 3) {
      const measured = await measureMedian(samples, () => run('calibration', dummySalt, logN, r, p, keyLength));
      if (Number.isFinite(measured) && measured > 0) costMs = measured;
      return measured;
    },
  };
}
