import { beforeEach, describe, expect, it } from 'vitest';
import { isAikbError } from '../errors';
import type { UserPatch, UserStore } from './auth';

/** The behaviour every {@link UserStore} implementation must have. Call inside a `describe`. */
export function describeUserStoreContract(make: () => Promise<UserStore> | UserStore): void {
  let store: UserStore;
  beforeEach(async () => {
    store = await make();
  });
  const unique = () => `user-${Math.random().toString(36).slice(2)}@Example.com`;

  it('creates a user and finds it by email whatever the case, with its hash', async () => {
    const email = unique();
    const created = await store.create({ email, passwordHash: '$x$h', roles: ['user', 'admin'] });
    expect(created).toMatchObject({ email, roles: ['user', 'admin'], disabled: false });
    expect('passwordHash' in created).toBe(false);
    expect(created.createdAt).toBeInstanceOf(Date);
    const found = await store.findByEmail(email.toUpperCase());
    expect(found).toMatchObject({ id: created.id, email, passwordHash: '$x$h' });
    expect(await store.get(created.id)).toMatchObject({ id: created.id });
  });

  it('returns undefined for a missing user, never throws', async () => {
    expect(await store.findByEmail('missing@example.com')).toBeUndefined();
    expect(await store.get('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect(await store.update('00000000-0000-0000-0000-000000000000', { disabled: true })).toBeUndefined();
    expect(await store.delete('00000000-0000-0000-0000-000000000000')).toBe(false);
  });

  it('refuses a second user with the same email in another case: ALREADY_EXISTS', async () => {
    const email = unique();
    await store.create({ email, passwordHash: null });
    await expect(store.create({ email: email.toLowerCase(), passwordHash: null })).rejects.toSatisfy((e) => isAikbError(e, 'ALREADY_EXISTS'));
    const other = await store.create({ email: unique(), passwordHash: null });
    await expect(store.update(other.id, { email: email.toUpperCase() })).rejects.toSatisfy((e) => isAikbError(e, 'ALREADY_EXISTS'));
  });

  it('keeps a user without a usable password as null', async () => {
    const email = unique();
    await store.create({ email, passwordHash: null });
    expect((await store.findByEmail(email))!.passwordHash).toBeNull();
  });

  it('updates only the given fields', async () => {
    const created = await store.create({ email: unique(), passwordHash: '$x$old', roles: ['user'] });
    const updated = await store.update(created.id, { disabled: true, passwordHash: '$x$new' });
    expect(updated).toMatchObject({ id: created.id, email: created.email, roles: ['user'], disabled: true });
    expect((await store.get(created.id))!.passwordHash).toBe('$x$new');
    expect((await store.update(created.id, { roles: ['admin'] }))!.roles).toEqual(['admin']);
  });

  describe('token generation', () => {
    it('starts at 0 and is raised by every change of email, password, roles or disabled', async () => {
      const created = await store.create({ email: unique(), passwordHash: '$x$a', roles: ['admin'] });
      expect(created.tokenGeneration).toBe(0);
      const steps: UserPatch[] = [
        { roles: ['user'] },
        { disabled: true },
        { disabled: false },
        { passwordHash: '$x$b' },
        { email: unique() },
        { roles: ['user'], disabled: false },
      ];
      let expected = 0;
      for (const patch of steps) {
        expected += 1;
        expect((await store.update(created.id, patch))!.tokenGeneration).toBe(expected);
        expect((await store.get(created.id))!.tokenGeneration).toBe(expected);
      }
      expect((await store.findByEmail((await store.get(created.id))!.email))!.tokenGeneration).toBe(expected);
    });

    it('keeps it for a change that revokes nothing (a re-hash of the same password)', async () => {
      const created = await store.create({ email: unique(), passwordHash: '$x$old' });
      const updated = await store.update(created.id, { passwordHash: '$x$rehashed', revokeTokens: false });
      expect(updated!.tokenGeneration).toBe(0);
      expect((await store.get(created.id))!.passwordHash).toBe('$x$rehashed');
      expect((await store.update(created.id, { revokeTokens: true }))!.tokenGeneration).toBe(1);
    });

    it('raises it once per change under concurrent updates', async () => {
      const created = await store.create({ email: unique(), passwordHash: null });
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.update(created.id, { roles: [`r${i}`] })));
      expect((await store.get(created.id))!.tokenGeneration).toBe(5);
    });
  });

  describe('audit trail', () => {
    it('records create, update and delete with the actor and the fields, newest first, never a hash', async () => {
      const created = await store.create({ email: unique(), passwordHash: '$x$secret-hash', roles: ['admin'] }, { actor: 'admin-token' });
      await store.update(created.id, { roles: ['user'], passwordHash: '$x$other-hash' }, { actor: 'user-42' });
      await store.delete(created.id, { actor: 'user-43' });
      const history = await store.history(created.id);
      expect(history.map((h) => [h.action, h.actor])).toEqual([
        ['delete', 'user-43'],
        ['update', 'user-42'],
        ['create', 'admin-token'],
      ]);
      expect(history[1]).toMatchObject({
        userId: created.id,
        fields: ['password', 'roles'],
        after: { email: created.email, roles: ['user'], disabled: false },
      });
      expect(history[0]!.after).toBeUndefined();
      expect(history[2]!.at).toBeInstanceOf(Date);
      expect(JSON.stringify(history)).not.toMatch(/hash/);
      expect(await store.history(created.id, 1)).toHaveLength(1);
    });

    it('records "system" when no actor is given, and nothing for a missing user', async () => {
      const created = await store.create({ email: unique(), passwordHash: null });
      expect((await store.history(created.id))[0]!.actor).toBe('system');
      expect(await store.update('00000000-0000-0000-0000-000000000000', { disabled: true }, { actor: 'x' })).toBeUndefined();
      expect(await store.history('00000000-0000-0000-0000-000000000000')).toEqual([]);
    });

    it('refuses a bad limit or actor with INVALID_ARGUMENT, changing nothing', async () => {
      const created = await store.create({ email: unique(), passwordHash: null });
      await expect(store.history(created.id, 0)).rejects.toSatisfy((e) => isAikbError(e, 'INVALID_ARGUMENT'));
      await expect(store.history(created.id, 1001)).rejects.toSatisfy((e) => isAikbError(e, 'INVALID_ARGUMENT'));
      await expect(store.update(created.id, { disabled: true }, { actor: 'a\u0000b' })).rejects.toSatisfy((e) => isAikbError(e, 'INVALID_ARGUMENT'));
      expect((await store.get(created.id))!.disabled).toBe(false);
    });
  });

  it('lists users without hashes and deletes them', async () => {
    const a = await store.create({ email: unique(), passwordHash: '$x$a' });
    const b = await store.create({ email: unique(), passwordHash: '$x$b' });
    const listed = await store.list();
    expect(listed.map((u) => u.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(listed.every((u) => !('passwordHash' in u))).toBe(true);
    expect(await store.delete(a.id)).toBe(true);
    expect(await store.get(a.id)).toBeUndefined();
    expect(await store.findByEmail(a.email)).toBeUndefined();
  });
}
