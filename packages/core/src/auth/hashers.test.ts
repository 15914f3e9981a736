import { describe, expect, it } from 'vitest';
import { createArgon2Hasher } from './argon2-hasher';
import { describePasswordHasherContract } from './password-hasher.contract';
import { createScryptHasher } from './scrypt-hasher';

describe('createArgon2Hasher', () => {
  describePasswordHasherContract(() => createArgon2Hasher({ memoryCost: 2048, timeCost: 2 }), {
    phc: /^\$argon2id\$v=19\$m=2048,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/,
    weaker: () => createArgon2Hasher({ memoryCost: 1024, timeCost: 1 }),
  });
});

describe('createScryptHasher', () => {
  describePasswordHasherContract(() => createScryptHasher({ logN: 12 }), {
    phc: /^\$scrypt\$ln=12,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/,
    weaker: () => createScryptHasher({ logN: 10 }),
  });
});

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
