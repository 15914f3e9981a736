import { AikbError, ValidationError } from '../errors';
import type { PasswordHasher, User, UserStore } from './auth';
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
 * 8..1024 characters) and hashes passwords. Used by admin APIs and CLIs alike.
 */
export interface UserDirectory {
  /** @throws {ValidationError} on bad input; `ALREADY_EXISTS` for a taken email */
  add(input: AddUserInput): Promise<User>;
  list(): Promise<User[]>;
  get(id: string): Promise<User | undefined>;
  /** @throws {AikbError} `NOT_FOUND`; {@link ValidationError} on bad input */
  update(id: string, input: UpdateUserInput): Promise<User>;
  /** @throws {AikbError} `NOT_FOUND` */
  remove(id: string): Promise<void>;
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string') throw new ValidationError('password', 'password must be a string');
  if (password.length < MIN_PASSWORD_LENGTH) throw new ValidationError('password', `password must be at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_POLICY_PASSWORD_LENGTH) throw new ValidationError('password', `password must be at most ${MAX_POLICY_PASSWORD_LENGTH} characters`);
  return password;
}

const notFound = (id: string) => new AikbError('NOT_FOUND', `no user with id ${id}`);

/**
 * Creates a {@link UserDirectory}.
 *
 * @example
 * ```ts
 * const users = createUserDirectory({ store, hasher })
 * await users.add({ email: 'ops@example.com', password: 'long enough', roles: ['admin'] })
 * ```
 */
export function createUserDirectory(options: { store: UserStore; hasher: PasswordHasher }): UserDirectory {
  const { store, hasher } = options ?? {};
  if (!store || !hasher) throw new TypeError('createUserDirectory: store and hasher are required');
  return {
    async add(input) {
      const email = checkEmail(input?.email);
      const password = checkPassword(input?.password);
      const roles = input?.roles === undefined ? [] : checkRoles(input.roles);
      return store.create({ email, passwordHash: await hasher.hash(password), roles });
    },
    list: () => store.list(),
    async get(id) {
      const record = await store.get(id);
      if (!record) return undefined;
      const { passwordHash: _hash, ...user } = record;
      return user;
    },
    async update(id, input) {
      if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ValidationError('body', 'expected a JSON object');
      const email = input.email === undefined ? undefined : checkEmail(input.email);
      const password = input.password === undefined ? undefined : checkPassword(input.password);
      const roles = input.roles === undefined ? undefined : checkRoles(input.roles);
      if (input.disabled !== undefined && typeof input.disabled !== 'boolean') throw new ValidationError('disabled', 'disabled must be true or false');
      const disabled = input.disabled as boolean | undefined;
      const passwordHash = password === undefined ? undefined : await hasher.hash(password);
      const updated = await store.update(id, { email, roles, disabled, passwordHash });
      if (!updated) throw notFound(id);
      return updated;
    },
    async remove(id) {
      if (!(await store.delete(id))) throw notFound(id);
    },
  };
}
