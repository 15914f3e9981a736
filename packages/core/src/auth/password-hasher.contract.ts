import { expect, it } from 'vitest';
import type { PasswordHasher } from './auth';

/** What {@link describePasswordHasherContract} needs besides the hasher under test. */
export interface PasswordHasherContractOptions {
  /** The exact PHC string shape of a new hash, parameters included. */
  phc: RegExp;
  /** The same algorithm with other (weaker) parameters: its hashes need a rehash yet still verify. */
  weaker: () => PasswordHasher;
}

/**
 * The behaviour every {@link PasswordHasher} implementation must have. Call inside a `describe`,
 * with small parameters so it runs fast.
 */
export function describePasswordHasherContract(make: () => PasswordHasher, { phc, weaker }: PasswordHasherContractOptions): void {
  const hasher = make();

  it('round-trips a password through a PHC string with a fresh salt each time', async () => {
    const first = await hasher.hash('correct horse battery');
    const second = await hasher.hash('correct horse battery');
    expect(first).toMatch(phc);
    expect(first).not.toBe(second);
    expect(await hasher.verify(first, 'correct horse battery')).toBe(true);
    expect(await hasher.verify(second, 'correct horse battery')).toBe(true);
  });

  it('answers false for a wrong password', async () => {
    const stored = await hasher.hash('correct horse battery');
    for (const wrong of ['correct horse batterY', 'correct horse battery ', '', 'ç'.repeat(300)]) {
      expect(await hasher.verify(stored, wrong)).toBe(false);
    }
  });

  it('round-trips a non-ASCII password', async () => {
    const password = 'pässwörd 🔑 密码';
    expect(await hasher.verify(await hasher.hash(password), password)).toBe(true);
  });

  it('treats a malformed or foreign hash as a mismatch, never a throw', async () => {
    const own = await hasher.hash('anything');
    for (const bad of [
      '',
      'plain',
      '$argon2id$garbage',
      '$scrypt$ln=99,r=8,p=1$AAAA$AAAA',
      '$pbkdf2$i=1$AAAA$AAAA',
      '$2b$10$abcdefghijklmnopqrstuv',
      `${own}$extra`,
      own.replace(/\$[^$]*$/, '$'),
    ]) {
      await expect(hasher.verify(bad, 'anything')).resolves.toBe(false);
    }
  });

  it('does not verify a truncated copy of its own hash (a shorter key is not a weaker match)', async () => {
    const own = await hasher.hash('correct horse battery');
    const cut = own.lastIndexOf('$');
    const key = Buffer.from(own.slice(cut + 1), 'base64');
    for (const length of [key.length - 1, 16, 8, 4]) {
      const truncated = `${own.slice(0, cut + 1)}${key.subarray(0, length).toString('base64').replace(/=+$/, '')}`;
      expect(await hasher.verify(truncated, 'correct horse battery')).toBe(false);
    }
  });

  it('asks for a rehash of hashes made with other parameters or another algorithm, not of its own', async () => {
    const current = await hasher.hash('pw');
    expect(hasher.needsRehash(current)).toBe(false);
    expect(hasher.needsRehash(await weaker().hash('pw'))).toBe(true);
    expect(hasher.needsRehash('$pbkdf2$i=1$AAAA$AAAA')).toBe(true);
    expect(hasher.needsRehash('not a hash')).toBe(true);
    // a hash made with older parameters still verifies, so the login can upgrade it
    const old = await weaker().hash('pw');
    expect(await hasher.verify(old, 'pw')).toBe(true);
  });

  it('names its algorithm and the parameters new hashes carry', async () => {
    expect(hasher.algorithm).toMatch(/^[a-z0-9]+$/);
    const stored = await hasher.hash('pw');
    expect(stored.startsWith(`$${hasher.algorithm}$`)).toBe(true);
    for (const [name, value] of Object.entries(hasher.parameters)) expect(stored).toContain(`${name}=${value}`);
  });

  it('declares a verify cost and measures it on calibrate', async () => {
    expect(hasher.verifyCostMs).toBeGreaterThan(0);
    const measured = await hasher.calibrate(1);
    expect(measured).toBeGreaterThan(0);
    expect(Number.isFinite(measured)).toBe(true);
    expect(hasher.verifyCostMs).toBe(measured);
  });

  it('keeps the calibrated verify cost whatever live verifies take (queueing and stalls are not its cost)', async () => {
    const calibrated = await hasher.calibrate(1);
    const stored = await hasher.hash('pw');
    // Ten verifies at once queue behind each other: their wall times are well above one verify.
    await Promise.all(Array.from({ length: 10 }, () => hasher.verify(stored, 'pw')));
    expect(hasher.verifyCostMs).toBe(calibrated);
  });
}
