import { ValidationError } from '../../errors';
import type { UserChangeOptions, UserPatch } from '../auth';

/** The actor recorded when a change names none. */
export const DEFAULT_ACTOR = 'system';
/** The most audit entries one {@link UserStore.history} call returns. */
export const MAX_HISTORY = 1000;

/** The fields a patch sets, as the audit trail names them (`password`, never the hash). */
export function changedFields(patch: UserPatch): string[] {
  const fields: string[] = [];
  if (patch.email !== undefined) fields.push('email');
  if (patch.passwordHash !== undefined) fields.push('password');
  if (patch.roles !== undefined) fields.push('roles');
  if (patch.disabled !== undefined) fields.push('disabled');
  return fields;
}

/** Whether `patch` raises the token generation: by default, any change of credentials or rights. */
export function revokes(patch: UserPatch): boolean {
  return patch.revokeTokens ?? changedFields(patch).length > 0;
}

/** The actor of a change: a short printable name. */
export function actorOf(options: UserChangeOptions | undefined): string {
  const actor = options?.actor ?? DEFAULT_ACTOR;
  // eslint-disable-next-line no-control-regex
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > 200 || /[\u0000-\u001f\u007f]/.test(actor)) {
    throw new ValidationError('actor', 'actor must be a printable string of 1 to 200 characters');
  }
  return actor;
}

/** The `limit` of a history call. */
export function historyLimit(limit: number | undefined): number {
  const value = limit ?? 50;
  if (!Number.isInteger(value) || value < 1 || value > MAX_HISTORY) throw new ValidationError('limit', `limit must be an integer from 1 to ${MAX_HISTORY}`);
  return value;
}
