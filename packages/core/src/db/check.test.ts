import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeEachDatabase } from '@aikb/test-support';
import { checkDatabase } from './index';

describeEachDatabase('checkDatabase', (db) => {
  it('reports ok with a measured round trip', async () => {
    const check = await checkDatabase(db().pool);
    expect(check.status).toBe('ok');
    expect(check.latencyMs).toBeGreaterThanOrEqual(0);
    expect(check.error).toBeUndefined();
  });
});

describe('checkDatabase on a failing database', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports down with the reason when the query fails, never throwing', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const pool = { query: async () => Promise.reject(refused), connect: async () => Promise.reject(refused) };
    const check = await checkDatabase(pool as never);
    expect(check).toMatchObject({ status: 'down', error: 'connect ECONNREFUSED 127.0.0.1:5432' });
    expect(check.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('names the error code when the error has no message', async () => {
    const pool = { query: async () => Promise.reject(Object.assign(new Error(''), { code: '57P01' })), connect: async () => Promise.reject(new Error('no')) };
    expect(await checkDatabase(pool as never)).toMatchObject({ status: 'down', error: '57P01' });
  });

  it('reports down once timeoutMs pass without an answer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const pool = { query: () => new Promise<never>(() => {}), connect: () => new Promise<never>(() => {}) };
    const pending = checkDatabase(pool as never, { timeoutMs: 300 });
    let settled = false;
    void pending.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(299);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await pending).toMatchObject({ status: 'down', error: 'no answer within 300 ms' });
  });
});
