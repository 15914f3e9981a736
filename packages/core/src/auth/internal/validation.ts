import { ValidationError } from '../../errors';

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;

/** @throws {ValidationError} unless `email` looks like `local@domain` (at most 320 characters). */
export function checkEmail(email: unknown, field = 'email'): string {
  if (typeof email !== 'string') throw new ValidationError(field, `${field} must be a string`);
  const trimmed = email.trim();
  if (trimmed.length > 320 || !EMAIL.test(trimmed)) throw new ValidationError(field, `${field} must be an email address like name@example.com`);
  return trimmed;
}

/** @throws {ValidationError} unless `roles` is an array of short lowercase names. */
export function checkRoles(roles: unknown, field = 'roles'): string[] {
  if (!Array.isArray(roles)) throw new ValidationError(field, `${field} must be an array of role names`);
  if (roles.length > 32) throw new ValidationError(field, `${field} may hold at most 32 roles`);
  roles.forEach((role, i) => {
    if (typeof role !== 'string' || !ROLE.test(role))
      throw new ValidationError(`${field}[${i}]`, 'a role is a lowercase name of letters, digits, _ and - (at most 32 characters)');
  });
  return [...new Set(roles as string[])];
}
