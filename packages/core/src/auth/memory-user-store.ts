import { randomUUID } from 'node:crypto';
import { AikbError } from '../errors';
import type { NewUser, User, UserPatch, UserRecord, UserStore } from './auth';

const key = (email: string) => email.toLowerCase();
const publicUser = ({ passwordHash: _hash, ...user }: UserRecord): User => user;

/** An in-process {@link UserStore}: for tests and single-process tools. */
class MemoryUserStore implements UserStore {
  readonly #byId = new Map<string, UserRecord>();
  readonly #now: () => Date;

  constructor(now: () => Date) {
    this.#now = now;
  }

  #idOf(email: string): string | undefined {
    for (const user of this.#byId.values()) if (key(user.email) === key(email)) return user.id;
    return undefined;
  }

  async findByEmail(email: string) {
    const id = this.#idOf(email);
    return id === undefined ? undefined : this.#byId.get(id);
  }

  async get(id: string) {
    return this.#byId.get(id);
  }

  async list() {
    return [...this.#byId.values()].map(publicUser);
  }

  async create(input: NewUser) {
    if (this.#idOf(input.email) !== undefined) throw new AikbError('ALREADY_EXISTS', 'a user with this email already exists', { details: { field: 'email' } });
    const now = this.#now();
    const user: UserRecord = Object.freeze({
      id: randomUUID(),
      email: input.email,
      passwordHash: input.passwordHash,
      roles: Object.freeze([...(input.roles ?? [])]),
      disabled: input.disabled ?? false,
      createdAt: now,
      updatedAt: now,
    });
    this.#byId.set(user.id, user);
    return publicUser(user);
  }

  async update(id: string, patch: UserPatch) {
    const current = this.#byId.get(id);
    if (!current) return undefined;
    if (patch.email !== undefined) {
      const other = this.#idOf(patch.email);
      if (other !== undefined && other !== id) throw new AikbError('ALREADY_EXISTS', 'a user with this email already exists', { details: { field: 'email' } });
    }
    const next: UserRecord = Object.freeze({
      ...current,
      ...(patch.email !== undefined ? { email: patch.email } : {}),
      ...(patch.passwordHash !== undefined ? { passwordHash: patch.passwordHash } : {}),
      ...(patch.roles !== undefined ? { roles: Object.freeze([...patch.roles]) } : {}),
      ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
      updatedAt: this.#now(),
    });
    this.#byId.set(id, next);
    return publicUser(next);
  }

  async delete(id: string) {
    return this.#byId.delete(id);
  }
}

/** {@link createMemoryUserStore} options. */
export interface MemoryUserStoreOptions {
  /** @default () => new Date() */
  now?: () => Date;
}

/** Creates an in-memory {@link UserStore}. Emails are unique regardless of case. */
export function createMemoryUserStore(options: MemoryUserStoreOptions = {}): UserStore {
  return new MemoryUserStore(options.now ?? (() => new Date()));
}
