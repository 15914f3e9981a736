import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/logger';
import { createRecordingLogger } from './logger';

/**
 * The options every `createPostgresXStore({ pool, logger })` checks at construction, and what it
 * tells its logger when the database is unreachable. `read` makes one call on the store that
 * queries the database.
 */
export function describePostgresStoreOptions<S>(
  factory: string,
  create: (options: { pool: never; logger?: Logger }) => S,
  read: (store: S) => Promise<unknown>,
): void {
  describe(`${factory} options`, () => {
    it('rejects options without a pool or with a bad logger, naming them (a bare pool included)', () => {
      const pool = { query: async () => ({ rows: [] }), connect: async () => Promise.reject(new Error('no')) } as never;
      expect(() => create(undefined as never)).toThrow(new RegExp(`^${factory}: options must be an object`));
      expect(() => create(pool)).toThrow(new RegExp(`^${factory}: pool must be a pg\\.Pool`));
      expect(() => create({ pool: {} as never })).toThrow(/pool must be a pg\.Pool \(with a query\(\) method\)/);
      expect(() => create({ pool, logger: { warn() {} } as never })).toThrow(new RegExp(`^${factory}: logger must be a Logger`));
    });

    it('reports the driver error behind an UNAVAILABLE to its logger, at debug', async () => {
      const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:5432'), { code: 'ECONNREFUSED' });
      const pool = { query: async () => Promise.reject(refused), connect: async () => Promise.reject(refused) } as never;
      const logger = createRecordingLogger();
      await expect(read(create({ pool, logger }))).rejects.toMatchObject({ code: 'UNAVAILABLE', cause: refused });
      expect(logger.lines).toEqual([
        { level: 'debug', obj: { err: refused, code: 'UNAVAILABLE' }, msg: expect.stringMatching(/store: translated a database error$/) },
      ]);
    });
  });
}
