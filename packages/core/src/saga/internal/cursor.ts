import { ValidationError } from '../../errors';
import type { SagaListQuery, SagaState } from '../saga';
import { SAGA_STATES } from '../saga';

/** A keyset position in the newest-first list: the last item's creation time and id. */
export interface Cursor {
  readonly createdAtMs: number;
  readonly id: string;
}

export const encodeCursor = (cursor: Cursor): string => Buffer.from(JSON.stringify([cursor.createdAtMs, cursor.id])).toString('base64url');

/** @throws {ValidationError} naming `after` when the cursor was not made by {@link encodeCursor} */
export function decodeCursor(after: string): Cursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(after, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      Number.isSafeInteger(parsed[0]) &&
      typeof parsed[1] === 'string' &&
      parsed[1].length > 0 &&
      parsed[1].length <= 200 &&
      !parsed[1].includes('\u0000')
    ) {
      return { createdAtMs: parsed[0] as number, id: parsed[1] };
    }
  } catch {
    // fall through
  }
  throw new ValidationError('after', 'after must be the next cursor of a previous page');
}

export const MAX_LIMIT = 500;
export const DEFAULT_LIMIT = 50;

/** The query with its limit resolved and its values checked. @throws {ValidationError} naming the field */
export function checkListQuery(query: SagaListQuery): Required<Pick<SagaListQuery, 'limit'>> & SagaListQuery & { cursor?: Cursor } {
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ValidationError('limit', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  if (query.states !== undefined) {
    if (!Array.isArray(query.states)) throw new ValidationError('state', 'state must be a list of saga states');
    const states: readonly unknown[] = query.states;
    const bad = states.find((s) => !SAGA_STATES.includes(s as SagaState));
    if (bad !== undefined) throw new ValidationError('state', `state must be one of ${SAGA_STATES.join(', ')}`);
  }
  if (query.name !== undefined && (typeof query.name !== 'string' || query.name.length === 0 || query.name.length > 200 || query.name.includes('\u0000'))) {
    throw new ValidationError('name', 'name must be a saga name');
  }
  for (const field of ['createdFromMs', 'createdToMs'] as const) {
    const value = query[field];
    if (value !== undefined && !Number.isSafeInteger(value)) throw new ValidationError(field, `${field} must be a time in epoch milliseconds`);
  }
  return { ...query, limit, ...(query.after !== undefined ? { cursor: decodeCursor(query.after) } : {}) };
}
