import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { Router } from 'express';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AikbError, NotFoundError, ValidationError, type Logger } from '@aikb/core';
import { createErrorMetrics } from '@aikb/core/metrics';
import { createRecordingMeter } from '@aikb/test-support';
import { errorHandler, errorMetricsRouter, httpMetrics, notFound, requestLogging, UNMATCHED_ROUTE } from './index';

/** How many random URLs the bounded-labels property sends (raise it with AIKB_FUZZ_RUNS for a longer run). */
const RUNS = Number(process.env.AIKB_FUZZ_RUNS ?? 2000);

// Every route of the app below, as declared: the only labels allowed.
const TEMPLATES = [
  '/api/health',
  '/api/health/pool-stats',
  '/metrics',
  '/api/documents/:id',
  '/api/documents/:id/chunks/:chunk',
  '/api/documents/upload',
  '/api/admin/feature-flags',
  '/api/admin/feature-flags/:name',
  '/api/admin/feature-flags/:name/history',
  '/api/admin/users/:id',
  '/api/teams/:team/members',
  '/auth/login',
];

const recording = createRecordingMeter();
const errors = createErrorMetrics({ maxEndpoints: 1000 });
const logged: Record<string, unknown>[] = [];
const logger: Logger = {
  debug: () => {},
  info: (obj) => void logged.push(obj as Record<string, unknown>),
  warn: (obj) => void logged.push(obj as Record<string, unknown>),
  error: (obj) => void logged.push(obj as Record<string, unknown>),
};

function createApp() {
  const ok: express.RequestHandler = (_req, res) => void res.json({ ok: true });
  const fail: express.RequestHandler = () => {
    throw new AikbError('INTERNAL', 'boom');
  };
  const health = Router().get('/', ok);
  const documents = Router()
    .post('/upload', fail)
    .get('/:id', (req, res, next) => (req.params.id === 'boom' ? next(new Error('boom')) : ok(req, res, next)))
    .get('/:id/chunks/:chunk', ok);
  const flags = Router().get('/', ok).get('/:name', ok).post('/:name', fail).get('/:name/history', ok);
  const users = Router().patch('/:id', fail).delete('/:id', ok);
  const admin = Router().use('/feature-flags', flags).use('/users', users);
  // The same router reached through two mounts, one with a parameter in the mount path.
  const members = Router({ mergeParams: true }).get('/members', ok);
  const publicRoutes = Router().use('/api/health/pool-stats', Router().get('/', ok)).get('/metrics', ok);
  return express()
    .use(requestLogging({ logger }))
    .use(httpMetrics({ meter: recording.meter, errorMetrics: errors }))
    .post('/auth/login', fail)
    .use('/api/health', health)
    .use(publicRoutes)
    .use('/api/documents', documents)
    .use('/api/admin', admin)
    .use('/api/teams/:team', members)
    .use(notFound())
    .use(errorHandler());
}

let server: ReturnType<ReturnType<typeof createApp>['listen']>;
let port: number;
beforeAll(async () => {
  server = createApp().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await recording.shutdown();
});

/** Sends a raw request line (no client-side normalization of the path). */
function send(method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent: false, headers: { 'content-length': '0' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function httpRoutes(): Promise<Set<string>> {
  return new Set((await recording.points('http.server.request.duration')).map((p) => String(p.attributes['http.route'])));
}

// A URL a client could send for a real route: random casing, repeated or trailing slashes,
// percent-encoded letters, random parameter values, dot segments and a query.
const segment = fc.stringMatching(/^[\w.~!$&'()*+,;=:@-]{1,12}$/);
const percent = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, '0')}`),
  fc.constantFrom('%', '%Z', '%ZZ', '%C0%80', '%00', '%2F', '%E2%82'),
);
function variant(template: string) {
  const parts = template.split('/').filter(Boolean);
  return fc
    .record({
      parts: fc.tuple(
        ...parts.map((part) =>
          part.startsWith(':')
            ? fc.oneof(
                segment,
                percent,
                fc.tuple(segment, percent).map(([a, b]) => a + b),
              )
            : fc.constant(part),
        ),
      ),
      upper: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
      // Mostly URLs the router matches (case-insensitively); some it does not.
      encode: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }).chain((flags) => fc.oneof(fc.constant(flags.map(() => false)), fc.constant(flags))),
      slashes: fc.oneof(fc.constant(parts.map(() => 1)), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: parts.length, maxLength: parts.length })),
      trailing: fc.constantFrom('', '/', '//', '?x=1', '/?window=__proto__'),
    })
    .map(({ parts: values, upper, encode, slashes, trailing }) => {
      let i = 0;
      const cased = values.map((value) =>
        [...value]
          .map((c) => {
            const at = i++ % 64;
            const letter = upper[at] ? c.toUpperCase() : c;
            return encode[at] && /[a-z]/i.test(c) ? `%${letter.charCodeAt(0).toString(16).toUpperCase()}` : letter;
          })
          .join(''),
      );
      return cased.map((value, k) => '/'.repeat(slashes[k] ?? 1) + value).join('') + trailing;
    });
}
const randomPath = fc.array(fc.oneof(segment, percent, fc.constant('..'), fc.constant('.')), { minLength: 0, maxLength: 6 }).map((s) => `/${s.join('/')}`);
const url = fc.oneof(fc.constantFrom(...TEMPLATES).chain(variant), randomPath);
const method = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PUT');

describe('httpMetrics', () => {
  it('records http.server.request.duration in seconds with the method, route template and status code', async () => {
    await send('GET', '/api/documents/42');
    const points = await recording.points('http.server.request.duration');
    const point = points.find((p) => p.attributes['http.route'] === '/api/documents/:id' && p.attributes['http.response.status_code'] === 200);
    expect(point).toMatchObject({ attributes: { 'http.request.method': 'GET', 'http.route': '/api/documents/:id', 'http.response.status_code': 200 } });
    expect(point!.value).toBeGreaterThanOrEqual(1);
    expect(point!.sum).toBeGreaterThan(0);
  });

  it('rejects a meter that is not one, naming the option', () => {
    expect(() => httpMetrics({ meter: {} as never })).toThrow(/httpMetrics: meter must be an OpenTelemetry Meter/);
  });

  it(`labels ${RUNS} random-cased, -slashed and -encoded URLs with the matched route template only`, async () => {
    await fc.assert(
      fc.asyncProperty(method, url, async (m, path) => {
        const status = await send(m, path);
        expect(status).toBeLessThan(600);
      }),
      { numRuns: RUNS, seed: 8 },
    );
    const allowed = new Set([...TEMPLATES, UNMATCHED_ROUTE]);
    const routes = await httpRoutes();
    expect([...routes].filter((r) => !allowed.has(r))).toEqual([]);
    expect(routes.size).toBeLessThanOrEqual(TEMPLATES.length + 1);
    const endpoints = errors.endpoints('1h').map((e) => e.endpoint);
    expect(endpoints.filter((e) => !allowed.has(e))).toEqual([]);
    expect(endpoints.length).toBeLessThanOrEqual(TEMPLATES.length + 1);
    // Several casings of real routes did match (the property would be empty otherwise).
    expect(routes.size).toBeGreaterThan(TEMPLATES.length / 2);
  });

  it('labels a mixed-case URL like its route, and a failing one counts under the template', async () => {
    await send('GET', '/API/HeAlTh/Pool-Stats');
    await send('GET', '/api/Documents/boom/');
    await send('GET', '/api/TEAMS/t1/Members');
    const routes = await httpRoutes();
    expect(routes).toContain('/api/health/pool-stats');
    expect(routes).toContain('/api/teams/:team/members');
    expect(errors.report('1h').errors.map((e) => e.endpoint)).toContain('/api/documents/:id');
  });

  it('logs an unmatched request with its path cut at 200 characters', async () => {
    await send('GET', `/${'a'.repeat(5000)}`);
    const line = logged.findLast((l) => l.status === 404)!;
    expect(String(line.endpoint).length).toBeLessThanOrEqual(201);
  });
});

describe('GET /api/admin/metrics/errors', () => {
  function metricsApp() {
    const metrics = createErrorMetrics();
    const app = express()
      .use(httpMetrics({ errorMetrics: metrics }))
      .get('/api/documents/:id', (req, res) => {
        if (req.params.id !== 'd1') throw new NotFoundError('no document with this id');
        res.json({ id: 'd1' });
      })
      .post('/api/documents', () => {
        throw new ValidationError('title', 'title must be a string');
      })
      .post('/api/documents/upload', () => {
        throw new AikbError('INTERNAL', 'upload failed');
      })
      .use('/api/admin/metrics/errors', errorMetricsRouter(metrics))
      .use(notFound())
      .use(errorHandler({ logger: { debug() {}, info() {}, warn() {}, error() {} } }));
    return app;
  }

  it('counts 4xx answers as client errors per endpoint, apart from the 5xx error rate', async () => {
    const app = metricsApp();
    for (const id of ['nope', 'gone', 'none', 'd1']) await request(app).get(`/api/documents/${id}`);
    await request(app).post('/api/documents').send({});
    await request(app).post('/api/documents/upload');
    await request(app).get('/api/no-such-route');
    const res = await request(app).get('/api/admin/metrics/errors?window=5m');
    expect(res.status).toBe(200);
    const byEndpoint = Object.fromEntries((res.body.errors as { endpoint: string }[]).map((e) => [e.endpoint, e]));
    expect(byEndpoint['/api/documents/:id']).toEqual({
      endpoint: '/api/documents/:id',
      requestCount: 4,
      errorCount: 0,
      errorRate: 0,
      topErrors: [],
      clientErrorCount: 3,
      clientErrorRate: 0.75,
      topClientErrors: [{ type: 'NotFoundError', count: 3, message: 'no document with this id' }],
    });
    expect(byEndpoint['/api/documents']).toMatchObject({
      requestCount: 1,
      errorCount: 0,
      clientErrorCount: 1,
      topClientErrors: [{ type: 'ValidationError', count: 1 }],
    });
    expect(byEndpoint['/api/documents/upload']).toMatchObject({ requestCount: 1, errorCount: 1, errorRate: 1, clientErrorCount: 0, topClientErrors: [] });
    expect(byEndpoint[UNMATCHED_ROUTE]).toMatchObject({ errorCount: 0, clientErrorCount: 1 });
    // Server errors first: the runbook reads the top of the list.
    expect(res.body.errors[0].endpoint).toBe('/api/documents/upload');
  });
});
