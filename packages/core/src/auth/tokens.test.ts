import { describe, expect, it } from 'vitest';
import { systemClock } from '../clock';
import { isAikbError } from '../errors';
import { createTokenService } from './tokens';

const secret = 'a-test-secret-that-is-at-least-32-bytes-long';

describe('createTokenService', () => {
  it('issues a token carrying the user id and roles, which verifies', async () => {
    const tokens = createTokenService({ secret, expiresInSeconds: 600 });
    const issued = await tokens.issue({ id: 'user-1', roles: ['user', 'admin'] });
    expect(issued.expiresInSeconds).toBe(600);
    const claims = await tokens.verify(issued.token);
    expect(claims).toMatchObject({ userId: 'user-1', roles: ['user', 'admin'] });
    expect(claims.expiresAtMs - Date.now()).toBeGreaterThan(590_000);
    expect(claims.expiresAtMs % 1000).toBe(0);
  });

  it('refuses an expired token, a forged one and garbage with UNAUTHENTICATED', async () => {
    let now = Date.now();
    const tokens = createTokenService({ secret, expiresInSeconds: 60, clock: { ...systemClock, now: () => now } });
    const { token } = await tokens.issue({ id: 'u', roles: [] });
    now += 61_000;
    await expect(tokens.verify(token)).rejects.toSatisfy((e) => isAikbError(e, 'UNAUTHENTICATED') && /expired/.test((e as Error).message));
    const other = createTokenService({ secret: `${secret}-other` });
    const forged = (await other.issue({ id: 'u', roles: ['admin'] })).token;
    await expect(createTokenService({ secret }).verify(forged)).rejects.toSatisfy((e) => isAikbError(e, 'UNAUTHENTICATED'));
    await expect(createTokenService({ secret }).verify('not.a.jwt')).rejects.toSatisfy((e) => isAikbError(e, 'UNAUTHENTICATED'));
  });

  it('carries the token generation (claim gen), 0 when the user has none, and refuses a malformed one', async () => {
    const tokens = createTokenService({ secret });
    expect(await tokens.verify((await tokens.issue({ id: 'u', roles: [], tokenGeneration: 7 })).token)).toMatchObject({ tokenGeneration: 7 });
    expect(await tokens.verify((await tokens.issue({ id: 'u', roles: [] })).token)).toMatchObject({ tokenGeneration: 0 });
    const { SignJWT } = await import('jose');
    const bad = await new SignJWT({ roles: [], gen: 'x' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setIssuer('aikb')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));
    await expect(tokens.verify(bad)).rejects.toSatisfy((e) => isAikbError(e, 'UNAUTHENTICATED'));
  });

  it('refuses an unsigned (alg none) token', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: 'u', roles: ['admin'], iss: 'aikb', exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
    await expect(createTokenService({ secret }).verify(`${header}.${payload}.`)).rejects.toSatisfy((e) => isAikbError(e, 'UNAUTHENTICATED'));
  });

  it('rejects a short secret and a bad lifetime with a TypeError naming the option', () => {
    expect(() => createTokenService({ secret: 'short' })).toThrow(/secret/);
    expect(() => createTokenService({ secret, expiresInSeconds: 0 })).toThrow(/expiresInSeconds/);
  });
});
