import { afterEach, describe, expect, it } from 'vitest';
import { createInProcessInvalidationBus, type InvalidationBus, type InvalidationBusState, type InvalidationMessage } from '../cache';
import { until } from '../cache/invalidation-bus.contract';
import { AikbError, ValidationError } from '../errors';
import { createFeatureFlagClient, createMemoryFlagStore, rolloutBucket, type FeatureFlagClient, type FeatureFlagClientOptions, type FlagStore } from './index';

function fakeClock(start = Date.UTC(2026, 1, 1, 12, 0, 0)) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** A store that can be switched off, to play an outage. */
function outageStore(inner: FlagStore): FlagStore & { down: boolean; reads: number } {
  const wrapped = { down: false, reads: 0 } as FlagStore & { down: boolean; reads: number };
  for (const method of ['get', 'list', 'put', 'update', 'ensure', 'history'] as const) {
    (wrapped as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      wrapped.reads++;
      if (wrapped.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      return (inner[method] as (...a: unknown[]) => unknown)(...args);
    };
  }
  return wrapped;
}

const clients: FeatureFlagClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function client(options: FeatureFlagClientOptions): Promise<FeatureFlagClient> {
  const c = createFeatureFlagClient(options);
  clients.push(c);
  await c.start();
  return c;
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('FeatureFlagClient', () => {
  describe('isEnabled', () => {
    it('gives the caller default for an unknown flag, never throwing', async () => {
      const flags = await client({ store: createMemoryFlagStore() });
      expect(flags.isEnabled('nope')).toBe(false);
      expect(flags.isEnabled('nope', { userId: 'u' }, true)).toBe(true);
      expect(flags.isEnabled('NOT A VALID NAME', {}, true)).toBe(true);
      expect(flags.isEnabled(undefined as unknown as string)).toBe(false);
      expect(flags.evaluate('nope')).toMatchObject({ value: false, reason: 'DEFAULT' });
    });

    it('is enabled when enabled and bucket <= rolloutPercentage', async () => {
      const store = createMemoryFlagStore();
      await store.put('beta', { enabled: true, rolloutPercentage: 90 }, 't');
      const flags = await client({ store });
      // bucket('beta', 'alice') = 96, bucket('beta', 'bob') = 85
      expect(flags.isEnabled('beta', { userId: 'alice' })).toBe(false);
      expect(flags.isEnabled('beta', { userId: 'bob' })).toBe(true);
      expect(flags.evaluate('beta', { userId: 'bob' })).toMatchObject({ value: true, reason: 'SPLIT', bucket: 85, rolloutPercentage: 90 });
    });

    it('keeps a user enabled when rollout grows from 10% to 50% to 100%', async () => {
      const store = createMemoryFlagStore();
      await store.put('rollout', { enabled: true, rolloutPercentage: 10 }, 't');
      const flags = await client({ store });
      const users = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
      const at = (): Set<string> => new Set(users.filter((userId) => flags.isEnabled('rollout', { userId })));
      const at10 = at();
      await flags.updateFlag('rollout', { rolloutPercentage: 50 });
      const at50 = at();
      await flags.updateFlag('rollout', { rolloutPercentage: 100 });
      const at100 = at();
      for (const user of at10) expect(at50.has(user)).toBe(true);
      expect(at10.size).toBeGreaterThan(100);
      expect(at10.size).toBeLessThan(300);
      expect(at50.size).toBeGreaterThan(850);
      expect(at50.size).toBeLessThan(1150);
      expect(at100.size).toBe(2000);
      expect([...at10].every((u) => rolloutBucket('rollout', u) <= 10)).toBe(true);
    });

    it('is exact at 0% and 100% without a userId and draws at random in between', async () => {
      const store = createMemoryFlagStore();
      await store.put('all', { enabled: true, rolloutPercentage: 100 }, 't');
      await store.put('none', { enabled: true, rolloutPercentage: 0 }, 't');
      await store.put('half', { enabled: true, rolloutPercentage: 50 }, 't');
      await store.put('off', { enabled: false, rolloutPercentage: 100 }, 't');
      let draw = 0.3;
      const flags = await client({ store, random: () => draw });
      expect(flags.isEnabled('all')).toBe(true);
      expect(flags.isEnabled('none')).toBe(false);
      expect(flags.isEnabled('off')).toBe(false);
      expect(flags.isEnabled('half')).toBe(true);
      draw = 0.7;
      expect(flags.isEnabled('half')).toBe(false);
      expect(flags.evaluate('half').reason).toBe('RANDOM');
      expect(flags.evaluate('off').reason).toBe('DISABLED');
      expect(flags.evaluate('all').reason).toBe('STATIC');
    });

    it('counts evaluations per flag and result, and cache hits and misses', async () => {
      const store = createMemoryFlagStore();
      await store.put('counted', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store });
      flags.isEnabled('counted');
      flags.isEnabled('counted');
      flags.isEnabled('missing');
      expect(flags.stats()).toEqual({ evaluations: { counted: { enabled: 2, disabled: 0 } }, cache: { hits: 2, misses: 1 } });
    });
  });

  describe('cache', () => {
    it('reloads a flag after the TTL without waiting, picking up a change made behind its back', async () => {
      const time = fakeClock();
      const store = createMemoryFlagStore();
      await store.put('ttl', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store, clock: time.now, cacheTtlSeconds: 300 });
      await store.update('ttl', { enabled: false }, 'someone else');
      time.advance(299_000);
      expect(flags.isEnabled('ttl')).toBe(true);
      time.advance(1_000);
      // Expired: served once more while the reload runs in the background.
      expect(flags.isEnabled('ttl')).toBe(true);
      await settle();
      expect(flags.isEnabled('ttl')).toBe(false);
    });

    it('serves the last known value, flagged stale, while the store is down', async () => {
      const time = fakeClock();
      const store = outageStore(createMemoryFlagStore());
      await store.put('sticky', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store, clock: time.now, cacheTtlSeconds: 60 });
      store.down = true;
      time.advance(61_000);
      expect(flags.isEnabled('sticky')).toBe(true);
      await settle();
      expect(flags.isEnabled('sticky')).toBe(true);
      expect(flags.evaluate('sticky')).toMatchObject({ value: true, stale: true, cacheAgeSeconds: 61 });
      await expect(flags.refresh()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      expect(flags.status()).toMatchObject({ stale: true, lastRefreshError: expect.stringMatching(/ECONNREFUSED/) });
      store.down = false;
      time.advance(1_000);
      flags.isEnabled('sticky');
      await settle();
      expect(flags.evaluate('sticky').stale).toBe(false);
    });

    it('does not hammer a store that is down: one retry per second per flag', async () => {
      const time = fakeClock();
      const store = outageStore(createMemoryFlagStore());
      await store.put('f', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store, clock: time.now, cacheTtlSeconds: 1 });
      store.down = true;
      time.advance(2_000);
      const before = store.reads;
      for (let i = 0; i < 100; i++) flags.isEnabled('f');
      await settle();
      for (let i = 0; i < 100; i++) flags.isEnabled('f');
      expect(store.reads - before).toBe(1);
    });

    it('invalidates exact keys and globs, reloading at once', async () => {
      const store = createMemoryFlagStore();
      for (const name of ['priority_2_1_saga_pattern', 'priority_2_2_rbac_api_filtering', 'priority_1_3_constant_time_auth']) {
        await store.put(name, { enabled: true, rolloutPercentage: 100 }, 't');
      }
      const flags = await client({ store });
      await store.update('priority_2_1_saga_pattern', { enabled: false }, 'sql');
      expect(await flags.invalidate(['feature_flags:priority_2_*'])).toEqual(['feature_flags:priority_2_1_saga_pattern', 'feature_flags:priority_2_2_rbac_api_filtering']);
      expect(flags.isEnabled('priority_2_1_saga_pattern')).toBe(false);
      expect(await flags.invalidate(['feature_flags:priority_1_3_constant_time_auth'])).toEqual(['feature_flags:priority_1_3_constant_time_auth']);
      expect((await flags.invalidate(['feature_flags:*'])).length).toBe(3);
    });

    it.each([[[]], [['priority_1']], [['feature_flags:']], [['feature_flags:BAD NAME']], ['feature_flags:*']])('rejects invalidate(%j) naming the field', async (keys) => {
      const flags = await client({ store: createMemoryFlagStore() });
      await expect(flags.invalidate(keys as string[])).rejects.toBeInstanceOf(ValidationError);
    });

    it('reports cache age per flag and overall with the TTL', async () => {
      const time = fakeClock();
      const store = createMemoryFlagStore();
      await store.put('a', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store, clock: time.now, cacheTtlSeconds: 300 });
      time.advance(45_000);
      expect(flags.cacheInfo()).toEqual({ secondsSinceUpdate: 45, ttl: 300, flags: { a: { secondsSinceUpdate: 45, ttl: 300, stale: false } } });
    });
  });

  describe('updateFlag', () => {
    it.each([
      [{ rolloutPercentage: 150 }, 'rolloutPercentage'],
      [{ rolloutPercentage: -1 }, 'rolloutPercentage'],
      [{ rolloutPercentage: '50' }, 'rolloutPercentage'],
      [{ rolloutPercentage: 50.5 }, 'rolloutPercentage'],
      [{ enabled: 'yes' }, 'enabled'],
      [{ description: 5 }, 'description'],
      [{ rolloutPercentage: 10, owner: 'me' }, 'owner'],
      [{}, 'body'],
      [[], 'body'],
      ['{"rolloutPercentage": 10}', 'body'],
      [null, 'body'],
    ])('rejects %j with a ValidationError naming %s, changing nothing', async (patch, field) => {
      const store = createMemoryFlagStore();
      const { flag } = await store.put('strict', { enabled: true, rolloutPercentage: 20 }, 't');
      const flags = await client({ store });
      await expect(flags.updateFlag('strict', patch as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field });
      expect(await store.get('strict')).toEqual(flag);
      expect(await store.history('strict')).toHaveLength(1);
    });

    it('answers an unknown flag with NOT_FOUND listing the flags that start with the name', async () => {
      const store = createMemoryFlagStore();
      await store.put('priority_2_1_saga_pattern', { enabled: true, rolloutPercentage: 100 }, 't');
      await store.put('priority_2_2_rbac_api_filtering', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store });
      const error = await flags.updateFlag('priority_2_1', { rolloutPercentage: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AikbError);
      expect(error).toMatchObject({ code: 'NOT_FOUND', details: { name: 'priority_2_1', similar: ['priority_2_1_saga_pattern'] } });
      const none = await flags.updateFlag('priority_2_3', { rolloutPercentage: 0 }).catch((e: unknown) => e);
      expect((none as AikbError).message).toMatch(/no flag name starts with "priority_2_3"/);
      expect((await store.get('priority_2_1_saga_pattern'))?.rolloutPercentage).toBe(100);
    });

    it('fails with UNAVAILABLE when the store is down, changing nothing', async () => {
      const store = outageStore(createMemoryFlagStore());
      await store.put('f', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store });
      store.down = true;
      await expect(flags.updateFlag('f', { enabled: false })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      expect(flags.isEnabled('f')).toBe(true);
    });

    it('creates with putFlag only, and records who changed what', async () => {
      const store = createMemoryFlagStore();
      const flags = await client({ store });
      await expect(flags.putFlag('new_flag', { enabled: true } as never)).rejects.toMatchObject({ field: 'rolloutPercentage' });
      const { created, flag } = await flags.putFlag('new_flag', { enabled: true, rolloutPercentage: 10, description: 'd' }, { actor: 'ops' });
      expect(created).toBe(true);
      expect(flags.isEnabled('new_flag', { userId: 'x' })).toBe(rolloutBucket('new_flag', 'x') <= 10);
      await flags.updateFlag('new_flag', { rolloutPercentage: 30 }, { actor: 'ops' });
      const history = await flags.history('new_flag');
      expect(history.map((c) => [c.before?.rolloutPercentage, c.after.rolloutPercentage, c.actor])).toEqual([
        [10, 30, 'ops'],
        [undefined, 10, 'ops'],
      ]);
      expect(history[1]!.version).toBe(flag.version);
    });
  });

  describe('across instances', () => {
    it('shows a change made through A on B as soon as the bus delivers it', async () => {
      const store = createMemoryFlagStore();
      await store.put('shared', { enabled: true, rolloutPercentage: 100 }, 't');
      const bus = createInProcessInvalidationBus();
      const a = await client({ store, bus });
      const b = await client({ store, bus });
      const changed: string[][] = [];
      b.onChange((names) => changed.push([...names]));
      await a.updateFlag('shared', { rolloutPercentage: 0 });
      await settle();
      expect(b.isEnabled('shared', { userId: 'u' })).toBe(false);
      expect(changed).toEqual([['shared']]);
      // Reloads that change nothing, and unknown flags, are not changes.
      await b.refresh();
      b.isEnabled('never_created');
      await settle();
      await b.refresh();
      expect(changed).toEqual([['shared']]);
    });

    it('never rolls a flag back on an out-of-order message', async () => {
      const store = createMemoryFlagStore();
      const bus = createInProcessInvalidationBus();
      const flags = await client({ store, bus });
      const v1 = (await store.put('ordered', { enabled: true, rolloutPercentage: 10 }, 't')).flag;
      const v2 = (await store.update('ordered', { rolloutPercentage: 90 }, 't'))!;
      await bus.publish({ key: 'feature_flags:ordered', version: v2.version, value: v2 });
      await bus.publish({ key: 'feature_flags:ordered', version: v1.version, value: v1 });
      await settle();
      expect(flags.evaluate('ordered')).toMatchObject({ rolloutPercentage: 90, version: v2.version });
    });

    it('reloads from the store instead of installing a malformed flag carried by a message', async () => {
      const store = createMemoryFlagStore();
      const bus = createInProcessInvalidationBus();
      const flags = await client({ store, bus });
      await store.put('guarded', { enabled: true, rolloutPercentage: 10 }, 't');
      const v2 = (await store.update('guarded', { rolloutPercentage: 20 }, 't'))!;
      await bus.publish({ key: 'feature_flags:guarded', version: v2.version, value: { ...v2, rolloutPercentage: 'all' } });
      await until(() => flags.evaluate('guarded').version === v2.version, 'reloaded from the store');
      expect(flags.evaluate('guarded').rolloutPercentage).toBe(20);
    });

    it('reports itself stale while the bus is disconnected and reloads everything when it is back', async () => {
      // A scripted bus, to drive the state machine exactly; the Redis kill test exercises the real one.
      const handlers = new Set<(m: InvalidationMessage) => void>();
      const stateListeners = new Set<(s: InvalidationBusState) => void>();
      let state: InvalidationBusState = 'connected';
      const bus: InvalidationBus = {
        kind: 'scripted',
        get state() {
          return state;
        },
        async publish() {
          if (state !== 'connected') throw new Error('down');
        },
        subscribe: (h) => (handlers.add(h), () => handlers.delete(h)),
        onStateChange: (l) => (stateListeners.add(l), () => stateListeners.delete(l)),
        async close() {},
      };
      const setState = (s: InvalidationBusState) => {
        state = s;
        stateListeners.forEach((l) => l(s));
      };
      const store = createMemoryFlagStore();
      await store.put('resync', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store, bus });
      expect(flags.status()).toMatchObject({ stale: false, bus: { kind: 'scripted', state: 'connected' } });
      setState('disconnected');
      await store.update('resync', { enabled: false }, 'another instance');
      expect(flags.status().stale).toBe(true);
      expect(flags.evaluate('resync')).toMatchObject({ value: true, stale: true });
      setState('connected');
      await until(() => !flags.isEnabled('resync'), 'resync after reconnect');
      expect(flags.status().stale).toBe(false);
    });
  });

  it.each([
    [{}, /store must be a FlagStore/],
    [{ store: createMemoryFlagStore(), cacheTtlSeconds: 0 }, /cacheTtlSeconds must be a positive number/],
    [{ store: createMemoryFlagStore(), clock: 'now' }, /clock must be a function/],
    [{ store: createMemoryFlagStore(), bus: {} }, /bus must be an InvalidationBus/],
  ])('rejects bad options naming them (%#)', (options, message) => {
    expect(() => createFeatureFlagClient(options as never)).toThrow(message);
  });
});
