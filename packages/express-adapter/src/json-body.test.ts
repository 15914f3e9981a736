import { once } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

let server: Server;
beforeAll(async () => {
  server = app().listen(0, '127.0.0.1');
  await once(server, 'listening');
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Sends the bytes as they are (supertest would serialize a Buffer labelled JSON). */
function post(body: Buffer | string, headers: Record<string, string> = {}): Promise<Answer> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: (server.address() as AddressInfo).port, method: 'POST', path: '/echo', agent: false, headers: { ...headers, 'Content-Length': String(bytes.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') as Record<string, unknown> }));
      },
    );
    // The server may answer (and close) before it has read everything.
    req.on('error', reject);
    req.end(bytes);
  });
}

function expectProblem(res: Answer | request.Response, status: number, field?: string) {
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

  it.each(['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', ''])(
    'answers a body over the limit with a 413 problem whatever its Content-Type (%j)',
    async (type) => {
      const body = JSON.stringify({ description: 'x'.repeat(200 * 1024) });
      const res = await post(body, type ? { 'Content-Type': type } : {});
      expectProblem(res, 413, 'body');
      expect(res.body.limit).toBe(100 * 1024);
    },
  );

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
    expect(() => jsonBody({ limit: 0 })).toThrow(/limit must be a positive integer/);
  });
});

describe('rejectNulInUrl', () => {
  it('answers %00 in a path parameter or a query value with a 400 naming it', async () => {
    expectProblem(await request(app()).get('/items/a%00b'), 400, 'path');
    expectProblem(await request(app()).get('/items/a?userId=x%00'), 400, 'userId');
    expect((await request(app()).get('/items/a%20b')).body).toEqual({ id: 'a b' });
  });
});
