import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, type RawAnswer } from '../test/raw-request';
import { errorHandler, jsonBody, rejectNulInUrl } from './index';

function app(limit?: number) {
  return express()
    .use(rejectNulInUrl())
    .use(jsonBody(limit === undefined ? {} : { limit }))
    .post('/echo', (req, res) => void res.json({ body: req.body }))
    .get('/items/:id', (req, res) => void res.json({ id: req.params.id }))
    .use(errorHandler());
}

const json = Buffer.from(JSON.stringify({ rolloutPercentage: 10 }));

let server: Server;
beforeAll(async () => {
  server = app().listen(0, '127.0.0.1');
  await once(server, 'listening');
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const post = (body: Buffer | string, headers: Record<string, string> = {}) => rawRequest(server, 'POST', '/echo', body, headers);

function expectProblem(res: RawAnswer | request.Response, status: number, field?: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body.status).toBe(status);
  if (field !== undefined) expect(res.body.field).toBe(field);
}

describe('jsonBody', () => {
  describe('Content-Encoding', () => {
    it.each([
      ['gzip', gzipSync(json)],
      ['x-gzip', gzipSync(json)],
      ['deflate', deflateSync(json)],
      ['br', brotliCompressSync(json)],
      ['identity', json],
      ['GZip', gzipSync(json)],
    ])('decodes a %s body', async (coding, body) => {
      const res = await post(body, { 'Content-Type': 'application/json', 'Content-Encoding': coding });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ body: { rolloutPercentage: 10 } });
    });

    it.each([
      ['gzip', Buffer.from('not gzip at all')],
      ['gzip (truncated)', gzipSync(Buffer.from(JSON.stringify({ text: 'x'.repeat(2000) }))).subarray(0, 30)],
      ['deflate', Buffer.from('not deflate')],
      ['br', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12])],
    ])('answers an undecodable %s body with a 400 problem naming the body', async (coding, body) => {
      const res = await post(body, { 'Content-Type': 'application/json', 'Content-Encoding': coding.split(' ')[0]! });
      expectProblem(res, 400, 'body');
    });

    it.each(['compress', 'zstd', 'gzip, br', 'gzip, gzip', 'foo'])('answers Content-Encoding: %s with a 415 problem', async (coding) => {
      const res = await post(gzipSync(json), { 'Content-Type': 'application/json', 'Content-Encoding': coding });
      expectProblem(res, 415, 'Content-Encoding');
    });

    it('answers a body over the limit with a 413 whatever its coding: unsupported, or data that does not decode', async () => {
      const big = Buffer.alloc(200 * 1024, 0x78);
      expectProblem(await post(big, { 'Content-Type': 'application/json', 'Content-Encoding': 'compress' }), 413, 'body');
      expectProblem(await post(big, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }), 413, 'body');
    });

    it.each([
      ['gzip', gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20))],
      ['deflate', deflateSync(Buffer.alloc(50 * 1024 * 1024, 0x20))],
      ['br', brotliCompressSync(Buffer.alloc(50 * 1024 * 1024, 0x20))],
    ])('cuts a %s decompression bomb at the limit with a 413', async (coding, bomb) => {
      expect(bomb.length).toBeLessThan(100 * 1024);
      const res = await post(bomb, { 'Content-Type': 'application/json', 'Content-Encoding': coding });
      expectProblem(res, 413, 'body');
    });
  });

  it.each(['application/json', 'application/merge-patch+json', 'application/x-www-form-urlencoded'])(
    'answers a body over the limit with a 413 problem (%s)',
    async (type) => {
      const body = JSON.stringify({ description: 'x'.repeat(200 * 1024) });
      const res = await post(body, { 'Content-Type': type });
      expectProblem(res, 413, 'body');
      expect(res.body.limit).toBe(100 * 1024);
    },
  );

  describe('Content-Type', () => {
    it.each([
      'application/json',
      'Application/JSON',
      'application/json; charset=utf-8',
      'application/json;charset="UTF-8"',
      'application/merge-patch+json',
      'application/x-www-form-urlencoded',
    ])('takes JSON labelled %s', async (type) => {
      const res = await post(json, { 'Content-Type': type });
      expect([res.status, res.body]).toEqual([200, { body: { rolloutPercentage: 10 } }]);
    });

    it.each([
      'text/plain',
      'application/octet-stream',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'application/jsonx',
      '*/*',
      undefined,
    ])('answers a body labelled %s with a 415 problem naming Content-Type, and one over the limit with a 413 (size first, whatever the type)', async (type) => {
      const headers: Record<string, string> = type === undefined ? {} : { 'Content-Type': type };
      expectProblem(await post(json, headers), 415, 'Content-Type');
      expectProblem(await post(JSON.stringify({ description: 'x'.repeat(200 * 1024) }), headers), 413, 'body');
    });

    it('refuses form-urlencoded where the allowance is off', async () => {
      const strict = express()
        .use(jsonBody({ allowFormUrlencoded: false }))
        .post('/echo', (req, res) => void res.json({ body: req.body }))
        .use(errorHandler());
      expectProblem(await request(strict).post('/echo').type('form').send('{"a":1}'), 415, 'Content-Type');
      expect((await request(strict).post('/echo').send({ a: 1 })).body).toEqual({ body: { a: 1 } });
    });
  });

  describe('no body', () => {
    const required = () =>
      express()
        .use(jsonBody({ required: true }))
        .post('/echo', (req, res) => void res.json({ body: req.body ?? null }))
        .use(errorHandler());

    it('lets a request without a body through when none is required', async () => {
      expect((await request(app()).post('/echo')).body).toEqual({});
    });

    it('answers a missing or empty body with a 400 naming body where one is required, whatever the Content-Type', async () => {
      expectProblem(await request(required()).post('/echo'), 400, 'body');
      expectProblem(await request(required()).post('/echo').set('Content-Type', 'text/plain'), 400, 'body');
      // Zero bytes once decoded, and chunked with no bytes at all.
      const listener = required().listen(0, '127.0.0.1');
      await once(listener, 'listening');
      try {
        expectProblem(
          await rawRequest(listener, 'POST', '/echo', gzipSync(''), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' }),
          400,
          'body',
        );
        const chunked = await new Promise<number>((resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: (listener.address() as AddressInfo).port,
              method: 'POST',
              path: '/echo',
              agent: false,
              headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end();
        });
        expect(chunked).toBe(400);
      } finally {
        listener.close();
      }
    });
  });

  it('reads the body once when two parsers of this package are on the way, the second taking what the first parsed', async () => {
    const twice = express()
      .use(jsonBody())
      .use(jsonBody({ limit: 1, required: true }))
      .post('/echo', (req, res) => void res.json({ body: req.body }))
      .use(errorHandler());
    expect((await request(twice).post('/echo').send({ a: 1 })).body).toEqual({ body: { a: 1 } });
    // An empty body parsed by the first is still missing for the second.
    expectProblem(await request(twice).post('/echo'), 400, 'body');
  });

  it.each([
    ['{"email":"a\\u0000@example.com"}', 'email'],
    ['{"keys":["ok","b\\u0000"]}', 'keys[1]'],
    ['{"a":{"b":"\\ud800"}}', 'a.b'],
    ['{"a\\u0000":1}', 'a\\u0000'],
    ['"\\u0000"', 'body'],
    ['[{"x":"\\udc00y"}]', 'body[0].x'],
  ])('answers %s (a string PostgreSQL cannot store) with a 400 naming %s', async (body, field) => {
    const res = await post(body, { 'Content-Type': 'application/json' });
    expectProblem(res, 400, field);
  });

  it('walks a deeply nested body without overflowing the stack', async () => {
    const deep = `${'['.repeat(40_000)}"\\u0000"${']'.repeat(40_000)}`;
    const res = await post(deep, { 'Content-Type': 'application/json' });
    expect(res.status).toBe(400);
  });

  it('rejects a bad limit option naming it', () => {
    expect(() => jsonBody({ limit: 0 })).toThrow(/jsonBody: limit must be a whole number ≥ 1/);
    expect(() => jsonBody({ required: 'yes' as never })).toThrow(/jsonBody: required must be a boolean/);
    expect(() => jsonBody({ allowFormUrlencoded: 1 as never })).toThrow(/jsonBody: allowFormUrlencoded must be a boolean/);
  });
});

describe('rejectNulInUrl', () => {
  it('answers %00 in a path parameter or a query value with a 400 naming it', async () => {
    expectProblem(await request(app()).get('/items/a%00b'), 400, 'path');
    expectProblem(await request(app()).get('/items/a?userId=x%00'), 400, 'userId');
    expect((await request(app()).get('/items/a%20b')).body).toEqual({ id: 'a b' });
  });
});
