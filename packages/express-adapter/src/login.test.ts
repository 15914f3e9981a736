import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { beforeAll, describe, expect, it } from 'vitest';
import { AikbError, RateLimitedError } from '@aikb/core';
import { createRecordingLogger } from '@aikb/test-support';
import {
  createArgon2Hasher,
  createConstantTimeAuthenticator,
  createMemoryUserStore,
  createTokenService,
  type AttemptObservation,
  type BeginOptions,
  type ConstantTimeAuthenticator,
  type LoginRateLimiter,
  type UserStore,
} from '@aikb/core/auth';
import { errorHandler } from './error-handler';
import { loginHandler } from './login';
import { requestLogging } from './request-logging';

const hasher = createArgon2Hasher({ memoryCost: 1024, timeCost: 1 });
const tokens = createTokenService({ secret: 'adapter-test-secret-adapter-test-secret' });
let store: UserStore;

/**
 * The test hasher declaring 40 ms per verify, each verify held until `openAfter(n)` has seen `n`
 * refusals (503): the hash is still running whenever the next login arrives, however slow the machine.
 */
function heldHasher() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let refusals = 0;
  const openAfter = (n: number) => (res: request.Response) => {
    if (res.status === 503 && ++refusals === n) open();
    return res;
  };
  return { openAfter, hasher: { ...hasher, verifyCostMs: 40, verify: async (e: string, p: string) => (await opened, hasher.verify(e, p)) } };
}

beforeAll(async () => {
  store = createMemoryUserStore();
  await store.create({ email: 'test@example.com', passwordHash: await hasher.hash('test12345'), roles: ['user'] });
});

function app(extra: { rateLimiter?: LoginRateLimiter; maxConcurrentHashes?: number; jsonFirst?: boolean; drainBodyBytes?: number } = {}) {
  const observations: AttemptObservation[] = [];
  const authenticator = createConstantTimeAuthenticator({
    store,
    hasher,
    floorMs: 60,
    jitterMs: 5,
    rateLimiter: extra.rateLimiter,
    maxConcurrentHashes: extra.maxConcurrentHashes,
    onAttempt: (o) => observations.push(o),
  });
  const server = express();
  if (extra.jsonFirst) server.use(express.json({ limit: '1mb' }));
  server.post('/auth/login', loginHandler({ authenticator, tokens, ...(extra.drainBodyBytes ? { drainBodyBytes: extra.drainBodyBytes } : {}) }));
  server.use(errorHandler());
  return { server, observations };
}

describe('loginHandler', () => {
  it('answers the right password with a token carrying the user id and roles', async () => {
    const { server, observations } = app();
    const res = await request(server).post('/auth/login').send({ email: 'test@example.com', password: 'test12345' });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body.expiresIn).toBe(3600);
    const claims = await tokens.verify(res.body.token);
    expect(claims.roles).toEqual(['user']);
    expect(observations).toMatchObject([{ outcome: 'success', constantTime: true }]);
  });

  it('answers an unknown email and a wrong password with one identical 401 body', async () => {
    const { server } = app();
    const unknown = await request(server).post('/auth/login').send({ email: 'nobody@example.com', password: 'test12345' });
    const wrong = await request(server).post('/auth/login').send({ email: 'test@example.com', password: 'wrong-password' });
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(unknown.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(unknown.text).toBe(wrong.text);
    expect(unknown.headers['content-length']).toBe(wrong.headers['content-length']);
    const empty = await request(server).post('/auth/login').send({ email: 'test@example.com', password: '' });
    expect(empty.status).toBe(401);
    expect(empty.text).toBe(wrong.text);
  });

  const tenMegabytes = 'x'.repeat(10 * 1024 * 1024);
  it.each([
    ['malformed JSON', '{"email": "test@example.com", "password": ', 'body'],
    ['a JSON array', '[]', 'body'],
    ['null', 'null', 'body'],
    ['a missing email', '{"password":"test12345"}', 'email'],
    ['a missing password', '{"email":"test@example.com"}', 'password'],
    ['a number as email', '{"email":42,"password":"test12345"}', 'email'],
    ['an object as password', '{"email":"test@example.com","password":{"$gt":""}}', 'password'],
    ['a 2000-character password', JSON.stringify({ email: 'test@example.com', password: 'p'.repeat(2000) }), 'password'],
    ['a NUL in the email', '{"email":"test\\u0000@example.com","password":"test12345"}', 'email'],
  ])('answers %s with 400 problem+json naming the field, through the attempt', async (_name, body, field) => {
    const { server, observations } = app();
    const res = await request(server).post('/auth/login').set('content-type', 'application/json').send(body);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body.field).toBe(field);
    expect(observations).toHaveLength(1);
    expect(observations[0]).toMatchObject({ outcome: 'invalid', constantTime: true });
    expect(observations[0]!.paddedToMs).toBeGreaterThanOrEqual(55);
  });

  it('answers a 10 MB body with 413 problem+json naming the body, through the attempt', async () => {
    const { server, observations } = app();
    const res = await request(server)
      .post('/auth/login')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ email: 'test@example.com', password: tenMegabytes }));
    expect([res.status, res.body.field]).toEqual([413, 'body']);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(observations).toMatchObject([{ outcome: 'invalid' }]);
  });

  it('stops reading at drainBodyBytes below the body limit and still answers: 413 for JSON it cannot take whole, 415 for another type', async () => {
    const { server } = app({ drainBodyBytes: 1024 });
    const body = JSON.stringify({ email: 'test@example.com', password: 'x'.repeat(8 * 1024) });
    for (const [type, status, field] of [
      ['application/json', 413, 'body'],
      ['text/plain', 415, 'Content-Type'],
    ] as const) {
      const res = await request(server).post('/auth/login').set('content-type', type).send(body);
      expect([res.status, res.body.field]).toEqual([status, field]);
    }
  });

  it('answers a body that does not decode (bad gzip) with 400 naming the body', async () => {
    const { server } = app();
    const res = await request(server).post('/auth/login').set('content-type', 'application/json').set('content-encoding', 'gzip').send('{"not":"gzip"}');
    expect([res.status, res.body.field]).toEqual([400, 'body']);
  });

  it.each([
    ['form-urlencoded (no allowance on login)', 'application/x-www-form-urlencoded'],
    ['text/plain', 'text/plain'],
    ['latin1', 'application/json; charset=latin1'],
  ])('answers a non-JSON content type (%s) with 415 naming Content-Type, through the attempt', async (_what, type) => {
    const { server, observations } = app();
    const res = await request(server)
      .post('/auth/login')
      .set('Content-Type', type)
      .send(JSON.stringify({ email: 'test@example.com', password: 'test12345' }));
    expect([res.status, res.body.field]).toEqual([415, 'Content-Type']);
    expect(res.body.detail).toMatch(/application\/json/);
    expect(observations).toMatchObject([{ outcome: 'invalid' }]);
  });

  it('works behind express.json() as well', async () => {
    const { server } = app({ jsonFirst: true });
    const res = await request(server).post('/auth/login').send({ email: 'test@example.com', password: 'test12345' });
    expect(res.status).toBe(200);
  });

  it('answers a rate-limited attempt with 429, Retry-After and RateLimit-* headers', async () => {
    const rateLimiter: LoginRateLimiter = {
      async check() {
        throw new AikbError('RATE_LIMITED', 'too many login attempts', { details: { retryAfterSeconds: 900, limit: 10, remaining: 0, resetSeconds: 900 } });
      },
      async recordFailure() {},
      async recordSuccess() {},
    };
    const { server } = app({ rateLimiter });
    const res = await request(server).post('/auth/login').send({ email: 'test@example.com', password: 'test12345' });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('900');
    expect(res.headers['ratelimit-limit']).toBe('10');
    expect(res.headers['ratelimit-remaining']).toBe('0');
    expect(res.headers['ratelimit-reset']).toBe('900');
  });

  it("sets the RateLimit-* headers from a RateLimitedError's typed fields", async () => {
    const rateLimiter: LoginRateLimiter = {
      async check() {
        throw new RateLimitedError('too many login attempts', { retryAfterSeconds: 60, limit: 5, remaining: 0, resetSeconds: 60 });
      },
      async recordFailure() {},
      async recordSuccess() {},
    };
    const { server } = app({ rateLimiter });
    const res = await request(server).post('/auth/login').send({ email: 'test@example.com', password: 'test12345' });
    expect(res.status).toBe(429);
    expect([res.headers['retry-after'], res.headers['ratelimit-limit'], res.headers['ratelimit-remaining'], res.headers['ratelimit-reset']]).toEqual([
      '60',
      '5',
      '0',
      '60',
    ]);
    expect(res.body).toMatchObject({ retryAfterSeconds: 60, limit: 5, remaining: 0, resetSeconds: 60 });
  });

  it('blocks after 10 consecutive failures with the real rate limiter, the same for unknown emails', async () => {
    const { createLoginRateLimiter } = await import('@aikb/core/auth');
    const { server } = app({ rateLimiter: createLoginRateLimiter({ keyPrefix: `adapter-${Math.random()}` }) });
    for (const email of ['test@example.com', 'ghost@example.com']) {
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) statuses.push((await request(server).post('/auth/login').send({ email, password: 'wrong-password' })).status);
      expect(statuses).toEqual([...Array(10).fill(401), 429]);
    }
  });

  it('answers an admission refusal with 503 and Retry-After', async () => {
    // One hashing slot, 40 ms declared per verify, a 100 ms floor with the 25 ms admission margin: the
    // first fits, the second (predicted to end at 80 ms) cannot.
    const { hasher: slow, openAfter } = heldHasher();
    const authenticator = createConstantTimeAuthenticator({ store, hasher: slow, floorMs: 100, jitterMs: 0, maxConcurrentHashes: 1 });
    const server = express().post('/auth/login', loginHandler({ authenticator, tokens })).use(errorHandler());
    const results = await Promise.all(
      [1, 2].map(() => request(server).post('/auth/login').send({ email: 'test@example.com', password: 'test12345' }).then(openAfter(1))),
    );
    const refused = results.find((r) => r.status === 503);
    expect(results.map((r) => r.status).sort()).toEqual([200, 503]);
    expect(refused!.headers['retry-after']).toBe('1');
    expect(refused!.body.type).toBe('urn:aikb:problem:resource-exhausted');
  });

  it('answers a busy refusal without a single error line (the authenticator logs refusals, rate-limited)', async () => {
    const { lines, ...logger } = createRecordingLogger();
    const { hasher: slow, openAfter } = heldHasher();
    const authenticator = createConstantTimeAuthenticator({ store, hasher: slow, floorMs: 100, jitterMs: 0, maxConcurrentHashes: 1, logger });
    const server = express().use(requestLogging({ logger })).post('/auth/login', loginHandler({ authenticator, tokens })).use(errorHandler({ logger }));
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => request(server).post('/auth/login').send({ email: 'test@example.com', password: 'wrong' }).then(openAfter(3))),
    );
    expect(results.filter((r) => r.status === 503)).toHaveLength(3);
    expect(results.find((r) => r.status === 503)!.headers['retry-after']).toBe('1');
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    expect(lines.filter((l) => l.level === 'warn' && /admission control/.test(l.msg ?? ''))).toHaveLength(1);
  });

  describe('deadline start', () => {
    /** Sends the headers, then the body `delayMs` later; resolves with the status. */
    async function slowPost(server: express.Express, delayMs: number): Promise<number> {
      const listener = server.listen(0, '127.0.0.1');
      await new Promise((resolve) => listener.once('listening', resolve));
      try {
        const { port } = listener.address() as AddressInfo;
        return await new Promise<number>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.flushHeaders();
          setTimeout(() => req.end(JSON.stringify({ email: 'test@example.com', password: 'test12345' })), delayMs);
        });
      } finally {
        listener.close();
      }
    }

    function spied(floorMs: number): { authenticator: ConstantTimeAuthenticator; begun: Array<BeginOptions | undefined> } {
      const real = createConstantTimeAuthenticator({ store, hasher, floorMs, jitterMs: 0 });
      const begun: Array<BeginOptions | undefined> = [];
      return { authenticator: { ...real, begin: (o?: BeginOptions) => (begun.push(o), real.begin(o)) }, begun };
    }

    it('counts the time spent reading the body into the attempt, from the request arrival', async () => {
      const { authenticator, begun } = spied(300);
      const server = express()
        .post('/auth/login', loginHandler({ authenticator, tokens, slowBodyMs: 250 }))
        .use(errorHandler());
      expect(await slowPost(server, 50)).toBe(200);
      expect(begun[0]?.elapsedMs).toBeGreaterThanOrEqual(45);
    });

    it('restarts the clock when the body ends for a body slower than slowBodyMs', async () => {
      const { authenticator, begun } = spied(100);
      const server = express()
        .post('/auth/login', loginHandler({ authenticator, tokens, slowBodyMs: 20 }))
        .use(errorHandler());
      expect(await slowPost(server, 150)).toBe(200);
      expect(begun[0]).toEqual({ elapsedMs: 0 });
    });

    it.each([-1, Number.NaN, 100])('rejects slowBodyMs %s with a TypeError naming it', (slowBodyMs) => {
      const { authenticator } = spied(100);
      expect(() => loginHandler({ authenticator, tokens, slowBodyMs })).toThrow(/slowBodyMs/);
    });
  });
});
