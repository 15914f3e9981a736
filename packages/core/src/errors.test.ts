import { describe, expect, it, vi } from 'vitest';
import { AikbError, NotFoundError, RateLimitedError, ValidationError, isAikbError, similarNames } from './errors';
import type * as Errors from './errors';

describe('similarNames', () => {
  const flags = ['priority_2_1_saga_pattern', 'priority_2_2_rbac_api_filtering', 'priority_1_1_timing', 'priority_2_1_saga_pattern'];

  it('lists the candidates that start with the name, in their order, once each', () => {
    expect(similarNames('priority_2', flags)).toEqual(['priority_2_1_saga_pattern', 'priority_2_2_rbac_api_filtering']);
    expect(similarNames('priority_3', flags)).toEqual([]);
  });

  it('stops at limit (default 10), however many candidates there are', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `flag_${i}`);
    expect(similarNames('flag_', many)).toHaveLength(10);
    expect(similarNames('flag_', many, { limit: 2 })).toEqual(['flag_0', 'flag_1']);
  });

  it('matches nothing for an empty name, and rejects a bad limit naming it', () => {
    expect(similarNames('', flags)).toEqual([]);
    for (const limit of [0, -1, 1.5, Number.NaN, '3']) {
      expect(() => similarNames('p', flags, { limit: limit as number })).toThrow(/limit must be a positive integer/);
    }
  });
});

describe('NotFoundError', () => {
  it('carries the name looked up and the similar names as typed fields, with the one "did you mean" wording', () => {
    const error = NotFoundError.named('flag', 'priority_2_1', ['priority_2_1_saga_pattern', 'other'], { hint: 'nothing was changed' });
    expect(error).toBeInstanceOf(AikbError);
    expect(error).toMatchObject({ code: 'NOT_FOUND', name: 'NotFoundError', key: 'priority_2_1', similar: ['priority_2_1_saga_pattern'] });
    expect(error.message).toBe('no flag named priority_2_1; flags starting with "priority_2_1": priority_2_1_saga_pattern; nothing was changed');
    expect(NotFoundError.named('flag', 'x', ['a']).message).toBe('no flag named x, and no flag name starts with "x"');
    // The untyped bag keeps its members for code that reads it.
    expect(error.details).toEqual({ name: 'priority_2_1', similar: ['priority_2_1_saga_pattern'] });
  });

  it('leaves key and similar undefined (and out of details) when not given', () => {
    const error = new NotFoundError('no user with this id');
    expect(error.key).toBeUndefined();
    expect(error.similar).toBeUndefined();
    expect(error.details).toEqual({});
    expect(isAikbError(error, 'NOT_FOUND')).toBe(true);
  });
});

describe('RateLimitedError', () => {
  it('carries retryAfterSeconds, limit, remaining and resetSeconds as typed fields', () => {
    const error = new RateLimitedError('slow down', { retryAfterSeconds: 900, limit: 10, remaining: 0, resetSeconds: 900 });
    expect(error).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 900, limit: 10, remaining: 0, resetSeconds: 900 });
    expect(error.details).toEqual({ retryAfterSeconds: 900, limit: 10, remaining: 0, resetSeconds: 900 });
  });

  it('from() reads a generic RATE_LIMITED AikbError, keeping numbers only', () => {
    const typed = RateLimitedError.from(new AikbError('RATE_LIMITED', 'slow', { details: { retryAfterSeconds: 30, limit: '10', remaining: 0 } }));
    expect(typed).toMatchObject({ retryAfterSeconds: 30, limit: undefined, remaining: 0, resetSeconds: undefined, message: 'slow' });
    expect(RateLimitedError.from(new AikbError('RATE_LIMITED', 'slow')).retryAfterSeconds).toBe(1);
    const own = new RateLimitedError('x', { retryAfterSeconds: 2 });
    expect(RateLimitedError.from(own)).toBe(own);
  });
});

describe('instanceof across copies of core (ESM and CJS builds side by side)', () => {
  it('recognises an error made by another copy of this module, by class', async () => {
    vi.resetModules();
    // A query string makes the module loader evaluate the file again: a second copy of core.
    const other = (await import(`./errors?copy=${Date.now()}`)) as typeof Errors;
    expect(other.AikbError).not.toBe(AikbError);
    const notFound = new other.NotFoundError('gone', { key: 'k', similar: ['k1'] });
    expect(notFound).toBeInstanceOf(AikbError);
    expect(notFound).toBeInstanceOf(NotFoundError);
    expect(notFound).not.toBeInstanceOf(RateLimitedError);
    expect(notFound).not.toBeInstanceOf(ValidationError);
    expect(isAikbError(notFound, 'NOT_FOUND')).toBe(true);
    expect(new other.RateLimitedError('x', { retryAfterSeconds: 3 })).toBeInstanceOf(RateLimitedError);
    expect(new NotFoundError('here')).toBeInstanceOf(other.NotFoundError);
    expect({ code: 'NOT_FOUND' }).not.toBeInstanceOf(AikbError);
    expect(new Error('plain')).not.toBeInstanceOf(AikbError);
  });
});
