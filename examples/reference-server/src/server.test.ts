import express from 'express';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config';
import { createHttpServer } from './server';

describe('createHttpServer', () => {
  it('bounds every connection with the configured timeouts and cap (defaults: 10 s, 30 s, 5 s, 60 s, 1024)', () => {
    const server = createHttpServer(loadConfig({}, '/'), express());
    expect({
      headersTimeout: server.headersTimeout,
      requestTimeout: server.requestTimeout,
      keepAliveTimeout: server.keepAliveTimeout,
      timeout: server.timeout,
      maxConnections: server.maxConnections,
    }).toEqual({ headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000, timeout: 60_000, maxConnections: 1024 });
  });

  it('takes the HTTP_* settings', () => {
    const config = loadConfig(
      {
        HTTP_HEADERS_TIMEOUT_MS: '1500',
        HTTP_REQUEST_TIMEOUT_MS: '2500',
        HTTP_KEEPALIVE_TIMEOUT_MS: '700',
        HTTP_IDLE_TIMEOUT_MS: '9000',
        HTTP_MAX_CONNECTIONS: '3',
      },
      '/',
    );
    const server = createHttpServer(config, express());
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout, server.timeout, server.maxConnections]).toEqual([1500, 2500, 700, 9000, 3]);
  });

  it("makes requests and responses with the app's prototypes, so Express does not swap them per request", async () => {
    const app = express();
    const server = createHttpServer(loadConfig({}, '/'), app);
    const seen: boolean[] = [];
    server.prependListener('request', (req, res) => seen.push(Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response));
    app.get('/ping', (_req, res) => res.json({ ok: true }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/ping`);
      expect([res.status, await res.json(), seen]).toEqual([200, { ok: true }, [true]]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
