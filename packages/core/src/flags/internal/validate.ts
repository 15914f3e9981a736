import { ValidationError } from '../../errors';
import type { FlagDefinition, FlagPatch } from '../flags';

/** What a flag name must look like. */
export const FLAG_NAME = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
const MAX_DESCRIPTION = 1000;
const PATCH_FIELDS = ['enabled', 'rolloutPercentage', 'description'] as const;

export function checkName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !FLAG_NAME.test(name)) {
    throw new ValidationError(field, `${field} must match ${FLAG_NAME.source} (lower-case letters, digits, "_", "." and "-", at most 128 characters)`);
  }
  return name;
}

function checkObject(input: unknown): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ValidationError('body', 'the body must be a JSON object');
  }
  const record = input as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(PATCH_FIELDS as readonly string[]).includes(key)) {
      throw new ValidationError(key, `unknown field "${key}": a flag has only ${PATCH_FIELDS.join(', ')}`);
    }
  }
  return record;
}

function checkEnabled(value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ValidationError('enabled', 'enabled must be true or false');
  return value;
}

function checkRollout(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 100) {
    throw new ValidationError('rolloutPercentage', `rolloutPercentage must be an integer from 0 to 100 (got ${JSON.stringify(value) ?? String(value)})`);
  }
  return value;
}

function checkDescription(value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_DESCRIPTION) {
    throw new ValidationError('description', `description must be a string of at most ${MAX_DESCRIPTION} characters`);
  }
  return value;
}

/** A change to a flag: at least one known field, each of the right type, nothing else. */
export function checkPatch(input: unknown): FlagPatch {
  const record = checkObject(input);
  const patch: { enabled?: boolean; rolloutPercentage?: number; description?: string } = {};
  if (record.enabled !== undefined) patch.enabled = checkEnabled(record.enabled);
  if (record.rolloutPercentage !== undefined) patch.rolloutPercentage = checkRollout(record.rolloutPercentage);
  if (record.description !== undefined) patch.description = checkDescription(record.description);
  if (Object.keys(patch).length === 0) {
    throw new ValidationError('body', `give at least one of ${PATCH_FIELDS.join(', ')}`);
  }
  return patch;
}

/** A whole flag: `enabled` and `rolloutPercentage` required, `description` optional. */
export function checkDefinition(input: unknown): FlagDefinition {
  const record = checkObject(input);
  if (record.enabled === undefined) throw new ValidationError('enabled', 'enabled is required to create a flag');
  if (record.rolloutPercentage === undefined) throw new ValidationError('rolloutPercentage', 'rolloutPercentage is required to create a flag');
  return {
    enabled: checkEnabled(record.enabled),
    rolloutPercentage: checkRollout(record.rolloutPercentage),
    description: record.description === undefined ? '' : checkDescription(record.description),
  };
}
