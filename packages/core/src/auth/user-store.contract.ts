import { beforeEach, expect, it } from 'vitest';
import { isAikbError } from '../errors';
import type { UserStore } from './auth';

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
