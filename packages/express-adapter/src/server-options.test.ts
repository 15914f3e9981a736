import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import { Socket } from 'node:net';
import express, { Router } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { bornWith, expressServerOptions } from './server-options';
import { errorHandler } from './error-handler';
import { AikbError } from '@aikb/core';

describe('expressServerOptions', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it("makes requests and responses whose prototypes are the app's, still IncomingMessage and ServerResponse", () => {
    const app = express();
    const options = expressServerOptions(app);
    const req = new options.IncomingMessage(new Socket());
    const res = new options.ServerResponse(req);
    expect(Object.getPrototypeOf(req)).toBe(app.request);
    expect(Object.getPrototypeOf(res)).toBe(app.response);
    expect([req instanceof IncomingMessage, res instanceof ServerResponse, res.req === req]).toEqual([true, true, true]);
  });

  it('serves an Express app unchanged: params, query, headers, bodies, errors, a nested router and a sub-app, on one kept-alive connection', async () => {
    const app = express();
    const router = Router();
    router.get('/items/:id', (req, res) =>
      res.set('X-Id', req.params.id).json({ id: req.params.id, q: req.query.q ?? null, ip: req.ip, path: req.path, base: req.baseUrl }),
    );
    router.post('/echo', express.json(), (req, res) => res.status(201).json(req.body));
    router.get('/fail', () => {
      throw new AikbError('NOT_FOUND', 'no such thing');
    });
    app.use('/api', router);
    const sub = express();
    sub.get('/hello', (_req, res) => res.send('from the sub-app'));
    app.use('/sub', sub);
    app.use(errorHandler());
    server = createServer(expressServerOptions(app), app);
    // What the server made, before Express saw it (Express would set the same prototypes itself).
    const seen: boolean[] = [];
    server.prependListener('request', (req, res) => seen.push(Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response));
    const agent = request.agent(server);

    const item = await agent.get('/api/items/42?q=x');
    expect([item.status, item.headers['x-id'], item.body]).toEqual([200, '42', { id: '42', q: 'x', ip: expect.any(String), path: '/items/42', base: '/api' }]);
    const echo = await agent.post('/api/echo').send({ a: 1 });
    expect([echo.status, echo.body]).toEqual([201, { a: 1 }]);
    const failed = await agent.get('/api/fail');
    expect([failed.status, failed.headers['content-type'], (JSON.parse(failed.text) as { detail: string }).detail]).toEqual([
      404,
      'application/problem+json; charset=utf-8',
      'no such thing',
    ]);
    const fromSub = await agent.get('/sub/hello');
    expect([fromSub.status, fromSub.text]).toEqual([200, 'from the sub-app']);
    expect(seen).toEqual([true, true, true, true]);
  });

  it('refuses what is not an Express application, naming the argument', () => {
    expect(() => expressServerOptions({} as never)).toThrow(
      new TypeError('expressServerOptions: app must be an Express application (express()), with its request and response prototypes'),
    );
    expect(() => expressServerOptions(undefined as never)).toThrow(TypeError);
    expect(() => expressServerOptions(Router() as never)).toThrow(TypeError);
  });

  describe('bornWith (the constructors it returns)', () => {
    // Node's IncomingMessage and ServerResponse are plain function constructors today; a class
    // base takes the other path. Both must make an object that the base initialised and whose
    // prototype is the one given.
    class Point {
      constructor(
        readonly x: number,
        readonly y?: number,
      ) {}
    }
    function OldPoint(this: { x: number; y?: number }, x: number, y?: number) {
      this.x = x;
      this.y = y;
    }

    it.each([
      ['a class, through Reflect.construct', Point as unknown as abstract new (...args: never[]) => object],
      ['a function constructor, through call', OldPoint as unknown as abstract new (...args: never[]) => object],
    ])('%s', (_name, base) => {
      const prototype = Object.create(base.prototype as object) as object;
      const Born = bornWith(base, prototype) as unknown as new (x: number, y?: number) => { x: number; y?: number };
      const one = new Born(1, 2);
      const two = new Born(3);
      expect([Object.getPrototypeOf(one) === prototype, one instanceof base, one.x, one.y]).toEqual([true, true, 1, 2]);
      expect([Object.getPrototypeOf(two) === prototype, two.x, two.y]).toEqual([true, 3, undefined]);
    });
  });
});
