import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { AikbError, ValidationError } from '@aikb/core';
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

  it('hides the message of an unexpected error behind a 500', async () => {
    const res = await request(appThrowing(new Error('secret internal detail'))).get('/things');
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toMatch(/secret/);
  });

  it('answers malformed JSON with a 400 problem naming the body', async () => {
    const res = await request(appThrowing(new Error('unreached'))).post('/things').set('content-type', 'application/json').send('{"a":');
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
