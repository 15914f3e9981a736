import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { createSpanStore } from '@aikb/core/tracing';
import { createRecordingLogger, createRecordingMeter, until } from '@aikb/test-support';
import { httpMetrics, requestLogging, tracing } from './index';

// tracing, requestLogging and httpMetrics share one close listener per response (onResponseDone):
// each still runs exactly once, and an aborted request ends its span only.
describe('the observability middleware at the end of a response', () => {
  const spans = createSpanStore();
  const { lines, ...logger } = createRecordingLogger();
  const recording = createRecordingMeter();
  let release: (() => void) | undefined;
  const listeners = (res: express.Response) => ({ finish: res.listenerCount('finish'), close: res.listenerCount('close') });
  const app = express()
    .get('/bare', (_req, res) => {
      res.json(listeners(res));
    })
    .use(tracing({ recorder: spans }), requestLogging({ logger }), httpMetrics({ meter: recording.meter }))
    .get('/ok', (_req, res) => {
      res.json({ ok: true });
    })
    .get('/listeners', (_req, res) => {
      res.json(listeners(res));
    })
    .get('/hang', (_req, res) => {
      release = () => res.end();
    });
  const server = app.listen(0, '127.0.0.1');
  const port = () => (server.address() as AddressInfo).port;
  afterAll(async () => {
    server.close();
    await recording.shutdown();
  });

  it('runs each of them once for a finished response, in the order they were mounted', async () => {
    const res = await fetch(`http://127.0.0.1:${port()}/ok`);
    expect(res.status).toBe(200);
    await until(() => spans.stats().recorded === 1, 'the request span');
    expect(lines.filter((l) => l.msg === 'GET /ok 200')).toHaveLength(1);
    expect(await recording.total('http.server.request.duration', { 'http.route': '/ok' })).toBe(1);
    expect(spans.query()[0]).toMatchObject({ spanName: 'GET /ok' });
  });

  it('adds one close listener to a response for the three of them, and no finish listener', async () => {
    const bare = (await (await fetch(`http://127.0.0.1:${port()}/bare`)).json()) as { finish: number; close: number };
    const observed = (await (await fetch(`http://127.0.0.1:${port()}/listeners`)).json()) as { finish: number; close: number };
    expect(observed).toEqual({ finish: bare.finish, close: bare.close + 1 });
  });

  it('ends the span of a request whose client went away, and writes no request line or duration for it', async () => {
    const before = spans.stats().recorded;
    const client = httpRequest({ host: '127.0.0.1', port: port(), path: '/hang' });
    client.on('error', () => undefined);
    client.end();
    await until(() => release !== undefined, 'the request reached the handler');
    client.destroy();
    await until(() => spans.stats().recorded === before + 1, 'the aborted request span');
    expect(lines.some((l) => l.msg?.startsWith('GET /hang'))).toBe(false);
    expect(await recording.total('http.server.request.duration', { 'http.route': '/hang' })).toBe(0);
    release!();
  });
});
