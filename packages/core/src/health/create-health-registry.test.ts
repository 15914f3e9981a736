import { describe, expect, it, vi } from 'vitest';
import { systemClock, type Clock } from '../clock';
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

  it('times checks out and measures their latency on its clock (fake time here)', async () => {
    vi.useFakeTimers();
    try {
      const health = createHealthRegistry({ timeoutMs: 2000, clock: systemClock });
      health.register('slow', () => new Promise(() => {}));
      const pending = health.check();
      await vi.advanceTimersByTimeAsync(2000);
      expect((await pending).components.slow).toEqual({ status: 'down', error: 'check did not answer within 2000 ms', latencyMs: 2000 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a duplicate name and lets a check be removed', async () => {
    const health = createHealthRegistry();
    const remove = health.register('a', () => ({ status: 'ok' }));
    expect(() => health.register('a', () => ({ status: 'ok' }))).toThrow(/already registered/);
    remove();
    expect((await health.check()).components).toEqual({});
  });

  it('rejects a bad timeoutMs or clock naming the option', () => {
    expect(() => createHealthRegistry({ timeoutMs: -1 })).toThrow(/^createHealthRegistry: timeoutMs must be a number > 0 \(got -1\)$/);
    expect(() => createHealthRegistry({ clock: { now: () => 0 } as unknown as Clock })).toThrow(
      /^createHealthRegistry: clock must be a Clock \(with a setTimeout\(\) method\)/,
    );
  });
});
