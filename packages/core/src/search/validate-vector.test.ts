import { describe, expect, it } from 'vitest';
import { AikbError, ValidationError, VectorValidationError } from '../errors';
import { validateVector } from './validate-vector';

describe('validateVector', () => {
  it('returns a plain copy of a good vector', () => {
    const input = [0.5, -1, 3e-7];
    const out = validateVector(input, 3);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
  });

  it.each([
    ['not an array', 'abc', 'vector', 'not_an_array'],
    ['an object', { 0: 1 }, 'vector', 'not_an_array'],
    ['too short', [1, 2], 'vector', 'wrong_dimension'],
    ['empty', [], 'vector', 'wrong_dimension'],
    ['100 000 elements', Array.from({ length: 100_000 }, () => 1), 'vector', 'wrong_dimension'],
    ['a string element', [1, '2', 3], 'vector[1]', 'not_a_number'],
    ['"NaN" as a string', [1, 'NaN', 3], 'vector[1]', 'not_a_number'],
    ['null (what toSql makes of NaN)', [1, null, 3], 'vector[1]', 'not_a_number'],
    ['a nested array', [1, [2], 3], 'vector[1]', 'not_a_number'],
    ['NaN', [1, Number.NaN, 3], 'vector[1]', 'not_finite'],
    ['Infinity (JSON 1e999)', [JSON.parse('1e999') as number, 1, 3], 'vector[0]', 'not_finite'],
    ['too large for float32 sums', [1, 1, 1e30], 'vector[2]', 'not_finite'],
    ['all zeros', [0, -0, 0], 'vector', 'zero_vector'],
    ['zero once stored as float32', [1e-50, 0, 0], 'vector', 'zero_vector'],
  ])('refuses %s, naming the field and the problem', (_name, input, field, problem) => {
    let caught: unknown;
    try {
      validateVector(input, 3);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(VectorValidationError);
    expect(caught).toBeInstanceOf(ValidationError);
    expect(caught).toBeInstanceOf(AikbError);
    expect(caught).toMatchObject({ code: 'INVALID_ARGUMENT', field, problem, details: { field, problem } });
  });

  it('rejects a bad dimension argument as a programming error', () => {
    expect(() => validateVector([1], 0)).toThrow(TypeError);
  });
});
