import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { testRedisUrl } from '@aikb/test-support';
import { loadConfig } from './config';
import { openInfrastructure, type Infrastructure } from './infrastructure';
import { serverMigrations } from './migrations';

const root = mkdtempSync(path.join(tmpdir(), 'aikb-infrastructure-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.runIf(testRedisUrl)('the shared Redis connection', () => {
  let infra: Infrastructure | undefined;
  afterEach(async () => {
    await infra?.close();
  });

  it('logs a connection that closed without an error once, and its reconnect; nothing at shutdown', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    infra = await openInfrastructure(
      loadConfig({ AIKB_DATA_DIR: path.join(root, 'drop'), REDIS_URL: testRedisUrl!, LOG_LEVEL: 'info' }, '/'),
      logger,
      serverMigrations,
    );
    const redis = infra.redis!;
    const ready = () => new Promise<void>((resolve) => (redis.status === 'ready' ? resolve() : redis.once('ready', () => resolve())));
    await ready();
    // The socket closes with no error (as a server closing it, or a killed one's FIN): ioredis
    // emits no 'error' then, only 'close' and 'reconnecting'. The first reconnect fails the same way.
    const stream = () => (redis as unknown as { stream: { destroy(): void } }).stream;
    redis.once('connect', () => stream().destroy());
    stream().destroy();
    await new Promise((resolve) => redis.once('reconnecting', resolve));
    await ready();
    expect((await infra.health.check()).components.redis).toMatchObject({ status: 'ok' });
    const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toEqual([expect.stringMatching(/^redis connection lost; reconnecting in \d+ ms$/)]);
    expect(lines.filter((l) => l.msg === 'redis reconnected')).toHaveLength(1);
    await infra.close();
    infra = undefined;
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
  });
});
