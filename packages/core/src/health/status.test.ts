import { describe, expect, it } from 'vitest';
import { createStatusRegistry } from './index';

describe('createStatusRegistry', () => {
  it('lists every registered subsystem in registration order', async () => {
    const status = createStatusRegistry();
    status.register('auth', () => ({ floorMs: 500 }));
    status.register('flags', async () => ({ cached: 3 }));
    const collected = await status.collect();
    expect(collected).toEqual({ auth: { floorMs: 500 }, flags: { cached: 3 } });
    expect(Object.keys(collected)).toEqual(['auth', 'flags']);
  });

  it('reports a failing provider as an error instead of throwing', async () => {
    const status = createStatusRegistry();
    status.register('broken', () => {
      throw new Error('store unreachable');
    });
    expect(await status.collect()).toEqual({ broken: { error: 'store unreachable' } });
  });

  it('refuses a duplicate name and lets a provider be removed', async () => {
    const status = createStatusRegistry();
    const remove = status.register('a', () => ({}));
    expect(() => status.register('a', () => ({}))).toThrow(/already registered/);
    remove();
    expect(await status.collect()).toEqual({});
  });
});
