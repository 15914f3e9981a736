import { expect, it } from 'vitest';
import { describeEachDatabase } from '@aikb/test-support';
import { ensureVectorExtension } from './index';

describeEachDatabase('ensureVectorExtension', (db, backend) => {
  it('installs pgvector where the server has it, and says clearly why not where it does not', async () => {
    const support = await ensureVectorExtension(db().pool);
    const { rows } = await db().pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'vector'");
    const serverHasIt = rows[0]!.n > 0;
    if (backend === 'pglite') expect(serverHasIt).toBe(true);
    if (serverHasIt) {
      expect(support).toMatchObject({ available: true });
      const distance = await db().pool.query<{ d: number }>("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector AS d");
      expect(distance.rows[0]?.d).toBe(1);
    } else {
      expect(support.available).toBe(false);
      expect(support).toMatchObject({ reason: expect.stringMatching(/no pgvector extension/) });
    }
  });
});
