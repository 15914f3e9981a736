/**
 * The one body rule, on every router of this package that takes a body: each parses its own body
 * (no `express.json()` in front), behind `express.json()` it takes what that parsed without reading
 * the stream again, and each refusal is the same problem+json whichever router answers.
 */
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';
import express, { type Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createFeatureFlagClient, createMemoryFlagStore } from '@aikb/core';
import {
  createArgon2Hasher,
  createConstantTimeAuthenticator,
  createMemoryUserStore,
  createTokenService,
  createUserDirectory,
  type UserDirectory,
} from '@aikb/core/auth';
import { rawRequest, type RawAnswer } from '../test/raw-request';
import { cacheRouter, errorHandler, featureFlagsRouter, loginHandler, usersRouter } from './index';

const hasher = createArgon2Hasher({ memoryCost: 1024, timeCost: 1 });
const tokens = createTokenService({ secret: 'body-rule-test-secret-body-rule-test-secret' });

interface Target {
  /** Mounts the router (or handler) on `app`, fresh state each time. */
  mount(app: Express): Promise<void>;
  method: 'post' | 'put' | 'patch';
  path: string;
  /** A valid body, and what the router answers it with. */
  valid: Record<string, unknown>;
  expected: { status: number; body: Record<string, unknown> };
  /** The router's limit, and whether it takes curl's form-urlencoded label. */
  limit: number;
  form: boolean;
}

let users: UserDirectory;
let userId: string;

async function flags() {
  const store = createMemoryFlagStore();
  await store.put('priority_2_1_saga_pattern', { enabled: true, rolloutPercentage: 100 }, 'seed');
  const client = createFeatureFlagClient({ store });
  await client.start();
  return client;
}

async function directory(): Promise<void> {
  users = createUserDirectory({ store: createMemoryUserStore(), hasher });
  userId = (await users.add({ email: 'someone@example.com', password: 'long enough', roles: ['user'] })).id;
}

const targets: Record<string, Target> = {
  'loginHandler POST': {
    async mount(app) {
      const store = createMemoryUserStore();
      await store.create({ email: 'test@example.com', passwordHash: await hasher.hash('test12345'), roles: ['user'] });
      const authenticator = createConstantTimeAuthenticator({ store, hasher, floorMs: 40, jitterMs: 1 });
      app.post('/auth/login', loginHandler({ authenticator, tokens }));
    },
    method: 'post',
    path: '/auth/login',
    valid: { email: 'test@example.com', password: 'test12345' },
    expected: { status: 200, body: { token: expect.any(String), expiresIn: 3600 } },
    limit: 64 * 1024,
    form: false,
  },
  'featureFlagsRouter POST': {
    async mount(app) {
      app.use('/flags', featureFlagsRouter({ flags: await flags() }));
    },
    method: 'post',
    path: '/flags/priority_2_1_saga_pattern',
    valid: { rolloutPercentage: 10 },
    expected: { status: 200, body: { name: 'priority_2_1_saga_pattern', rolloutPercentage: 10 } },
    limit: 100 * 1024,
    form: true,
  },
  'featureFlagsRouter PUT': {
    async mount(app) {
      app.use('/flags', featureFlagsRouter({ flags: await flags() }));
    },
    method: 'put',
    path: '/flags/new_flag',
    valid: { enabled: true, rolloutPercentage: 5 },
    expected: { status: 201, body: { name: 'new_flag', enabled: true, rolloutPercentage: 5 } },
    limit: 100 * 1024,
    form: true,
  },
  'cacheRouter POST': {
    async mount(app) {
      app.use('/cache', cacheRouter({ flags: await flags() }));
    },
    method: 'post',
    path: '/cache/invalidate',
    valid: { keys: ['feature_flags:*'] },
    expected: { status: 200, body: { invalidated: ['feature_flags:priority_2_1_saga_pattern'] } },
    limit: 100 * 1024,
    form: true,
  },
  'usersRouter POST': {
    async mount(app) {
      await directory();
      app.use('/users', usersRouter({ users, actor: () => 'test' }));
    },
    method: 'post',
    path: '/users',
    valid: { email: 'new@example.com', password: 'long enough', roles: ['user'] },
    expected: { status: 201, body: { email: 'new@example.com', roles: ['user'], disabled: false } },
    limit: 16 * 1024,
    form: true,
  },
  'usersRouter PATCH': {
    async mount(app) {
      await directory();
      app.use('/users', usersRouter({ users, actor: () => 'test' }));
    },
    method: 'patch',
    get path() {
      return `/users/${userId}`;
    },
    valid: { disabled: true },
    expected: { status: 200, body: { email: 'someone@example.com', disabled: true } },
    limit: 16 * 1024,
    form: true,
  },
};

async function appFor(target: Target, jsonFirst = false): Promise<Express> {
  const app = express();
  if (jsonFirst) app.use(express.json({ limit: '1mb' }));
  await target.mount(app);
  return app.use(errorHandler());
}

/** Sends the bytes and headers as they are, on a server of its own. */
async function send(app: Express, target: Target, body: string | Buffer, headers: Record<string, string>): Promise<RawAnswer> {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    return await rawRequest(server, target.method.toUpperCase(), target.path, body, headers);
  } finally {
    server.close();
  }
}

function expectProblem(res: RawAnswer | request.Response, status: number, field: string) {
  expect([res.status, res.headers['content-type'], res.body.status, res.body.field]).toEqual([
    status,
    expect.stringMatching(/^application\/problem\+json/),
    status,
    field,
  ]);
}

const json = { 'Content-Type': 'application/json' };

describe.each(Object.entries(targets))('the body rule on %s', (_name, target) => {
  it('answers a valid JSON body as before', async () => {
    const res = await send(await appFor(target), target, JSON.stringify(target.valid), json);
    expect(res.status).toBe(target.expected.status);
    expect(res.body).toMatchObject(target.expected.body);
  });

  it('answers a wrong Content-Type (text/plain, none, charset=latin1) with 415 naming Content-Type', async () => {
    const app = await appFor(target);
    for (const headers of [{ 'Content-Type': 'text/plain' }, { 'Content-Type': 'application/json; charset=latin1' }, {}] as Array<Record<string, string>>) {
      expectProblem(await send(app, target, JSON.stringify(target.valid), headers), 415, 'Content-Type');
    }
  });

  it(`${target.form ? 'takes' : 'refuses'} curl's form-urlencoded label for -d`, async () => {
    const res = await send(await appFor(target), target, JSON.stringify(target.valid), { 'Content-Type': 'application/x-www-form-urlencoded' });
    if (target.form) expect(res.status).toBe(target.expected.status);
    else expectProblem(res, 415, 'Content-Type');
  });

  it('answers malformed JSON with 400 naming body', async () => {
    expectProblem(await send(await appFor(target), target, '{"a":', json), 400, 'body');
  });

  it('answers a missing body with 400 naming body', async () => {
    expectProblem(await request(await appFor(target))[target.method](target.path), 400, 'body');
  });

  it('answers a body over its limit with 413', async () => {
    const res = await send(await appFor(target), target, JSON.stringify({ ...target.valid, padding: 'x'.repeat(target.limit) }), json);
    expectProblem(res, 413, 'body');
    expect(res.body.limit).toBe(target.limit);
  });

  it('decodes a gzip body within the limit, and cuts one that inflates over it with 413', async () => {
    const app = await appFor(target);
    const ok = await send(app, target, gzipSync(JSON.stringify(target.valid)), { ...json, 'Content-Encoding': 'gzip' });
    expect([ok.status, ok.body]).toEqual([target.expected.status, expect.objectContaining(target.expected.body)]);
    const bomb = gzipSync(Buffer.alloc(target.limit + 1, 0x20));
    expect(bomb.length).toBeLessThan(target.limit);
    expectProblem(await send(app, target, bomb, { ...json, 'Content-Encoding': 'gzip' }), 413, 'body');
  });

  it('answers a NUL in a string with 400 naming the field', async () => {
    const [field] = Object.keys(target.valid);
    const body = JSON.stringify({ ...target.valid, [field!]: 'a\u0000b' });
    const res = await send(await appFor(target), target, body, json);
    expect(res.status).toBe(400);
    expect(res.body.field).toBe(field);
  });

  it('works behind express.json(): takes what it parsed, without reading the body again, and still checks the Content-Type', async () => {
    const app = await appFor(target, true);
    const res = await send(app, target, JSON.stringify(target.valid), json);
    expect(res.status).toBe(target.expected.status);
    expect(res.body).toMatchObject(target.expected.body);
    // express.json() skips text/plain: the router reads it itself and refuses it.
    expectProblem(await send(app, target, JSON.stringify(target.valid), { 'Content-Type': 'text/plain' }), 415, 'Content-Type');
    expectProblem(await request(app)[target.method](target.path), 400, 'body');
  });
});
