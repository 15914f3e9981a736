import { afterEach, describe, expect, it } from 'vitest';
import { createFakeClock, createManualClock, createRecordingMeter, settle, until } from '@aikb/test-support';
import { createInProcessInvalidationBus, type InvalidationBus, type InvalidationBusState, type InvalidationMessage } from '../cache';
import { AikbError, NotFoundError, ValidationError } from '../errors';
import { createFeatureFlagClient, createMemoryFlagStore, rolloutBucket, type FeatureFlagClient, type FeatureFlagClientOptions, type FlagStore } from './index';

const fakeClock = () => createManualClock(Date.UTC(2026, 1, 1, 12, 0, 0));

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

/**
 * A bus driven by the test, shared by every client given it: `setState` plays an outage,
 * `failPublishes` a publish that fails while the bus still says connected.
 */
function scriptedBus(): InvalidationBus & { setState(state: InvalidationBusState): void; failPublishes: boolean } {
  const handlers = new Set<(m: InvalidationMessage) => void>();
  const stateListeners = new Set<(s: InvalidationBusState) => void>();
  let state: InvalidationBusState = 'connected';
  return {
    kind: 'scripted',
    failPublishes: false,
    get state() {
      return state;
    },
    async publish(message) {
      if (state !== 'connected' || this.failPublishes) throw new Error('down');
      const copy = JSON.parse(JSON.stringify(message)) as InvalidationMessage;
      queueMicrotask(() => handlers.forEach((h) => h(copy)));
    },
    subscribe: (h) => (handlers.add(h), () => void handlers.delete(h)),
    onStateChange: (l) => (stateListeners.add(l), () => void stateListeners.delete(l)),
    async close() {},
    setState(next) {
      state = next;
      stateListeners.forEach((l) => l(next));
    },
  };
}

/** A clock whose timers are fake: `advance` runs what falls due, letting the promises it starts settle. */
function fakeTimers() {
  const clock = createFakeClock();
  return { clock, pending: () => clock.pending(), settle, advance: (ms: number) => clock.tick(ms) };
}

describe('FeatureFlagClient', () => {
  describe('metrics', () => {
    it('reports evaluations by flag and result, cache hits and misses, stale and degraded through its meter, read at collection time', async () => {
      const recording = createRecordingMeter();
      const store = createMemoryFlagStore();
      await store.put('checkout', { enabled: true, rolloutPercentage: 100 }, 't');
      await store.put('legacy', { enabled: false, rolloutPercentage: 100 }, 't');
      const bus = scriptedBus();
      const flags = await client({ store, bus, meter: recording.meter });
      flags.isEnabled('checkout');
      flags.evaluate('checkout');
      flags.isEnabled('legacy');
      flags.isEnabled('unknown');
      expect(await recording.points('aikb.feature_flag.evaluations')).toEqual(
        expect.arrayContaining([
          { attributes: { flag: 'checkout', result: 'enabled' }, value: 2 },
          { attributes: { flag: 'legacy', result: 'disabled' }, value: 1 },
        ]),
      );
      expect(await recording.total('aikb.feature_flag.evaluations')).toBe(3);
      expect(await recording.points('aikb.cache.requests')).toEqual(
        expect.arrayContaining([
          { attributes: { cache: 'feature_flags', result: 'hit' }, value: 3 },
          { attributes: { cache: 'feature_flags', result: 'miss' }, value: 1 },
        ]),
      );
      expect(await recording.total('aikb.feature_flag.stale')).toBe(0);
      expect(await recording.total('aikb.feature_flag.propagation_degraded')).toBe(0);
      bus.setState('disconnected');
      await settle();
      expect(await recording.total('aikb.feature_flag.stale')).toBe(1);
      expect(await recording.total('aikb.feature_flag.propagation_degraded')).toBe(1);
      // Closed: the callback is gone, so an evaluation after close is not observed.
      await flags.close();
      flags.isEnabled('checkout');
      expect(await recording.points('aikb.feature_flag.evaluations')).not.toContainEqual({ attributes: { flag: 'checkout', result: 'enabled' }, value: 3 });
      await recording.shutdown();
    });

    it('rejects a meter that is not one, naming the option', () => {
      expect(() => createFeatureFlagClient({ store: createMemoryFlagStore(), meter: 'meter' as never })).toThrow(
        /createFeatureFlagClient: meter must be an OpenTelemetry Meter/,
      );
    });
  });

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
      expect(flags.stats()).toMatchObject({ evaluations: { counted: { enabled: 2, disabled: 0 } }, cache: { hits: 2, misses: 1 } });
    });
  });

  describe('cache', () => {
    it('reloads a flag after the TTL without waiting, picking up a change made behind its back', async () => {
      const time = fakeClock();
      const store = createMemoryFlagStore();
      await store.put('ttl', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store, clock: time, cacheTtlMs: 300_000 });
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
      const flags = await client({ store, clock: time, cacheTtlMs: 60_000 });
      store.down = true;
      time.advance(61_000);
      expect(flags.isEnabled('sticky')).toBe(true);
      await settle();
      expect(flags.isEnabled('sticky')).toBe(true);
      expect(flags.evaluate('sticky')).toMatchObject({ value: true, stale: true, cacheAgeMs: 61_000 });
      await expect(flags.refresh()).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.not.stringMatching(/ECONNREFUSED/) });
      // The store's text is for the operator's status report, not the error a client may see.
      expect(flags.stats()).toMatchObject({ stale: true, lastRefreshError: expect.stringMatching(/ECONNREFUSED/) });
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
      const flags = await client({ store, clock: time, cacheTtlMs: 1000 });
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
      expect(await flags.invalidate(['feature_flags:priority_2_*'])).toEqual([
        'feature_flags:priority_2_1_saga_pattern',
        'feature_flags:priority_2_2_rbac_api_filtering',
      ]);
      expect(flags.isEnabled('priority_2_1_saga_pattern')).toBe(false);
      expect(await flags.invalidate(['feature_flags:priority_1_3_constant_time_auth'])).toEqual(['feature_flags:priority_1_3_constant_time_auth']);
      expect((await flags.invalidate(['feature_flags:*'])).length).toBe(3);
    });

    it.each([[[]], [['priority_1']], [['feature_flags:']], [['feature_flags:BAD NAME']], ['feature_flags:*']])(
      'rejects invalidate(%j) naming the field',
      async (keys) => {
        const flags = await client({ store: createMemoryFlagStore() });
        await expect(flags.invalidate(keys as string[])).rejects.toBeInstanceOf(ValidationError);
      },
    );

    it('reports its state in one plain-JSON stats(): cache ages per flag and overall, TTL, counters, bus and propagation', async () => {
      const time = fakeClock();
      const store = createMemoryFlagStore();
      await store.put('a', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store, clock: time, cacheTtlMs: 300_000 });
      time.advance(45_000);
      flags.isEnabled('a');
      flags.isEnabled('missing');
      const stats = flags.stats();
      expect(stats).toEqual({
        flags: 1,
        cache: { size: 1, staleEntries: 0, ageMs: 45_000, ttlMs: 300_000, hits: 1, misses: 1, flags: { a: { ageMs: 45_000, stale: false } } },
        evaluations: { a: { enabled: 1, disabled: 0 } },
        bus: { kind: 'none', state: 'none' },
        stale: false,
        propagation: { bus: 'none', status: 'none', convergesWithinMs: 300_000 },
        polling: false,
        lastRefresh: new Date(Date.UTC(2026, 1, 1, 12, 0, 0)).toISOString(),
        lastRefreshError: undefined,
      });
      expect(JSON.parse(JSON.stringify(stats))).toEqual(JSON.parse(JSON.stringify({ ...stats })));
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
      expect(error).toBeInstanceOf(NotFoundError);
      expect(error).toMatchObject({ key: 'priority_2_1', similar: ['priority_2_1_saga_pattern'] });
      const none = await flags.updateFlag('priority_2_3', { rolloutPercentage: 0 }).catch((e: unknown) => e);
      expect((none as AikbError).message).toMatch(/no flag name starts with "priority_2_3"/);
      expect((await store.get('priority_2_1_saga_pattern'))?.rolloutPercentage).toBe(100);
    });

    it('fails with UNAVAILABLE when the store is down, changing nothing', async () => {
      const store = outageStore(createMemoryFlagStore());
      await store.put('f', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store });
      store.down = true;
      const error = (await flags.updateFlag('f', { enabled: false }).catch((e: unknown) => e)) as AikbError;
      expect(error).toMatchObject({ code: 'UNAVAILABLE' });
      // The driver's words stay in `cause` (for the log), never in the message a caller may show.
      expect(error.message).not.toMatch(/ECONNREFUSED|5432/);
      expect(String((error.cause as Error).message)).toMatch(/ECONNREFUSED/);
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

  describe('updateFlags', () => {
    it('rolls every flag matching a glob back to 0%, recording the previous values, and publishes each change', async () => {
      const store = createMemoryFlagStore();
      await store.put('priority_1_3_auth', { enabled: true, rolloutPercentage: 100 }, 't');
      await store.put('priority_2_1_saga', { enabled: true, rolloutPercentage: 40 }, 't');
      await store.put('priority_2_2_off', { enabled: true, rolloutPercentage: 0 }, 't');
      await store.put('other', { enabled: true, rolloutPercentage: 100 }, 't');
      const bus = createInProcessInvalidationBus();
      const a = await client({ store, bus });
      const b = await client({ store, bus });
      expect(b.isEnabled('priority_2_1_saga', { userId: 'u' })).toBe(rolloutBucket('priority_2_1_saga', 'u') <= 40);
      const changes = await a.updateFlags('priority_*', { rolloutPercentage: 0 }, { actor: 'rollback:ops' });
      expect(changes.map((c) => [c.name, c.before?.rolloutPercentage, c.after.rolloutPercentage, c.actor])).toEqual([
        ['priority_1_3_auth', 100, 0, 'rollback:ops'],
        ['priority_2_1_saga', 40, 0, 'rollback:ops'],
      ]);
      expect(b.isEnabled('priority_1_3_auth')).toBe(false);
      expect(b.isEnabled('priority_2_1_saga', { userId: 'u' })).toBe(false);
      expect(b.isEnabled('other')).toBe(true);
      expect(await a.updateFlags('priority_*', { rolloutPercentage: 0 })).toEqual([]);
      expect(await a.updateFlags('nothing_*', { rolloutPercentage: 0 })).toEqual([]);
    });

    it('applies the patch one flag at a time on a store without updateMany', async () => {
      const inner = createMemoryFlagStore();
      await inner.put('p_a', { enabled: true, rolloutPercentage: 30 }, 't');
      await inner.put('p_b', { enabled: true, rolloutPercentage: 0 }, 't');
      const flags = await client({ store: { ...inner, updateMany: undefined } });
      const changes = await flags.updateFlags('p_?', { rolloutPercentage: 0 }, { actor: 'ops' });
      expect(changes).toEqual([expect.objectContaining({ name: 'p_a', before: expect.objectContaining({ rolloutPercentage: 30 }), actor: 'ops' })]);
      expect((await inner.history('p_a'))[0]).toMatchObject({ version: changes[0]!.version, after: { rolloutPercentage: 0 } });
    });

    it.each([
      ['', 'pattern'],
      ['Priority_*', 'pattern'],
      ['priority_*', 'rolloutPercentage', { rolloutPercentage: 101 }],
      ['priority_*', 'body', {}],
    ])('rejects pattern %j naming %s, changing nothing', async (pattern, field, patch: object = { rolloutPercentage: 0 }) => {
      const store = createMemoryFlagStore();
      await store.put('priority_x', { enabled: true, rolloutPercentage: 100 }, 't');
      const flags = await client({ store });
      await expect(flags.updateFlags(pattern, patch as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field });
      expect(await store.history('priority_x')).toHaveLength(1);
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
      const bus = scriptedBus();
      const store = createMemoryFlagStore();
      await store.put('resync', { enabled: true, rolloutPercentage: 100 }, 't');
      const time = fakeTimers();
      const flags = await client({ store, bus, clock: time.clock });
      expect(flags.stats()).toMatchObject({ stale: false, bus: { kind: 'scripted', state: 'connected' } });
      bus.setState('disconnected');
      await time.settle();
      await store.update('resync', { enabled: false }, 'another instance');
      expect(flags.stats().stale).toBe(true);
      expect(flags.evaluate('resync')).toMatchObject({ value: true, stale: true });
      bus.setState('connected');
      await until(() => !flags.isEnabled('resync'), 'resync after reconnect');
      expect(flags.stats().stale).toBe(false);
    });
  });

  describe('while the bus is down or a publish fails', () => {
    const POLL_MS = 1000;

    async function pair(store: FlagStore = createMemoryFlagStore()) {
      const bus = scriptedBus();
      const time = fakeTimers();
      await store.put('outage', { enabled: true, rolloutPercentage: 100 }, 't');
      const a = await client({ store, bus, clock: time.clock, pollIntervalMs: POLL_MS });
      const b = await client({ store, bus, clock: time.clock, pollIntervalMs: POLL_MS });
      return { store, bus, time, a, b };
    }

    it('accepts a write through A and shows it on B within one poll interval, with no bus at all', async () => {
      const { bus, time, a, b } = await pair();
      bus.setState('disconnected');
      await time.settle();
      const changed: string[][] = [];
      b.onChange((names) => changed.push([...names]));

      const flag = await a.updateFlag('outage', { enabled: false });
      expect(flag.enabled).toBe(false);
      expect(a.propagation()).toEqual({ bus: 'scripted', status: 'degraded', convergesWithinMs: 2 * POLL_MS });
      expect(a.stats()).toMatchObject({ propagation: { status: 'degraded' }, polling: true });
      expect(b.isEnabled('outage')).toBe(true);

      await time.advance(POLL_MS);
      expect(b.isEnabled('outage')).toBe(false);
      expect(changed).toEqual([['outage']]);
      // A second change, a second convergence.
      await a.putFlag('outage', { enabled: true, rolloutPercentage: 0 });
      await time.advance(POLL_MS);
      expect(b.evaluate('outage')).toMatchObject({ reason: 'STATIC', rolloutPercentage: 0 });
    });

    it('polls only the cheap change marker while nothing changes', async () => {
      const inner = createMemoryFlagStore();
      const calls = { list: 0, changeMarker: 0 };
      const store: FlagStore = {
        ...inner,
        list: () => (calls.list++, inner.list()),
        changeMarker: () => (calls.changeMarker++, inner.changeMarker!()),
      };
      const { bus, time } = await pair(store);
      calls.list = 0;
      bus.setState('disconnected');
      await time.settle();
      await time.advance(10 * POLL_MS);
      // Both clients: one baseline reload each, then markers only.
      expect(calls.list).toBe(2);
      expect(calls.changeMarker).toBe(22);
    });

    it('reloads every flag on each poll from a store without a change marker', async () => {
      const inner = createMemoryFlagStore();
      const store: FlagStore = { ...inner, changeMarker: undefined };
      const { bus, time, a, b } = await pair(store);
      bus.setState('disconnected');
      await time.settle();
      await a.updateFlag('outage', { rolloutPercentage: 0 });
      await time.advance(POLL_MS);
      expect(b.evaluate('outage').rolloutPercentage).toBe(0);
    });

    it('stops polling after one reconciling reload once the bus is back', async () => {
      const { bus, time, a, b } = await pair();
      bus.setState('disconnected');
      await time.settle();
      await time.advance(3 * POLL_MS);
      expect(time.pending()).toBe(2);
      await a.updateFlag('outage', { enabled: false });
      bus.setState('connected');
      await time.settle();
      // Reconciled at once, not a poll interval later.
      expect(b.isEnabled('outage')).toBe(false);
      expect(time.pending()).toBe(0);
      expect(b.stats()).toMatchObject({ polling: false, stale: false, propagation: { status: 'ok', convergesWithinMs: 0 } });
      expect(a.propagation().status).toBe('ok');
    });

    it('retries a failed publish until it goes out, for instances whose bus never went down', async () => {
      const { bus, time, a, b } = await pair();
      bus.failPublishes = true;
      await a.updateFlag('outage', { enabled: false });
      expect(a.propagation().status).toBe('degraded');
      expect(b.stats().polling).toBe(false);
      await time.advance(POLL_MS);
      expect(b.isEnabled('outage')).toBe(true);
      bus.failPublishes = false;
      await time.advance(POLL_MS);
      expect(b.isEnabled('outage')).toBe(false);
      expect(a.propagation().status).toBe('ok');
      expect(time.pending()).toBe(0);
    });

    it('keeps serving the last known values while the store is down too, and converges when it is back', async () => {
      const store = outageStore(createMemoryFlagStore());
      const { bus, time, a, b } = await pair(store);
      bus.setState('disconnected');
      await time.settle();
      await a.updateFlag('outage', { enabled: false });
      store.down = true;
      await time.advance(3 * POLL_MS);
      expect(b.isEnabled('outage')).toBe(true);
      store.down = false;
      await time.advance(POLL_MS);
      expect(b.isEnabled('outage')).toBe(false);
    });

    it('says that there is no propagation without a bus', async () => {
      const flags = await client({ store: createMemoryFlagStore(), cacheTtlMs: 60_000 });
      expect(flags.propagation()).toEqual({ bus: 'none', status: 'none', convergesWithinMs: 60_000 });
    });
  });

  it.each([
    [{}, /store must be a FlagStore/],
    [{ store: createMemoryFlagStore(), cacheTtlMs: 0 }, /^createFeatureFlagClient: cacheTtlMs must be a number > 0 \(got 0\)$/],
    [{ store: createMemoryFlagStore(), clock: 'now' }, /clock must be a Clock/],
    [{ store: createMemoryFlagStore(), clock: { now: () => 0 } }, /clock must be a Clock \(with a setTimeout\(\) method\)/],
    [{ store: createMemoryFlagStore(), bus: {} }, /bus must be an InvalidationBus/],
    [{ store: createMemoryFlagStore(), pollIntervalMs: 0 }, /pollIntervalMs must be a number ≥ 10/],
    [{ store: createMemoryFlagStore(), pollIntervalMs: Number.NaN }, /pollIntervalMs must be a number ≥ 10/],
  ])('rejects bad options naming them (%#)', (options, message) => {
    expect(() => createFeatureFlagClient(options as never)).toThrow(message);
  });
});
