import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { checkOptions } from '../options';
import type { PasswordHasher } from './auth';
import { measureMedian } from './internal/cost';
import { formatPhc, parsePhc, type PhcString } from './internal/phc';

/** OWASP's scrypt work N·r·p (2^17 · 8 · 1): a stored hash may always cost this much to verify. */
const OWASP_WORK = 2 ** 17 * 8;

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
 * What `verify` accepts: a stored hash is derived at its own parameters (so hashes made before
 * a change of parameters still verify, and `needsRehash` upgrades them), but only within bounds,
 * since the string comes from a database an attacker may write to: a key of `keyLength` to 64
 * bytes (never shorter than what this hasher makes: a truncated copy of a hash must not match), a
 * salt of 16 to 64 bytes, `ln` ≥ 10, and a work N·r·p no larger than this hasher's or OWASP's
 * (2^17·8), whichever is larger. Anything else is a mismatch at the cost of one verify at the
 * current parameters.
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
  const maxWork = Math.max(2 ** logN * r * p, OWASP_WORK);
  /** The stored hash's parameters when {@link createScryptHasher}'s doc accepts them. */
  const acceptable = (parsed: PhcString | undefined) => {
    if (parsed?.id !== 'scrypt' || parsed.version !== undefined || Object.keys(parsed.params).length !== 3) return undefined;
    const { ln, r: rr, p: pp } = parsed.params;
    if (ln === undefined || rr === undefined || pp === undefined || ln < 10 || rr < 1 || pp < 1 || 2 ** ln * rr * pp > maxWork) return undefined;
    if (parsed.hash.length < keyLength || parsed.hash.length > 64 || parsed.salt.length < 16 || parsed.salt.length > 64) return undefined;
    return { ln, r: rr, p: pp, salt: parsed.salt, hash: parsed.hash };
  };
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
      const stored = acceptable(parsePhc(encoded));
      // A malformed or out-of-bounds hash still costs one derivation at the current parameters.
      const key = stored
        ? await run(password, stored.salt, stored.ln, stored.r, stored.p, stored.hash.length)
        : await run(password, dummySalt, logN, r, p, keyLength);
      return stored !== undefined && timingSafeEqual(key, stored.hash);
    },
    needsRehash(encoded) {
      const parsed = parsePhc(encoded);
      return (
        !parsed || parsed.id !== 'scrypt' || parsed.params.ln !== logN || parsed.params.r !== r || parsed.params.p !== p || parsed.hash.length !== keyLength
      );
    },
    async calibrate(samples = 3) {
      const measured = await measureMedian(samples, () => run('calibration', dummySalt, logN, r, p, keyLength));
      if (Number.isFinite(measured) && measured > 0) costMs = measured;
      return measured;
    },
  };
}
