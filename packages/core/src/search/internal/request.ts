import { VectorValidationError } from '../../errors';
import type { Principal } from '../../principal';
import type { SearchFiltering, SearchMode, SearchRequest } from '../search';
import { PUBLIC_PRINCIPAL } from '../search';
import { validateVector } from '../validate-vector';

const MODES: readonly SearchMode[] = ['vector', 'text', 'hybrid'];
const FILTERINGS: readonly SearchFiltering[] = ['database', 'application'];
const MAX_ROLES = 100;
const MAX_NAME = 200;
// Control characters (C0, DEL and C1).
const CONTROL = /\p{Cc}/u;

/** A request checked and resolved: what the legs run with. */
export interface CheckedRequest {
  readonly readers: readonly string[];
  readonly mode: SearchMode;
  readonly k: number;
  readonly filtering: SearchFiltering;
  readonly query: string | undefined;
  /** The vector as pgvector text, or undefined when the query must be embedded. */
  readonly vector: string | undefined;
}

/** The access-list entries a principal matches: `public`, `user:<id>`, `role:<name>` per role. */
export function readersOf(principal: unknown, field = 'principal'): string[] {
  const bad = (why: string) => new VectorValidationError(field, `${field} ${why}`, { problem: 'bad_request' });
  if (principal === null || typeof principal !== 'object') throw bad('must be an object with userId and roles');
  const { userId, roles } = principal as Partial<Principal>;
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > MAX_NAME || CONTROL.test(userId))
    throw bad(`.userId must be a string of 1 to ${MAX_NAME} printable characters`);
  if (!Array.isArray(roles) || roles.length > MAX_ROLES) throw bad(`.roles must be an array of at most ${MAX_ROLES} role names`);
  const readers = new Set<string>([PUBLIC_PRINCIPAL, `user:${userId}`]);
  for (const role of roles as unknown[]) {
    if (typeof role !== 'string' || role.length === 0 || role.length > MAX_NAME || CONTROL.test(role))
      throw bad(`.roles must hold strings of 1 to ${MAX_NAME} printable characters`);
    readers.add(`role:${role}`);
  }
  return [...readers];
}

/** The checks every search runs, whatever `validate` says; the vector's only when it is true. */
export function checkRequest(request: SearchRequest, limits: { dimensions: number; maxK: number; maxQueryLength: number }): CheckedRequest {
  if (request === null || typeof request !== 'object')
    throw new VectorValidationError('request', 'the search request must be an object', { problem: 'bad_request' });
  const readers = readersOf(request.principal);
  const { query, vector, mode: requestedMode, k = 10, filtering = 'database', validate = true } = request;
  if (typeof validate !== 'boolean') throw new VectorValidationError('validate', 'validate must be a boolean', { problem: 'bad_request' });
  if (!FILTERINGS.includes(filtering))
    throw new VectorValidationError('filtering', `filtering must be one of ${FILTERINGS.join(', ')}`, { problem: 'bad_request' });
  if (requestedMode !== undefined && !MODES.includes(requestedMode))
    throw new VectorValidationError('mode', `mode must be one of ${MODES.join(', ')}`, { problem: 'bad_request' });
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > limits.maxK) {
    throw new VectorValidationError('k', `k must be a whole number from 1 to ${limits.maxK} (got ${typeof k === 'number' ? String(k) : typeof k})`, {
      problem: 'bad_k',
    });
  }
  if (query !== undefined) {
    if (typeof query !== 'string') throw new VectorValidationError('query', 'query must be a string', { problem: 'bad_query' });
    if (query.length > limits.maxQueryLength)
      throw new VectorValidationError('query', `query must be at most ${limits.maxQueryLength} characters (got ${query.length})`, { problem: 'bad_query' });
    if (query.includes('\u0000')) throw new VectorValidationError('query', 'query must not contain NUL characters', { problem: 'bad_query' });
    if (query.trim().length === 0) throw new VectorValidationError('query', 'query must not be blank', { problem: 'bad_query' });
  }
  const mode = requestedMode ?? (query !== undefined ? 'hybrid' : 'vector');
  if (mode !== 'vector' && query === undefined) throw new VectorValidationError('query', `query is required in ${mode} mode`, { problem: 'bad_query' });
  if (mode === 'text' && vector !== undefined)
    throw new VectorValidationError('vector', 'vector is not used in text mode: leave it out, or use mode vector or hybrid', { problem: 'bad_request' });
  if (mode === 'vector' && query === undefined && vector === undefined)
    throw new VectorValidationError('vector', 'give a vector or a query', { problem: 'not_an_array' });
  let literal: string | undefined;
  if (vector !== undefined) {
    // Unvalidated, the vector goes to pgvector as JSON text: anything that is not a vector of D
    // finite numbers is refused there (NaN and Infinity serialise as null, which it refuses too).
    literal = validate ? JSON.stringify(validateVector(vector, limits.dimensions)) : String(JSON.stringify(vector));
  }
  return { readers, mode, k, filtering, query, vector: literal };
}
