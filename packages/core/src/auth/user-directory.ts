import { systemClock, type Clock } from '../clock';
import { NotFoundError, ValidationError } from '../errors';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { PasswordHasher, User, UserChange, UserChangeOptions, UserStore } from './auth';
import { actorOf, changedFields, historyLimit } from './internal/user-changes';
import { checkEmail, checkRoles } from './internal/validation';

/** Password policy: at least this many characters. */
export const MIN_PASSWORD_LENGTH = 8;
/** Password policy: at most this many characters (longer ones are a denial-of-service vector). */
export const MAX_POLICY_PASSWORD_LENGTH = 1024;

/** What {@link UserDirectory.add} takes: untrusted input, validated. */
export interface AddUserInput {
  email: unknown;
  password: unknown;
  roles?: unknown;
}

/** What {@link UserDirectory.update} takes: untrusted input, validated; absent fields are kept. */
export interface UpdateUserInput {
  email?: unknown;
  password?: unknown;
  roles?: unknown;
  disabled?: unknown;
}

/**
 * User management over a {@link UserStore}: validates input (email, roles, password policy
 * 8..1024 characters; unknown fields are refused) and hashes passwords. Used by admin APIs and
 * CLIs alike. Every change is recorded with its actor in the store's audit trail, and any change
 * of email, password, roles or `disabled` (and a delete) revokes the user's tokens.
 */
export interface UserDirectory {
  /** @throws {ValidationError} on bad input or an unknown field; `ALREADY_EXISTS` for a taken email */
  add(input: AddUserInput, options?: UserChangeOptions): Promise<User>;
  list(): Promise<User[]>;
  /** `undefined` for a missing user, and for an id no store could hold (see {@link isUserId}). */
  get(id: string): Promise<User | undefined>;
  /** @throws {NotFoundError} (also for a malformed id); {@link ValidationError} on bad input or an unknown field */
  update(id: string, input: UpdateUserInput, options?: UserChangeOptions): Promise<User>;
  /** @throws {NotFoundError} (also for a malformed id) */
  remove(id: string, options?: UserChangeOptions): Promise<void>;
  /**
   * The audit trail of a user id, newest first (deleted users too; empty for an unknown id).
   * @throws {ValidationError} `limit` outside 1..1000; {@link NotFoundError} for a malformed id
   */
  history(id: string, options?: { limit?: number }): Promise<UserChange[]>;
}

/** {@link createUserDirectory} options. */
export interface UserDirectoryOptions {
  store: UserStore;
  hasher: PasswordHasher;
  /**
   * Called after every committed change (wire it to `SessionVerifier.invalidate` so the change
   * applies at once on every instance, and to a log line). Awaited; an error is logged, not thrown.
   * @default undefined
   */
  onChange?: (change: UserChange) => void | Promise<void>;
  /**
   * Dates the changes passed to `onChange` (epoch milliseconds).
   * @default systemClock
   */
  clock?: Clock;
  /** @default noopLogger */
  logger?: Logger;
}

const ADD_FIELDS = ['email', 'password', 'roles'] as const;
const UPDATE_FIELDS = ['email', 'password', 'roles', 'disabled'] as const;
// Printable ASCII without spaces: every id a store makes (UUIDs) and nothing a database would reject.
const USER_ID = /^[\x21-\x7e]{1,128}$/;

/** True when `id` could name a user: 1..128 printable ASCII characters (ids are UUIDs). */
export function isUserId(id: unknown): id is string {
  return typeof id === 'string' && USER_ID.test(id);
}

function checkFields(input: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ValidationError('body', 'expected a JSON object');
  const record = input as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) {
      const shown = key.length > 64 ? `${key.slice(0, 64)}…` : key;
      throw new ValidationError(shown, `unknown field ${JSON.stringify(shown)}: a user has only ${allowed.join(', ')}`);
    }
  }
  return record;
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string') throw new ValidationError('password', 'password must be a string');
  if (password.length < MIN_PASSWORD_LENGTH) throw new ValidationError('password', `password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_POLICY_PASSWORD_LENGTH) throw new ValidationError('password', `password must be at most ${MAX_POLICY_PASSWORD_LENGTH} characters`);
  return password;
}

const notFound = (id: string) => new NotFoundError(isUserId(id) ? `no user with id ${id}` : 'no user with this id');

/**
 * Creates a {@link UserDirectory}.
 *
 * @throws {TypeError} naming the option when `store`, `hasher`, `onChange`, `clock` or `logger` is invalid
 * @example
 * ```ts
 * const users = createUserDirectory({ store, hasher })
 * await users.add({ email: 'ops@example.com', password: 'long enough', roles: ['admin'] })
 * ```
 */
export function createUserDirectory(options: UserDirectoryOptions): UserDirectory {
  const check = checkOptions('createUserDirectory', options);
  check.object('store', 'a UserStore', true, ['create', 'get', 'list', 'update', 'delete', 'history']);
  check.object('hasher', 'a PasswordHasher', true, ['hash']);
  check.function('onChange');
  check.clock();
  check.logger();
  const { store, hasher, onChange } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? noopLogger;

  async function changed(userId: string, action: UserChange['action'], actor: string, fields: string[], user: User | undefined): Promise<void> {
    if (!onChange) return;
    const after = user ? { email: user.email, roles: user.roles, disabled: user.disabled } : undefined;
    try {
      await onChange({ userId, action, actor, fields, after, at: new Date(clock.now()) });
    } catch (error) {
      logger.warn({ err: error, userId, action }, 'user change listener failed');
    }
  }

  return {
    async add(input, changeOptions) {
      const actor = actorOf(changeOptions);
      const fields = checkFields(input, ADD_FIELDS);
      const email = checkEmail(fields.email);
      const password = checkPassword(fields.password);
      const roles = fields.roles === undefined ? [] : checkRoles(fields.roles);
      const user = await store.create({ email, passwordHash: await hasher.hash(password), roles }, { actor });
      await changed(user.id, 'create', actor, ['email', 'password', 'roles', 'disabled'], user);
      return user;
    },
    list: () => store.list(),
    async get(id) {
      if (!isUserId(id)) return undefined;
      const record = await store.get(id);
      if (!record) return undefined;
      const { passwordHash: _hash, ...user } = record;
      return user;
    },
    async update(id, raw, changeOptions) {
      const actor = actorOf(changeOptions);
      if (!isUserId(id)) throw notFound(id);
      const input = checkFields(raw, UPDATE_FIELDS) as UpdateUserInput;
      if (Object.keys(input).length === 0) throw new ValidationError('body', `give at least one of ${UPDATE_FIELDS.join(', ')}`);
      const email = input.email === undefined ? undefined : checkEmail(input.email);
      const password = input.password === undefined ? undefined : checkPassword(input.password);
      const roles = input.roles === undefined ? undefined : checkRoles(input.roles);
      if (input.disabled !== undefined && typeof input.disabled !== 'boolean') throw new ValidationError('disabled', 'disabled must be true or false');
      const disabled = input.disabled;
      const passwordHash = password === undefined ? undefined : await hasher.hash(password);
      const patch = { email, roles, disabled, passwordHash };
      const updated = await store.update(id, patch, { actor });
      if (!updated) throw notFound(id);
      await changed(id, 'update', actor, changedFields(patch), updated);
      return updated;
    },
    async remove(id, changeOptions) {
      const actor = actorOf(changeOptions);
      if (!isUserId(id) || !(await store.delete(id, { actor }))) throw notFound(id);
      await changed(id, 'delete', actor, [], undefined);
    },
    async history(id, historyOptions) {
      const limit = historyLimit(historyOptions?.limit);
      if (!isUserId(id)) throw notFound(id);
      return store.history(id, limit);
    },
  };
}
