import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../clock';
import { AikbError } from '../errors';
import { checkOptions } from '../options';
import type { NewUser, User, UserChange, UserChangeOptions, UserPatch, UserRecord, UserStore } from './auth';
import { actorOf, changedFields, historyLimit, MAX_HISTORY, revokes } from './internal/user-changes';

const key = (email: string) => email.toLowerCase();
const publicUser = ({ passwordHash: _hash, ...user }: UserRecord): User => user;
const stateOf = (user: User) => Object.freeze({ email: user.email, roles: user.roles, disabled: user.disabled });

/** An in-process {@link UserStore}: for tests and single-process tools. */
class MemoryUserStore implements UserStore {
  readonly #byId = new Map<string, UserRecord>();
  /** Per user id, newest last; bounded to {@link MAX_HISTORY} entries per id. */
  readonly #history = new Map<string, UserChange[]>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  #now(): Date {
    return new Date(this.#clock.now());
  }

  #idOf(email: string): string | undefined {
    for (const user of this.#byId.values()) if (key(user.email) === key(email)) return user.id;
    return undefined;
  }

  #record(change: UserChange): void {
    const entries = this.#history.get(change.userId) ?? [];
    entries.push(Object.freeze(change));
    if (entries.length > MAX_HISTORY) entries.shift();
    this.#history.set(change.userId, entries);
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

  async create(input: NewUser, options?: UserChangeOptions) {
    const actor = actorOf(options);
    if (this.#idOf(input.email) !== undefined) throw new AikbError('ALREADY_EXISTS', 'a user with this email already exists', { details: { field: 'email' } });
    const now = this.#now();
    const user: UserRecord = Object.freeze({
      id: randomUUID(),
      email: input.email,
      passwordHash: input.passwordHash,
      roles: Object.freeze([...(input.roles ?? [])]),
      disabled: input.disabled ?? false,
      tokenGeneration: 0,
      createdAt: now,
      updatedAt: now,
    });
    this.#byId.set(user.id, user);
    const fields = ['email', ...(input.passwordHash !== null ? ['password'] : []), 'roles', 'disabled'];
    this.#record({ userId: user.id, action: 'create', actor, fields, after: stateOf(user), at: now });
    return publicUser(user);
  }

  async update(id: string, patch: UserPatch, options?: UserChangeOptions) {
    const actor = actorOf(options);
    const current = this.#byId.get(id);
    if (!current) return undefined;
    if (patch.email !== undefined) {
      const other = this.#idOf(patch.email);
      if (other !== undefined && other !== id) throw new AikbError('ALREADY_EXISTS', 'a user with this email already exists', { details: { field: 'email' } });
    }
    const now = this.#now();
    const next: UserRecord = Object.freeze({
      ...current,
      ...(patch.email !== undefined ? { email: patch.email } : {}),
      ...(patch.passwordHash !== undefined ? { passwordHash: patch.passwordHash } : {}),
      ...(patch.roles !== undefined ? { roles: Object.freeze([...patch.roles]) } : {}),
      ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
      tokenGeneration: current.tokenGeneration + (revokes(patch) ? 1 : 0),
      updatedAt: now,
    });
    this.#byId.set(id, next);
    this.#record({ userId: id, action: 'update', actor, fields: changedFields(patch), after: stateOf(next), at: now });
    return publicUser(next);
  }

  async delete(id: string, options?: UserChangeOptions) {
    const actor = actorOf(options);
    if (!this.#byId.delete(id)) return false;
    this.#record({ userId: id, action: 'delete', actor, fields: [], after: undefined, at: this.#now() });
    return true;
  }

  async history(id: string, limit?: number) {
    const max = historyLimit(limit);
    return (this.#history.get(id) ?? []).slice(-max).reverse();
  }
}

/** {@link createMemoryUserStore} options. */
export interface MemoryUserStoreOptions {
  /**
   * Dates `createdAt`, `updatedAt` and audit entries (epoch milliseconds).
   * @default systemClock
   */
  clock?: Clock;
}

/**
 * Creates an in-memory {@link UserStore}. Emails are unique regardless of case; each user id keeps
 * its last 1000 audit entries.
 *
 * @throws {TypeError} naming the option when `clock` is not a Clock
 */
export function createMemoryUserStore(options: MemoryUserStoreOptions = {}): UserStore {
  checkOptions('createMemoryUserStore', options).clock();
  return new MemoryUserStore(options.clock ?? systemClock);
}
