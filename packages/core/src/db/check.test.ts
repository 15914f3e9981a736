import { expect, it } from 'vitest';
import { describeEachDatabase } from '@aikb/test-support';
import { checkDatabase } from './index';

describeEachDatabase('checkDatabase', (db) => {
  it('reports ok with a measured round trip', async () => {
    const check = await checkDatabase(db().pool);
    expect(check.status).toBe('ok');
    expect(check.latencyMs).toBeGreaterThanOrEqual(0);
  });
});
