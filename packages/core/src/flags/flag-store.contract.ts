import { beforeEach, describe, expect, it } from 'vitest';
import type { FlagStore } from './flags';

/**
 * The behaviour every {@link FlagStore} must have. Call it inside a `describe` with a factory
 * that returns a fresh, empty store (or one whose names do not collide between calls).
 */
export function describeFlagStoreContract(create: () => FlagStore | Promise<FlagStore>): void {
  describe('FlagStore contract', () => {
    let store: FlagStore;
    let n = 0;
    let name: (base: string) => string;
    beforeEach(async () => {
      store = await create();
      const run = ++n;
      name = (base) => `${base}_${run}`;
    });

    it('gives undefined for a flag it does not hold', async () => {
      expect(await store.get(name('missing'))).toBeUndefined();
      expect(await store.update(name('missing'), { enabled: true }, 'test')).toBeUndefined();
      expect(await store.history(name('missing'))).toEqual([]);
    });

    it('creates a flag with put, then replaces it, with increasing versions', async () => {
      const created = await store.put(name('a'), { enabled: true, rolloutPercentage: 10, description: 'first' }, 'alice');
      expect(created.created).toBe(true);
      expect(created.flag).toMatchObject({ name: name('a'), enabled: true, rolloutPercentage: 10, description: 'first' });
      expect(new Date(created.flag.lastUpdated).toISOString()).toBe(created.flag.lastUpdated);
      const replaced = await store.put(name('a'), { enabled: false, rolloutPercentage: 0 }, 'bob');
      expect(replaced.created).toBe(false);
      expect(replaced.flag).toMatchObject({ enabled: false, rolloutPercentage: 0, description: '' });
      expect(replaced.flag.version).toBeGreaterThan(created.flag.version);
      expect(await store.get(name('a'))).toEqual(replaced.flag);
      const [latest] = await store.history(name('a'));
      expect(latest).toMatchObject({
        before: { enabled: true, rolloutPercentage: 10, description: 'first' },
        after: { enabled: false, rolloutPercentage: 0 },
        actor: 'bob',
      });
    });

    it('updates only the fields given and records old → new, who and when', async () => {
      const { flag: before } = await store.put(name('b'), { enabled: true, rolloutPercentage: 10, description: 'saga' }, 'seed');
      const after = await store.update(name('b'), { rolloutPercentage: 50 }, 'ops');
      expect(after).toMatchObject({ enabled: true, rolloutPercentage: 50, description: 'saga' });
      expect(after!.version).toBeGreaterThan(before.version);
      const history = await store.history(name('b'));
      expect(history).toHaveLength(2);
      expect(history[0]).toMatchObject({
        name: name('b'),
        version: after!.version,
        before: { enabled: true, rolloutPercentage: 10, description: 'saga' },
        after: { enabled: true, rolloutPercentage: 50, description: 'saga' },
        actor: 'ops',
      });
      expect(history[1]).toMatchObject({ before: undefined, actor: 'seed', version: before.version });
      expect(await store.history(name('b'), { limit: 1 })).toHaveLength(1);
    });

    it('ensure creates a missing flag once and never overwrites', async () => {
      const first = await store.ensure(name('c'), { enabled: true, rolloutPercentage: 100 }, 'seed');
      await store.update(name('c'), { enabled: false }, 'ops');
      const second = await store.ensure(name('c'), { enabled: true, rolloutPercentage: 100 }, 'seed');
      expect(second.enabled).toBe(false);
      expect(second.version).toBeGreaterThan(first.version);
      expect(await store.history(name('c'))).toHaveLength(2);
    });

    it('lists every flag by name', async () => {
      await store.put(name('z'), { enabled: true, rolloutPercentage: 1 }, 't');
      await store.put(name('y'), { enabled: true, rolloutPercentage: 2 }, 't');
      const names = (await store.list()).map((f) => f.name);
      expect(names).toEqual(expect.arrayContaining([name('y'), name('z')]));
      expect(names.indexOf(name('y'))).toBeLessThan(names.indexOf(name('z')));
    });

    it('moves the change marker with every write, and only then', async () => {
      const marker = () => store.changeMarker!();
      const m0 = await marker();
      await store.put(name('m'), { enabled: true, rolloutPercentage: 5 }, 't');
      const m1 = await marker();
      expect(m1).toBeGreaterThan(m0);
      await store.update(name('m'), { enabled: false }, 't');
      const m2 = await marker();
      expect(m2).toBeGreaterThan(m1);
      await store.ensure(name('m2'), { enabled: true, rolloutPercentage: 5 }, 't');
      const m3 = await marker();
      expect(m3).toBeGreaterThan(m2);
      // Nothing written: the marker stays, so a polling client reloads nothing.
      await store.ensure(name('m2'), { enabled: false, rolloutPercentage: 0 }, 't');
      await store.update(name('missing'), { enabled: true }, 't');
      await store.get(name('m'));
      await store.list();
      expect(await marker()).toBe(m3);
    });

    it('moves the change marker once per write when writes run concurrently', async () => {
      const before = await store.changeMarker!();
      await store.put(name('c0'), { enabled: true, rolloutPercentage: 1 }, 't');
      await store.put(name('c1'), { enabled: true, rolloutPercentage: 1 }, 't');
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          i % 3 === 0
            ? store.put(name(`c${i % 2}`), { enabled: true, rolloutPercentage: i }, 't')
            : store.update(name(`c${i % 2}`), { rolloutPercentage: i }, 't'),
        ),
      );
      expect(await store.changeMarker!()).toBe(before + 14);
    });

    it('updateMany changes every named flag the patch changes, one audit record each, and skips the rest', async () => {
      const { flag: a } = await store.put(name('ra'), { enabled: true, rolloutPercentage: 50, description: 'a' }, 'seed');
      await store.put(name('rb'), { enabled: false, rolloutPercentage: 0 }, 'seed');
      await store.put(name('rc'), { enabled: true, rolloutPercentage: 100 }, 'seed');
      const marker = await store.changeMarker!();
      const changes = await store.updateMany!([name('rc'), name('ra'), name('rb'), name('missing'), name('ra')], { rolloutPercentage: 0 }, 'rollback:ops');
      expect(changes.map((c) => [c.name, c.before?.rolloutPercentage, c.after.rolloutPercentage, c.actor])).toEqual([
        [name('ra'), 50, 0, 'rollback:ops'],
        [name('rc'), 100, 0, 'rollback:ops'],
      ]);
      expect(changes[0]!.after).toEqual({ enabled: true, rolloutPercentage: 0, description: 'a' });
      expect(changes[0]!.version).toBeGreaterThan(a.version);
      expect(await store.get(name('ra'))).toMatchObject({ rolloutPercentage: 0, version: changes[0]!.version, lastUpdated: changes[0]!.at });
      expect((await store.history(name('ra')))[0]).toEqual(changes[0]);
      expect(await store.history(name('rb'))).toHaveLength(1);
      expect(await store.changeMarker!()).toBeGreaterThan(marker);
      // Nothing left to change: nothing written, the marker stays.
      const again = await store.changeMarker!();
      expect(await store.updateMany!([name('ra'), name('rb'), name('rc')], { rolloutPercentage: 0 }, 'ops')).toEqual([]);
      expect(await store.changeMarker!()).toBe(again);
    });

    it('keeps versions strictly increasing across flags', async () => {
      const versions: number[] = [];
      for (const base of ['v1', 'v2', 'v1', 'v3']) versions.push((await store.put(name(base), { enabled: true, rolloutPercentage: 5 }, 't')).flag.version);
      for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
    });
  });
}
