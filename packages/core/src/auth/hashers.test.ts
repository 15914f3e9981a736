import { describe, expect, it } from 'vitest';
import type { PasswordHasher } from './auth';
import { createArgon2Hasher } from './argon2-hasher';
import { createScryptHasher } from './scrypt-hasher';

function describeHasherContract(title: string, make: () => PasswordHasher, phc: RegExp, weaker: () => PasswordHasher) {
  describe(title, () => {
    const hasher = make();

    it('round-trips a password through a PHC string with a fresh salt each time', async () => {
      const first = await hasher.hash('correct horse battery');
      const second = await hasher.hash('correct horse battery');
      expect(first).toMatch(phc);
      expect(first).not.toBe(second);
      expect(await hasher.verify(first, 'correct horse battery')).toBe(true);
      expect(await hasher.verify(second, 'correct horse battery')).toBe(true);
      expect(await hasher.verify(first, 'correct horse batterY')).toBe(false);
      expect(await hasher.verify(first, '')).toBe(false);
    });

    it('treats a malformed or foreign hash as a mismatch, never a throw', async () => {
      for (const bad of ['', 'plain', '$argon2id$garbage', '$scrypt$ln=99,r=8,p=1$AAAA$AAAA', '$pbkdf2$i=1$AAAA$AAAA']) {
        expect(await hasher.verify(bad, 'anything')).toBe(false);
      }
    });

    it('asks for a rehash of hashes made with other parameters or another algorithm, not of its own', async () => {
      const current = await hasher.hash('pw');
      expect(hasher.needsRehash(current)).toBe(false);
      expect(hasher.needsRehash(await weaker().hash('pw'))).toBe(true);
      expect(hasher.needsRehash('$pbkdf2$i=1$AAAA$AAAA')).toBe(true);
      // a hash made with older parameters still verifies, so the login can upgrade it
      const old = await weaker().hash('pw');
      expect(await hasher.verify(old, 'pw')).toBe(true);
    });

    it('declares a verify cost and measures it on calibrate', async () => {
      expect(hasher.verifyCostMs).toBeGreaterThan(0);
      const measured = await hasher.calibrate(1);
      expect(measured).toBeGreaterThan(0);
      expect(hasher.verifyCostMs).toBe(measured);
    });

    it('keeps the calibrated verify cost whatever live verifies take (queueing and stalls are not its cost)', async () => {
      const calibrated = await hasher.calibrate(1);
      const stored = await hasher.hash('pw');
      // Ten verifies at once queue behind each other: their wall times are well above one verify.
      await Promise.all(Array.from({ length: 10 }, () => hasher.verify(stored, 'pw')));
      expect(hasher.verifyCostMs).toBe(calibrated);
    });
  });
}

describeHasherContract(
  'createArgon2Hasher',
  () => createArgon2Hasher({ memoryCost: 2048, timeCost: 2 }),
  /^\$argon2id\$v=19\$m=2048,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/,
  () => createArgon2Hasher({ memoryCost: 1024, timeCost: 1 }),
);

describeHasherContract(
  'createScryptHasher',
  () => createScryptHasher({ logN: 12 }),
  /^\$scrypt\$ln=12,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/,
  () => createScryptHasher({ logN: 10 }),
);

describe('hasher defaults', () => {
  it('argon2id defaults to OWASP parameters: m=19456, t=2, p=1', async () => {
    const hasher = createArgon2Hasher();
    expect(hasher.parameters).toEqual({ m: 19456, t: 2, p: 1 });
    expect(await hasher.hash('pw')).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it('scrypt defaults to OWASP N=2^17, r=8, declaring a cost above the 500 ms floor', () => {
    const hasher = createScryptHasher();
    expect(hasher.parameters).toEqual({ ln: 17, r: 8, p: 1 });
    expect(hasher.verifyCostMs).toBeGreaterThan(480);
  });

  it.each([
    [() => createArgon2Hasher({ memoryCost: 0 }), /memoryCost/],
    [() => createArgon2Hasher({ timeCost: 1.5 }), /timeCost/],
    [() => createScryptHasher({ logN: 30 }), /logN/],
    [() => createScryptHasher({ r: 0 }), /\br\b/],
  ])('rejects an out-of-range parameter with a TypeError naming it (%#)', (make, message) => {
    expect(make).toThrow(message);
  });
});
