import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { requestLogging, tracing } from '@aikb/express';
import { until } from '@aikb/test-support';
import { createLogger, redactSecrets } from './logger';

const dir = mkdtempSync(path.join(tmpdir(), 'aikb-logger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The file's lines once it has `count` (the destinations write asynchronously, at once but not in the caller's tick). */
async function linesOnce(file: string, count: number): Promise<Array<Record<string, unknown>>> {
  await until(() => readLines(file).length >= count, `${count} lines in ${file}`);
  return readLines(file);
}

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
    const lines = await linesOnce(logFile, 3);
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

  it('never writes a password, a token or an Authorization header, in fields, nested fields or child bindings', async () => {
    const logFile = path.join(dir, 'secrets.log');
    const logger = createLogger({ logLevel: 'info', logFile });
    const user = { email: 'a@example.com', password: 'hunter2-field' };
    const req = { method: 'GET', headers: { authorization: 'Bearer secret-header', accept: '*/*' } };
    logger.info({ password: 'hunter2-top', token: 'secret-token', user, req, note: 'kept' }, 'fields');
    logger
      .child({ token: 'secret-binding', account: { password: 'hunter2-binding' } })
      .child({ step: 2 })
      .info({ ok: true }, 'bindings');
    const [fields, bindings] = await linesOnce(logFile, 2);
    const text = readFileSync(logFile, 'utf8');
    for (const secret of ['hunter2', 'secret-token', 'secret-header', 'secret-binding']) expect(text).not.toContain(secret);
    expect(fields).toMatchObject({
      password: '[redacted]',
      token: '[redacted]',
      user: { email: 'a@example.com', password: '[redacted]' },
      req: { method: 'GET', headers: { authorization: '[redacted]', accept: '*/*' } },
      note: 'kept',
    });
    expect(bindings).toMatchObject({ token: '[redacted]', account: { password: '[redacted]' }, step: 2, ok: true });
    // The caller's objects are not changed.
    expect(user.password).toBe('hunter2-field');
    expect(req.headers.authorization).toBe('Bearer secret-header');
  });
});

describe('redactSecrets', () => {
  it('returns the same object when there is nothing to redact, and a copy when there is', () => {
    const clean = { method: 'GET', endpoint: '/api/health', status: 200, nested: { a: 1 }, list: [{ password: 'in a list: not a path' }] };
    expect(redactSecrets(clean)).toBe(clean);
    const secret = { a: 1, token: 't' };
    expect(redactSecrets(secret)).toEqual({ a: 1, token: '[redacted]' });
    expect(secret.token).toBe('t');
    const both = { req: { password: 'p', headers: { authorization: 'x' } } };
    expect(redactSecrets(both)).toEqual({ req: { password: '[redacted]', headers: { authorization: '[redacted]' } } });
  });
});
