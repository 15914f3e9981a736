import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { AikbError, NotFoundError, RateLimitedError, UnavailableError, ValidationError } from '@aikb/core';
import { errorHandler, notFound } from './index';

function appThrowing(error: unknown) {
  const app = express();
  app.use(express.json());
  app.post('/things', () => {
    throw error;
  });
  app.get('/things', () => {
    throw error;
  });
  app.use(notFound());
  app.use(errorHandler());
  return app;
}

describe('errorHandler', () => {
  it('answers a ValidationError as a 400 problem naming the field', async () => {
    const res = await request(appThrowing(new ValidationError('rolloutPercentage', 'rolloutPercentage must be an integer from 0 to 100'))).get('/things?x=1');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toEqual({
      type: 'urn:aikb:problem:invalid-argument',
      title: 'Invalid request',
      status: 400,
      detail: 'rolloutPercentage must be an integer from 0 to 100',
      field: 'rolloutPercentage',
      instance: '/things',
    });
  });

  it.each([
    ['NOT_FOUND', 404],
    ['UNAUTHENTICATED', 401],
    ['PERMISSION_DENIED', 403],
    ['ALREADY_EXISTS', 409],
    ['RATE_LIMITED', 429],
    ['UNAVAILABLE', 503],
  ] as const)('maps %s to %i', async (code, status) => {
    const res = await request(appThrowing(new AikbError(code, 'nope'))).get('/things');
    expect(res.status).toBe(status);
    expect(res.body.status).toBe(status);
  });

  it('sets Retry-After from retryAfterSeconds', async () => {
    const res = await request(appThrowing(new AikbError('RATE_LIMITED', 'slow down', { details: { retryAfterSeconds: 12.2 } }))).get('/things');
    expect(res.headers['retry-after']).toBe('13');
  });

  it('answers a NotFoundError with its typed key and similar names as the name and similar members', async () => {
    const res = await request(appThrowing(NotFoundError.named('flag', 'priority_2', ['priority_2_1_saga_pattern', 'x']))).get('/things');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ type: 'urn:aikb:problem:not-found', name: 'priority_2', similar: ['priority_2_1_saga_pattern'] });
    const bare = await request(appThrowing(new NotFoundError('no user with this id'))).get('/things');
    expect(bare.body).not.toHaveProperty('name');
    expect(bare.body).not.toHaveProperty('similar');
  });

  it('answers a RateLimitedError with its typed fields as members and Retry-After', async () => {
    const res = await request(appThrowing(new RateLimitedError('slow down', { retryAfterSeconds: 900, limit: 10, remaining: 0, resetSeconds: 900 }))).get(
      '/things',
    );
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('900');
    expect(res.body).toMatchObject({ type: 'urn:aikb:problem:rate-limited', retryAfterSeconds: 900, limit: 10, remaining: 0, resetSeconds: 900 });
  });

  it('hides the message of an unexpected error behind a 500', async () => {
    const res = await request(appThrowing(new Error('secret internal detail'))).get('/things');
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toMatch(/secret/);
  });

  it('answers any error carrying a 4xx status (the router URIError for %ZZ in a parameter) as that status, not a 500', async () => {
    const app = express()
      .get('/flags/:name', (_req, res) => void res.json({}))
      .use(errorHandler());
    for (const path of ['/flags/%ZZ', '/flags/%', '/flags/%C0%80', '/flags/a%E2%82']) {
      const res = await request(app).get(path);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 400, field: 'path', type: 'urn:aikb:problem:malformed-url' });
    }
    const teapot = Object.assign(new Error('internal words'), { statusCode: 418 });
    const res = await request(appThrowing(teapot)).get('/things');
    expect(res.body).toMatchObject({ status: 418, detail: 'the request could not be processed (HTTP 418)' });
  });

  it('never sends the message of a 5xx error that wraps a cause (it may quote a driver message)', async () => {
    const driver = new Error('invalid byte sequence for encoding "UTF8": 0x00');
    for (const error of [
      new UnavailableError(`could not update the flag: the flag store is unavailable (${driver.message})`, { cause: driver }),
      new AikbError('INTERNAL', `failed: ${driver.message}`, { cause: new Error('wrapped', { cause: driver }) }),
    ]) {
      const res = await request(appThrowing(error)).get('/things');
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(JSON.stringify(res.body)).not.toMatch(/byte sequence|UTF8/);
    }
    const wrapped = await request(appThrowing(new UnavailableError('the user store is unavailable', { cause: driver }))).get('/things');
    expect([wrapped.status, wrapped.body.detail]).toEqual([503, 'a service this request needs is unavailable; try again later']);
    const own = await request(appThrowing(new AikbError('RESOURCE_EXHAUSTED', 'busy: retry in 1 s'))).get('/things');
    expect([own.status, own.body.detail]).toEqual([503, 'busy: retry in 1 s']);
  });

  it('maps an AikbError with a code it does not know (untyped callers) like INTERNAL', async () => {
    for (const code of ['constructor', 'toString', '__proto__', 'NOPE']) {
      const res = await request(appThrowing(new AikbError(code as never, 'x'))).get('/things');
      expect([res.status, res.body.status]).toEqual([500, 500]);
    }
  });

  it('answers malformed JSON with a 400 problem naming the body', async () => {
    const res = await request(appThrowing(new Error('unreached')))
      .post('/things')
      .set('content-type', 'application/json')
      .send('{"a":');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: 400, field: 'body', detail: 'the request body is not valid JSON' });
  });
});

describe('notFound', () => {
  it('answers an unknown route with a 404 problem', async () => {
    const res = await request(appThrowing(new Error('x'))).delete('/nowhere');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ status: 404, detail: 'no route for DELETE /nowhere' });
  });
});
