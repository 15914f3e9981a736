import { afterEach, describe, expect, it } from 'vitest';
import { until } from '@aikb/test-support';
import type { InvalidationBus, InvalidationMessage } from './cache';

/**
 * The behaviour every {@link InvalidationBus} must have. `connect` returns two buses that share a
 * channel, as two instances of a service would (for the in-process bus: the same bus twice).
 */
export function describeInvalidationBusContract(connect: () => Promise<[InvalidationBus, InvalidationBus]>): void {
  describe('InvalidationBus contract', () => {
    const open: InvalidationBus[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((bus) => bus.close()));
    });

    async function pair(): Promise<[InvalidationBus, InvalidationBus]> {
      const buses = await connect();
      open.push(...buses);
      await until(() => buses.every((bus) => bus.state === 'connected'), 'both buses connected');
      return buses;
    }

    it('delivers a published message to subscribers on both ends, in order', async () => {
      const [a, b] = await pair();
      const seenA: InvalidationMessage[] = [];
      const seenB: InvalidationMessage[] = [];
      a.subscribe((m) => seenA.push(m));
      b.subscribe((m) => seenB.push(m));
      await a.publish({ key: 'feature_flags:x', version: 3, value: { name: 'x', enabled: true } });
      await a.publish({ key: 'feature_flags:*', version: 0 });
      await until(() => seenB.length === 2 && seenA.length === 2, 'delivery');
      expect(seenB).toEqual([
        { key: 'feature_flags:x', version: 3, value: { name: 'x', enabled: true } },
        { key: 'feature_flags:*', version: 0 },
      ]);
      expect(seenA).toEqual(seenB);
    });

    it('stops delivering to an unsubscribed handler', async () => {
      const [a, b] = await pair();
      const kept: InvalidationMessage[] = [];
      const dropped: InvalidationMessage[] = [];
      b.subscribe((m) => kept.push(m));
      const off = b.subscribe((m) => dropped.push(m));
      off();
      await a.publish({ key: 'feature_flags:y', version: 1 });
      await until(() => kept.length === 1, 'delivery');
      expect(dropped).toEqual([]);
    });

    it('keeps delivering when one handler throws', async () => {
      const [a, b] = await pair();
      const seen: string[] = [];
      b.subscribe(() => {
        throw new Error('handler bug');
      });
      b.subscribe((m) => seen.push(m.key));
      await a.publish({ key: 'feature_flags:z', version: 2 });
      await until(() => seen.length === 1, 'delivery');
    });

    it('rejects a malformed message with a TypeError and publishing after close', async () => {
      const [a] = await pair();
      await expect(a.publish({ key: '', version: 1 })).rejects.toThrow(TypeError);
      await expect(a.publish({ key: 'k', version: -1 })).rejects.toThrow(TypeError);
      const states: string[] = [];
      a.onStateChange((s) => states.push(s));
      await a.close();
      expect(a.state).toBe('closed');
      expect(states).toEqual(['closed']);
      await expect(a.publish({ key: 'k', version: 1 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    });
  });
}
