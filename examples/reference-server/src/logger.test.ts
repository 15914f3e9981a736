import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { requestLogging, tracing } from '@aikb/express';
import { createLogger } from './logger';

const dir = mkdtempSync(path.join(tmpdir(), 'aikb-logger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createLogger', () => {
  it("stamps requestId and traceId on lines a request's code writes through the application logger", async () => {
    const logFile = path.join(dir, 'server.log');
    const logger = createLogger({ logLevel: 'info', logFile });
    const app = express()
      .use(tracing())
      .use(requestLogging({ logger }))
      .get('/work', async (_req, res) => {
        await new Promise((resolve) => setImmediate(resolve));
        logger.info({ step: 'deep' }, 'application line');
        res.end();
      });
    logger.info({}, 'outside any request');
    const res = await request(app).get('/work').set('X-Request-ID', 'req-log-1');
    const lines = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const outside = lines.find((l) => l.msg === 'outside any request')!;
    expect(outside.requestId).toBeUndefined();
    const mine = lines.filter((l) => l.requestId === 'req-log-1');
    expect(mine.map((l) => l.msg)).toEqual(['application line', 'GET /work 200']);
    for (const line of mine) expect(line.traceId).toBe(res.headers['x-trace-id']);
    // The request's own lines carry each field once (bound by the child logger, not repeated by the mixin).
    const raw = readFileSync(logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('GET /work 200'))!;
    expect(raw.match(/"requestId"/g)).toHaveLength(1);
    expect(lines.every((l) => typeof l.severity === 'string')).toBe(true);
  });
});
