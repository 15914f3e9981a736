import { createManualClock } from '@aikb/test-support';
import { describe, expect, it, vi } from 'vitest';
import { createInProcessInvalidationBus } from '../cache';
import { isAikbError, UnavailableError } from '../errors';
import type { PasswordHasher, UserStore } from './auth';
import { createConstantTimeAuthenticator } from './constant-time-authenticator';
import { createMemoryUserStore } from './memory-user-store';
import { createSessionVerifier, userInvalidationKey } from './session-verifier';
import { createTokenService } from './tokens';

const secret = 'session-verifier-test-secret-0123456789';
const revoked = (e: unknown) => isAikbError(e, 'UNAUTHENTICATED') && /revoked; log in again/.test((e as Error).message);

/** A memory store whose `get` calls are counted and can be made to fail. */
function countingStore() {
  const inner = createMemoryUserStore();
  const state: { gets: number; down: boolean; hold?: Promise<void> } = { gets: 0, down: false };
  const store: UserStore = {
    findByEmail: inner.findByEmail.bind(inner),
    list: inner.list.bind(inner),
    create: inner.create.bind(inner),
    update: inner.update.bind(inner),
    delete: inner.delete.bind(inner),
    history: inner.history.bind(inner),
    async get(id: string) {
      state.gets += 1;
      if (state.down) throw new UnavailableError('the user database is unavailable');
      const user = await inner.get(id);
      await state.hold; // the answer is read, and held back: a slow database
      return user;
    },
  };
  return { store, state };
}

async function setup(options: { cacheTtlMs?: number; bus?: ReturnType<typeof createInProcessInvalidationBus> } = {}) {
  const clock = createManualClock();
  const tokens = createTokenService({ secret });
  const { store, state } = countingStore();
  const sessions = createSessionVerifier({ tokens, store, clock, ...options });
  const admin = await store.create({ email: 'admin@example.com', passwordHash: '$x$h', roles: ['admin'] });
  const { token } = await tokens.issue(admin);
  return { clock, tokens, store, state, sessions, admin, token };
}

describe('createSessionVerifier', () => {
  describe('verify', () => {
    it("accepts a current user's token and returns the user's current roles", async () => {
      const { sessions, token, admin } = await setup();
      expect(await sessions.verify(token)).toMatchObject({ userId: admin.id, roles: ['admin'], tokenGeneration: 0 });
    });

    it('gives the Principal of the verified token: the user id and the current roles, frozen', async () => {
      const { sessions, token, admin } = await setup();
      const { principal } = await sessions.verify(token);
      expect(principal).toEqual({ userId: admin.id, roles: ['admin'] });
      expect(Object.isFrozen(principal)).toBe(true);
      expect(Object.isFrozen(principal.roles)).toBe(true);
    });

    it.each([
      ['deleted', (s: UserStore, id: string) => s.delete(id)],
      ['disabled', (s: UserStore, id: string) => s.update(id, { disabled: true })],
      ['demoted', (s: UserStore, id: string) => s.update(id, { roles: ['user'] })],
      ['given a new password', (s: UserStore, id: string) => s.update(id, { passwordHash: '$x$new' })],
      ['given a new email', (s: UserStore, id: string) => s.update(id, { email: 'other@example.com' })],
    ])('refuses the token of a user %s once the cache entry expires (no bus)', async (_what, change) => {
      const { sessions, token, store, admin, clock } = await setup({ cacheTtlMs: 1000 });
      await sessions.verify(token);
      await change(store, admin.id);
      clock.advance(999);
      await expect(sessions.verify(token)).resolves.toMatchObject({ userId: admin.id });
      clock.advance(1);
      await expect(sessions.verify(token)).rejects.toSatisfy(revoked);
    });

    it('accepts a token issued after the change, and again after re-enabling', async () => {
      const { sessions, tokens, token, store, admin } = await setup({ cacheTtlMs: 0 });
      const disabled = await store.update(admin.id, { disabled: true });
      await expect(sessions.verify((await tokens.issue(disabled!)).token)).rejects.toSatisfy(revoked);
      const enabled = await store.update(admin.id, { disabled: false });
      const fresh = (await tokens.issue(enabled!)).token;
      expect(await sessions.verify(fresh)).toMatchObject({ tokenGeneration: 2 });
      await expect(sessions.verify(token)).rejects.toSatisfy(revoked);
    });

    it('refuses a token without a generation claim once the user has changed', async () => {
      const { sessions, tokens, store, admin } = await setup({ cacheTtlMs: 0 });
      const legacy = (await tokens.issue({ id: admin.id, roles: ['admin'] })).token;
      expect(await sessions.verify(legacy)).toMatchObject({ tokenGeneration: 0 });
      await store.update(admin.id, { passwordHash: '$x$2' });
      await expect(sessions.verify(legacy)).rejects.toSatisfy(revoked);
    });

    it('still refuses invalid tokens as the token service does, without asking the store', async () => {
      const { sessions, token, state } = await setup();
      await expect(sessions.verify(`${token}x`)).rejects.toSatisfy((e) => isAikbError(e, 'UNAUTHENTICATED') && !revoked(e));
      expect(state.gets).toBe(0);
    });

    it('fails closed with UNAVAILABLE when the store is down, even for a state cached before', async () => {
      const { sessions, token, state, clock } = await setup({ cacheTtlMs: 1000 });
      await sessions.verify(token);
      state.down = true;
      clock.advance(1000);
      await expect(sessions.verify(token)).rejects.toSatisfy((e) => isAikbError(e, 'UNAVAILABLE') && !/database is unavailable/.test((e as Error).message));
      expect(sessions.stats().unavailable).toBe(1);
      state.down = false;
      await expect(sessions.verify(token)).resolves.toBeDefined();
    });
  });

  describe('cache', () => {
    it('asks the store once per user per TTL, and once for concurrent verifies', async () => {
      const { sessions, token, state, clock } = await setup({ cacheTtlMs: 1000 });
      await Promise.all(Array.from({ length: 20 }, () => sessions.verify(token)));
      expect(state.gets).toBe(1);
      clock.advance(500);
      await sessions.verify(token);
      expect(state.gets).toBe(1);
      clock.advance(500);
      await sessions.verify(token);
      expect(state.gets).toBe(2);
    });

    it('asks the store every time with cacheTtlMs 0', async () => {
      const { sessions, token, state } = await setup({ cacheTtlMs: 0 });
      await sessions.verify(token);
      await sessions.verify(token);
      expect(state.gets).toBe(2);
    });

    it('caches a missing user too, so revoked tokens do not hammer the store', async () => {
      const { sessions, token, store, admin, state } = await setup({ cacheTtlMs: 1000 });
      await store.delete(admin.id);
      await expect(sessions.verify(token)).rejects.toSatisfy(revoked);
      await expect(sessions.verify(token)).rejects.toSatisfy(revoked);
      expect(state.gets).toBe(1);
      expect(sessions.stats()).toMatchObject({ revoked: 2, lookups: 1 });
    });

    it('is bounded by maxEntries', async () => {
      const tokens = createTokenService({ secret });
      const store = createMemoryUserStore();
      const sessions = createSessionVerifier({ tokens, store, maxEntries: 3 });
      for (let i = 0; i < 10; i += 1) {
        const user = await store.create({ email: `u${i}@example.com`, passwordHash: null });
        await sessions.verify((await tokens.issue(user)).token);
      }
      expect(sessions.stats().cached).toBe(3);
    });
  });

  describe('invalidation', () => {
    it('applies a change at once on every verifier sharing the bus, whatever the TTL', async () => {
      const bus = createInProcessInvalidationBus();
      const { sessions, token, store, admin, tokens } = await setup({ cacheTtlMs: 60_000, bus });
      const other = createSessionVerifier({ tokens, store, bus, cacheTtlMs: 60_000 });
      await sessions.verify(token);
      await other.verify(token);
      await store.update(admin.id, { roles: ['user'] });
      await sessions.invalidate(admin.id);
      await expect(sessions.verify(token)).rejects.toSatisfy(revoked);
      await new Promise((resolve) => setImmediate(resolve));
      await expect(other.verify(token)).rejects.toSatisfy(revoked);
      other.close();
      await bus.close();
    });

    it('does not cache a lookup that was overtaken by an invalidation', async () => {
      const { sessions, token, store, admin, state } = await setup({ cacheTtlMs: 60_000 });
      let release!: () => void;
      state.hold = new Promise((resolve) => (release = resolve));
      const racing = sessions.verify(token);
      await vi.waitFor(() => expect(state.gets).toBe(1)); // it has read the user, still an admin
      await store.update(admin.id, { disabled: true });
      await sessions.invalidate(admin.id);
      release();
      await expect(racing).resolves.toMatchObject({ roles: ['admin'] }); // began before the change
      await expect(sessions.verify(token)).rejects.toSatisfy(revoked);
      expect(state.gets).toBe(2);
    });

    it('forgets everything when the bus comes back after a disconnection, and on a glob', async () => {
      const handlers: Array<(state: 'connected' | 'disconnected') => void> = [];
      const messages: Array<(m: { key: string; version: number }) => void> = [];
      const bus = {
        kind: 'fake',
        state: 'connected' as const,
        publish: async () => {},
        subscribe: (h: (m: { key: string; version: number }) => void) => (messages.push(h), () => {}),
        onStateChange: (h: (s: 'connected' | 'disconnected') => void) => (handlers.push(h), () => {}),
        close: async () => {},
      };
      const { sessions, token, state } = await setup({ cacheTtlMs: 60_000, bus });
      await sessions.verify(token);
      handlers.forEach((h) => h('disconnected'));
      handlers.forEach((h) => h('connected'));
      await sessions.verify(token);
      expect(state.gets).toBe(2);
      messages.forEach((m) => m({ key: 'feature_flags:x', version: 3 }));
      await sessions.verify(token);
      expect(state.gets).toBe(2);
      messages.forEach((m) => m({ key: `${userInvalidationKey('')}*`, version: 0 }));
      await sessions.verify(token);
      expect(state.gets).toBe(3);
    });

    it('logs, never throws, when the bus cannot publish', async () => {
      const bus = createInProcessInvalidationBus();
      await bus.close();
      const warnings: string[] = [];
      const tokens = createTokenService({ secret });
      const sessions = createSessionVerifier({
        tokens,
        store: createMemoryUserStore(),
        bus,
        logger: { debug() {}, info() {}, error() {}, warn: (_o, msg) => warnings.push(msg ?? '') },
      });
      await expect(sessions.invalidate('someone')).resolves.toBeUndefined();
      expect(warnings.join()).toMatch(/not published/);
    });
  });

  it('keeps the token a login issued when that login re-hashes the password (same password, no revocation)', async () => {
    const store = createMemoryUserStore();
    const encode = (p: string, v: number) => `$fake$v=${v}$${Buffer.from(p).toString('base64')}`;
    const hasher: PasswordHasher = {
      algorithm: 'fake',
      parameters: { v: 2 },
      verifyCostMs: 1,
      hash: async (p) => encode(p, 2),
      verify: async (encoded, p) => encoded === encode(p, 1) || encoded === encode(p, 2),
      needsRehash: (encoded) => !encoded.startsWith('$fake$v=2$'),
      calibrate: async () => 1,
    };
    const user = await store.create({ email: 'old@example.com', passwordHash: encode('old params', 1), roles: ['admin'] });
    const tokens = createTokenService({ secret });
    const sessions = createSessionVerifier({ tokens, store, cacheTtlMs: 0 });
    const auth = createConstantTimeAuthenticator({ store, hasher, constantTime: () => false });
    const result = await auth.begin().verify({ email: 'old@example.com', password: 'old params' }, (u) => tokens.issue(u));
    expect(result.ok).toBe(true);
    await vi.waitFor(async () => expect((await store.get(user.id))!.passwordHash).toBe(encode('old params', 2)));
    await expect(sessions.verify(result.ok ? result.value.token : '')).resolves.toMatchObject({ userId: user.id });
    expect((await store.history(user.id))[0]).toMatchObject({ action: 'update', actor: 'rehash', fields: ['password'] });
  });

  it('rejects invalid options with a TypeError naming the option', () => {
    const tokens = createTokenService({ secret });
    const store = createMemoryUserStore();
    expect(() => createSessionVerifier({ tokens: undefined as never, store })).toThrow(/tokens/);
    expect(() => createSessionVerifier({ tokens, store: {} as never })).toThrow(/store/);
    expect(() => createSessionVerifier({ tokens, store, bus: {} as never })).toThrow(/bus/);
    expect(() => createSessionVerifier({ tokens, store, cacheTtlMs: -1 })).toThrow(/cacheTtlMs/);
    expect(() => createSessionVerifier({ tokens, store, cacheTtlMs: 1.5 })).toThrow(/cacheTtlMs/);
    expect(() => createSessionVerifier({ tokens, store, maxEntries: 0 })).toThrow(/maxEntries/);
    expect(() => createSessionVerifier({ tokens, store, clock: 1 as never })).toThrow(/clock/);
  });
});
