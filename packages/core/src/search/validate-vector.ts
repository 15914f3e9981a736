import { VectorValidationError } from '../errors';

/**
 * Largest element magnitude accepted. pgvector stores float32 and sums squares in float32 for
 * cosine distance: beyond about 1.8e19 a square overflows to Infinity and the distance is NaN.
 */
export const MAX_VECTOR_ELEMENT = 1e18;

/** pgvector's own limit on a vector's length. */
const PGVECTOR_MAX_DIMENSIONS = 16_000;

/**
 * Checks a query vector before it reaches SQL and returns it as a plain `number[]`.
 *
 * pgvector-node's `toSql` silently turns NaN and Infinity into `null`, and the database accepts a
 * zero vector (its cosine distance to anything is NaN, so the order is arbitrary): neither may get
 * that far. Checked, in this order: an array; exactly `dimensions` elements; every element a
 * number, finite, at most {@link MAX_VECTOR_ELEMENT} in magnitude; not every element zero once
 * stored as float32.
 *
 * @param field the name used in the error (`vector`; elements are `vector[i]`)
 * @throws {VectorValidationError} naming the problem and the field
 * @example
 * ```ts
 * validateVector([0.1, 0.2, 0.3], 3)         // [0.1, 0.2, 0.3]
 * validateVector([0.1, NaN, 0.3], 3)         // throws: vector[1] must be a finite number (got NaN)
 * ```
 */
export function validateVector(vector: unknown, dimensions: number, field = 'vector'): number[] {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > PGVECTOR_MAX_DIMENSIONS) {
    throw new TypeError(`validateVector: dimensions must be a whole number from 1 to ${PGVECTOR_MAX_DIMENSIONS} (got ${String(dimensions)})`);
  }
  if (!Array.isArray(vector)) {
    throw new VectorValidationError(field, `${field} must be an array of ${dimensions} numbers (got ${describe(vector)})`, { problem: 'not_an_array' });
  }
  if (vector.length !== dimensions) {
    throw new VectorValidationError(field, `${field} must have exactly ${dimensions} elements (got ${vector.length})`, { problem: 'wrong_dimension' });
  }
  const result = new Array<number>(dimensions);
  let nonZero = false;
  for (let i = 0; i < dimensions; i++) {
    const value: unknown = vector[i];
    if (typeof value !== 'number') {
      throw new VectorValidationError(`${field}[${i}]`, `${field}[${i}] must be a number (got ${describe(value)})`, { problem: 'not_a_number' });
    }
    if (!Number.isFinite(value) || Math.abs(value) > MAX_VECTOR_ELEMENT) {
      throw new VectorValidationError(
        `${field}[${i}]`,
        `${field}[${i}] must be a finite number of magnitude at most ${MAX_VECTOR_ELEMENT} (got ${String(value)})`,
        {
          problem: 'not_finite',
        },
      );
    }
    if (Math.fround(value) !== 0) nonZero = true;
    result[i] = value;
  }
  if (!nonZero) {
    throw new VectorValidationError(field, `${field} must not be all zeros (its cosine distance to every document is undefined)`, { problem: 'zero_vector' });
  }
  return result;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'object' ? 'an object' : typeof value === 'number' ? String(value) : typeof value;
}
