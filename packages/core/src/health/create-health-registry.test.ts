import { describe, expect, it } from 'vitest';
import { createHealthRegistry } from './index';

describe('createHealthRegistry', () => {
  it('reports ok when every component is ok or disabled', async () => {
    const health = createHealthRegistry();
    health.register('database', () => ({ status: 'ok' }));
    health.register('redis', () => ({ status: 'disabled', message: 'not configured' }));
    const report = await health.check();
    expect(report.status).toBe('ok');
    expect(report.components.redis).toMatchObject({ status: 'disabled', message: 'not configured' });
    expect(report.components.database?.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('turns a throwing check into a down component and a degraded report', async () => {
    const health = createHealthRegistry();
    health.register('database', async () => {
      throw new Error('connection refused');
    });
    const report = await health.check();
    expect(report).toMatchObject({ status: 'degraded', components: { database: { status: 'down', error: 'connection refused' } } });
  });

  it('counts a check that hangs past timeoutMs as down', async () => {
    const health = createHealthRegistry({ timeoutMs: 20 });
    health.register('slow', () => new Promise(() => {}));
    const report = await health.check();
    expect(report.components.slow).toMatchObject({ status: 'down', error: expect.stringMatching(/within 20 ms/) });
  });

  it('refuses a duplicate name and lets a check be removed', async () => {
    const health = createHealthRegistry();
    const remove = health.register('a', () => ({ status: 'ok' }));
    expect(() => health.register('a', () => ({ status: 'ok' }))).toThrow(/already registered/);
    remove();
    expect((await health.check()).components).toEqual({});
  });

  it('rejects a bad timeoutMs naming the option', () => {
    expect(() => createHealthRegistry({ timeoutMs: -1 })).toThrow(/timeoutMs must be a positive number/);
  });
});
