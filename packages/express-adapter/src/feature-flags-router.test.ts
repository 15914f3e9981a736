import express from 'express';
import request from 'supertest';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  createFeatureFlagClient,
  createInProcessInvalidationBus,
  createMemoryFlagStore,
  rolloutBucket,
  type FeatureFlagClient,
  type FlagStore,
  type InvalidationBus,
  type InvalidationBusState,
} from '@aikb/core';
import { cacheRouter, errorHandler, featureFlagsRouter, notFound, ROLLBACK_ACTOR_PREFIX } from './index';

let store: FlagStore;
let flags: FeatureFlagClient;
let app: express.Express;

beforeEach(async () => {
  store = createMemoryFlagStore();
  await store.put('priority_2_1_saga_pattern', { enabled: true, rolloutPercentage: 100, description: 'Saga for uploads' }, 'seed');
  await store.put('priority_2_2_rbac_api_filtering', { enabled: true, rolloutPercentage: 100 }, 'seed');
  await store.put('priority_1_3_constant_time_auth', { enabled: true, rolloutPercentage: 100, description: 'Prevents timing attacks on auth' }, 'seed');
  flags = createFeatureFlagClient({ store });
  await flags.start();
  // As the reference server mounts them: no body parser in front, each router parses its own.
  app = express()
    .use('/api/admin/feature-flags', featureFlagsRouter({ flags, actor: () => 'test-admin' }))
    .use('/api/admin/cache', cacheRouter({ flags }))
    .use(notFound())
    .use(errorHandler());
});

const path = (name = 'priority_2_1_saga_pattern') => `/api/admin/feature-flags/${name}`;

describe('featureFlagsRouter', () => {
  it('GET /?include=cache-info gives a flag the cache does not hold yet a null cacheAge, whatever its name', async () => {
    // Written behind the client's back: listed from the store, not in this instance's cache.
    for (const name of ['constructor', 'tostring', 'valueof']) await store.put(name, { enabled: true, rolloutPercentage: 1 }, 'elsewhere');
    const res = await request(app).get('/api/admin/feature-flags?include=cache-info');
    const byName = Object.fromEntries(res.body.flags.map((f: { name: string; cacheAge: unknown }) => [f.name, f]));
    expect(byName.constructor).toMatchObject({ name: 'constructor', cacheAge: null });
  });

  it('POST /_rollback sets every flag matching rollbackFlags to rollout 0 in one call, answering the previous values', async () => {
    await store.put('priority_2_2_rbac_api_filtering', { enabled: true, rolloutPercentage: 40 }, 'ops');
    await store.put('priority_off', { enabled: true, rolloutPercentage: 0 }, 'ops');
    await store.put('other', { enabled: true, rolloutPercentage: 100 }, 'ops');
    const gated = express()
      .use('/api/admin/feature-flags', featureFlagsRouter({ flags, actor: () => 'test-admin', rollbackFlags: 'priority_*' }))
      .use(errorHandler());
    const res = await request(gated).post('/api/admin/feature-flags/_rollback');
    expect(res.status).toBe(200);
    expect(res.headers['aikb-propagation']).toBe('none');
    expect(res.body).toMatchObject({ pattern: 'priority_*', actor: `${ROLLBACK_ACTOR_PREFIX}test-admin`, propagation: { status: 'none' } });
    expect(
      res.body.rolledBack.map((f: { name: string; previousRolloutPercentage: number; rolloutPercentage: number }) => [
        f.name,
        f.previousRolloutPercentage,
        f.rolloutPercentage,
      ]),
    ).toEqual([
      ['priority_1_3_constant_time_auth', 100, 0],
      ['priority_2_1_saga_pattern', 100, 0],
      ['priority_2_2_rbac_api_filtering', 40, 0],
    ]);
    expect((await store.get('other'))?.rolloutPercentage).toBe(100);
    const [latest] = (await request(gated).get('/api/admin/feature-flags/priority_2_2_rbac_api_filtering/history')).body.history;
    expect(latest).toMatchObject({ actor: 'rollback:test-admin', before: { rolloutPercentage: 40 }, after: { rolloutPercentage: 0 } });
    // Again: nothing left to change.
    expect((await request(gated).post('/api/admin/feature-flags/_rollback')).body.rolledBack).toEqual([]);
  });

  it('rejects a rollbackFlags option that is not a string, naming it', () => {
    expect(() => featureFlagsRouter({ flags, rollbackFlags: 5 as never })).toThrow(/rollbackFlags/);
  });

  it('GET / lists every flag, and with include=cache-info the cache age and TTL', async () => {
    const res = await request(app).get('/api/admin/feature-flags');
    expect(res.status).toBe(200);
    expect(res.body.flags.map((f: { name: string }) => f.name)).toEqual([
      'priority_1_3_constant_time_auth',
      'priority_2_1_saga_pattern',
      'priority_2_2_rbac_api_filtering',
    ]);
    const info = await request(app).get('/api/admin/feature-flags?include=cache-info');
    expect(info.body.cacheAge).toEqual({ secondsSinceUpdate: expect.any(Number), ttl: 300 });
    expect(info.body.flags[0].cacheAge).toMatchObject({ ttl: 300, stale: false });
    const bad = await request(app).get('/api/admin/feature-flags?include=everything');
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('include');
  });

  it('GET /:name answers as the runbook shows', async () => {
    const res = await request(app).get(path('priority_1_3_constant_time_auth'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: 'priority_1_3_constant_time_auth',
      enabled: true,
      rolloutPercentage: 100,
      description: 'Prevents timing attacks on auth',
      lastUpdated: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
    });
  });

  it('GET /:name of an unknown flag is a 404 problem listing flags that start with the name', async () => {
    const res = await request(app).get(path('priority_2'));
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 404, name: 'priority_2', similar: ['priority_2_1_saga_pattern', 'priority_2_2_rbac_api_filtering'] });
  });

  it('POST /:name updates, records the change and returns the new flag', async () => {
    const res = await request(app).post(path()).send({ rolloutPercentage: 10 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'priority_2_1_saga_pattern', enabled: true, rolloutPercentage: 10 });
    expect(flags.evaluate('priority_2_1_saga_pattern').rolloutPercentage).toBe(10);
    const history = await request(app).get(`${path()}/history`);
    expect(history.body.history[0]).toMatchObject({ before: { rolloutPercentage: 100 }, after: { rolloutPercentage: 10 }, actor: 'test-admin' });
  });

  it('POST /:name takes the runbook curl without Content-Type (sent as form-urlencoded) as JSON', async () => {
    const res = await request(app).post(path()).set('content-type', 'application/x-www-form-urlencoded').send('{"rolloutPercentage": 0}');
    expect(res.status).toBe(200);
    expect(res.body.rolloutPercentage).toBe(0);
  });

  describe('POST /:name rejects bad input with a 400 problem naming the field, changing nothing', () => {
    const json = 'application/json';
    const form = 'application/x-www-form-urlencoded';
    it.each([
      ['rolloutPercentage 150', json, '{"rolloutPercentage": 150}', 'rolloutPercentage'],
      ['rolloutPercentage -1', json, '{"rolloutPercentage": -1}', 'rolloutPercentage'],
      ['rolloutPercentage "50"', json, '{"rolloutPercentage": "50"}', 'rolloutPercentage'],
      ['rolloutPercentage 50.5', json, '{"rolloutPercentage": 50.5}', 'rolloutPercentage'],
      ['enabled "true"', json, '{"enabled": "true"}', 'enabled'],
      ['description 7', json, '{"description": 7}', 'description'],
      ['an unknown field', json, '{"rolloutPercentage": 10, "rollout": 10}', 'rollout'],
      ['an array body', json, '[{"rolloutPercentage": 10}]', 'body'],
      ['a string body', json, '"rolloutPercentage"', 'body'],
      ['a number body', json, '42', 'body'],
      ['null', json, 'null', 'body'],
      ['an empty object', json, '{}', 'body'],
      ['malformed JSON', json, '{"rolloutPercentage": ', 'body'],
      ['malformed JSON without Content-Type', form, 'rolloutPercentage=10', 'body'],
      ['no body at all', json, '', 'body'],
    ])('%s', async (_case, type, body, field) => {
      const before = await store.get('priority_2_1_saga_pattern');
      const historyBefore = await store.history('priority_2_1_saga_pattern');
      const res = await request(app).post(path()).set('content-type', type).send(body);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ type: expect.stringMatching(/^urn:aikb:problem:/), status: 400, field, detail: expect.any(String) });
      expect(await store.get('priority_2_1_saga_pattern')).toEqual(before);
      expect(await store.history('priority_2_1_saga_pattern')).toEqual(historyBefore);
      expect(flags.evaluate('priority_2_1_saga_pattern').version).toBe(before!.version);
    });
  });

  it('POST to a flag that does not exist is a 404 listing the flags with that prefix, creating nothing', async () => {
    const res = await request(app).post(path('priority_2_1')).send({ rolloutPercentage: 0 });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({
      name: 'priority_2_1',
      similar: ['priority_2_1_saga_pattern'],
      detail: expect.stringMatching(/priority_2_1_saga_pattern/),
    });
    const none = await request(app).post(path('priority_2_3')).send({ rolloutPercentage: 0 });
    expect(none.status).toBe(404);
    expect(none.body.similar).toEqual([]);
    expect(none.body.detail).toMatch(/no flag name starts with "priority_2_3"/);
    expect((await store.list()).map((f) => f.rolloutPercentage)).toEqual([100, 100, 100]);
    expect(await store.get('priority_2_1')).toBeUndefined();
  });

  it('a path name that is not a valid flag name is a 400 naming name', async () => {
    const res = await request(app).post(path('Priority%20X')).send({ enabled: true });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('name');
  });

  it('PUT /:name creates (201), then replaces (200); a definition missing a field is a 400', async () => {
    const created = await request(app).put(path('priority_3_x')).send({ enabled: true, rolloutPercentage: 50, description: 'new' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'priority_3_x', enabled: true, rolloutPercentage: 50 });
    const replaced = await request(app).put(path('priority_3_x')).send({ enabled: false, rolloutPercentage: 0 });
    expect(replaced.status).toBe(200);
    const incomplete = await request(app).put(path('priority_3_y')).send({ enabled: true });
    expect(incomplete.status).toBe(400);
    expect(incomplete.body.field).toBe('rolloutPercentage');
    expect(await store.get('priority_3_y')).toBeUndefined();
  });

  it('GET /:name/status?userId= gives the decision with the bucket and cache age', async () => {
    await request(app).post(path()).send({ rolloutPercentage: 50 });
    const res = await request(app).get(`${path()}/status?userId=test-user`);
    const bucket = rolloutBucket('priority_2_1_saga_pattern', 'test-user');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      name: 'priority_2_1_saga_pattern',
      userId: 'test-user',
      enabled: bucket <= 50,
      bucket,
      rolloutPercentage: 50,
      reason: 'SPLIT',
      cacheAgeSeconds: 0,
      stale: false,
      version: expect.any(Number),
    });
    expect((await request(app).get(`${path('nope')}/status?userId=x`)).status).toBe(404);
  });

  it('GET /:name/status shows what this instance serves from its cache, so a change that has not reached it shows', async () => {
    await store.update('priority_2_1_saga_pattern', { enabled: false }, 'behind its back');
    expect((await request(app).get(`${path()}/status?userId=u`)).body).toMatchObject({ enabled: true, reason: 'STATIC' });
    await request(app)
      .post('/api/admin/cache/invalidate')
      .send({ keys: ['feature_flags:priority_2_1_saga_pattern'] });
    expect((await request(app).get(`${path()}/status?userId=u`)).body).toMatchObject({ enabled: false, reason: 'DISABLED' });
  });

  describe('a write says how it propagates to other instances', () => {
    /** A bus that accepts subscriptions but whose publishes fail, as Redis does when it is down. */
    function failingBus(state: InvalidationBusState): InvalidationBus {
      return {
        kind: 'redis',
        state,
        publish: async () => {
          throw new Error('connect ECONNREFUSED');
        },
        subscribe: () => () => {},
        onStateChange: () => () => {},
        close: async () => {},
      };
    }

    it.each(['disconnected', 'connected'] as const)('answers 200 with propagation degraded when the publish fails (bus %s)', async (state) => {
      const degraded = createFeatureFlagClient({ store, bus: failingBus(state), pollIntervalMs: 1000 });
      await degraded.start();
      try {
        const router = express()
          .use('/f', featureFlagsRouter({ flags: degraded }))
          .use(errorHandler());
        const res = await request(router).post('/f/priority_2_1_saga_pattern').send({ rolloutPercentage: 0 });
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ rolloutPercentage: 0, propagation: { bus: 'redis', status: 'degraded', convergesWithinSeconds: 2 } });
        expect(res.headers['aikb-propagation']).toBe('degraded');
        expect((await store.get('priority_2_1_saga_pattern'))?.rolloutPercentage).toBe(0);
        const put = await request(router).put('/f/brand_new').send({ enabled: true, rolloutPercentage: 5 });
        expect(put.status).toBe(201);
        expect(put.body.propagation.status).toBe('degraded');
      } finally {
        await degraded.close();
      }
    });

    it('answers propagation ok over a working bus, and none without one', async () => {
      const bus = createInProcessInvalidationBus();
      const healthy = createFeatureFlagClient({ store, bus });
      await healthy.start();
      try {
        const router = express().use('/f', featureFlagsRouter({ flags: healthy }));
        const res = await request(router).post('/f/priority_2_1_saga_pattern').send({ enabled: false });
        expect(res.body.propagation).toEqual({ bus: 'in-process', status: 'ok', convergesWithinSeconds: 0 });
        expect(res.headers['aikb-propagation']).toBe('ok');
      } finally {
        await healthy.close();
      }
      const none = await request(app).post(path()).send({ enabled: true });
      expect(none.body.propagation).toEqual({ bus: 'none', status: 'none', convergesWithinSeconds: 300 });
    });
  });

  it('GET /:name/history gives the audit trail, newest first; 404 for an unknown flag', async () => {
    await request(app).post(path()).send({ enabled: false });
    const res = await request(app).get(`${path()}/history`);
    expect(res.body.history.map((c: { after: { enabled: boolean } }) => c.after.enabled)).toEqual([false, true]);
    expect((await request(app).get(`${path('nope')}/history`)).status).toBe(404);
  });
});

describe('cacheRouter', () => {
  it('POST /invalidate reloads exact keys and globs and lists what it invalidated', async () => {
    const res = await request(app)
      .post('/api/admin/cache/invalidate')
      .send({ keys: ['feature_flags:priority_2_*'] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      invalidated: ['feature_flags:priority_2_1_saga_pattern', 'feature_flags:priority_2_2_rbac_api_filtering'],
      propagation: { bus: 'none', status: 'none', convergesWithinSeconds: 300 },
    });
    expect(res.headers['aikb-propagation']).toBe(flags.propagation().status);
    const all = await request(app).post('/api/admin/cache/invalidate').set('content-type', 'application/json').send('{"keys": ["feature_flags:*"]}');
    expect(all.body.invalidated).toHaveLength(3);
  });

  it.each([
    [{ keys: ['priority_3_X'] }, 'keys[0]'],
    [{ keys: ['feature_flags:ok', 7] }, 'keys[1]'],
    [{ keys: [] }, 'keys'],
    [{ keys: 'feature_flags:*' }, 'keys'],
    [{ keys: ['feature_flags:*'], extra: 1 }, 'extra'],
    [['feature_flags:*'], 'body'],
  ])('rejects %j with a 400 naming %s', async (body, field) => {
    const res = await request(app).post('/api/admin/cache/invalidate').send(body);
    expect(res.status).toBe(400);
    expect(res.body.field).toBe(field);
  });
});
