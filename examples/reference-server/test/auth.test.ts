import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { describeWithRedis, hasRedisServer, useThrowawayRedis } from '@aikb/test-support';
import { eventually, runServerCommand, send, startServerProcess, tempDataDir, useServerProcesses, type ServerProcess } from './harness';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const { running, cleanups } = useServerProcesses();

function dataDir(): string {
  const data = tempDataDir();
  cleanups.push(data.cleanup);
  return data.dir;
}

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess(env);
  running.push(server);
  return server;
}

/** The runbook's login request. */
const login = (server: ServerProcess, email: string, password: string) => send(server, 'POST', '/auth/login', { json: { email, password } });

function adminTokenFrom(stderr: string): string | undefined {
  return /ADMIN_TOKEN=(\S+)/.exec(stderr)?.[1];
}

describe('aikb-server auth (embedded mode)', () => {
  it('logs in the seeded runbook user, answers one identical 401 for unknown email and wrong password, and logs the constant-time line', async () => {
    const server = await start({ AIKB_DATA_DIR: dataDir() });
    const ok = await login(server, 'test@example.com', 'test12345');
    expect(ok.status).toBe(200);
    const body = JSON.parse(ok.text) as { token: string; expiresIn: number };
    expect(body.token.split('.')).toHaveLength(3);
    expect(body.expiresIn).toBeGreaterThan(0);
    const unknown = await login(server, 'nobody@example.com', 'test12345');
    const wrong = await login(server, 'test@example.com', 'wrong-password');
    expect([unknown.status, wrong.status]).toEqual([401, 401]);
    expect(unknown.text).toBe(wrong.text);
    expect(server.logs.some((l) => /^constant-time auth enabled: floor 500 ms ± 15 ms$/.test(l.msg))).toBe(true);
    expect(JSON.stringify(server.logs)).not.toContain('test12345');

    // A user token without the admin role does not open /api/admin.
    const res = await fetch(`${server.url}/api/admin/users`, { headers: { authorization: `Bearer ${body.token}` } });
    expect(res.status).toBe(403);
  });

  it('answers a 10 MB body with 413 problem+json, through the login path', async () => {
    const server = await start({ AIKB_DATA_DIR: dataDir() });
    const res = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'test@example.com', password: 'x'.repeat(10 * 1024 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(((await res.json()) as { field: string }).field).toBe('body');
  });

  it('generates an admin token once, stores it with mode 0600 and reuses it on restart', async () => {
    const dir = dataDir();
    const first = await start({ AIKB_DATA_DIR: dir });
    const token = adminTokenFrom(first.stderr());
    expect(token).toBeDefined();
    const file = path.join(dir, 'admin-token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(token);
    expect(JSON.stringify(first.logs)).not.toContain(token!);
    const users = await fetch(`${first.url}/api/admin/users`, { headers: { authorization: `Bearer ${token}` } });
    expect(users.status).toBe(200);
    expect(((await users.json()) as { users: Array<{ email: string }> }).users.map((u) => u.email)).toEqual(['test@example.com']);
    await first.stop('SIGTERM');
    running.splice(running.indexOf(first), 1);

    const second = await start({ AIKB_DATA_DIR: dir });
    expect(adminTokenFrom(second.stderr())).toBeUndefined();
    expect((await fetch(`${second.url}/api/admin/users`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    // the same JWT secret too: a token from the first run still works
    expect((await login(second, 'test@example.com', 'test12345')).status).toBe(200);
  });

  it('manages users through /api/admin/users, and an admin user token opens it', async () => {
    const server = await start({ AIKB_DATA_DIR: dataDir(), ADMIN_TOKEN: 'an-admin-token-for-the-e2e-test' });
    const admin = { authorization: 'Bearer an-admin-token-for-the-e2e-test', 'content-type': 'application/json' };
    const short = await fetch(`${server.url}/api/admin/users`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ email: 'ops@example.com', password: 'short', roles: ['admin'] }),
    });
    expect(short.status).toBe(400);
    const created = await fetch(`${server.url}/api/admin/users`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ email: 'ops@example.com', password: 'ops password', roles: ['admin'] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const { token } = JSON.parse((await login(server, 'OPS@example.com', 'ops password')).text) as { token: string };
    expect((await fetch(`${server.url}/api/admin/users`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const disabled = await fetch(`${server.url}/api/admin/users/${id}`, { method: 'PATCH', headers: admin, body: JSON.stringify({ disabled: true }) });
    expect(disabled.status).toBe(200);
    expect((await login(server, 'ops@example.com', 'ops password')).status).toBe(401);
    expect((await fetch(`${server.url}/api/admin/users/${id}`, { method: 'DELETE', headers: admin })).status).toBe(204);
  });

  it('adds a user with `aikb-server users add` on a stopped server', async () => {
    const dir = dataDir();
    const child = spawn(process.execPath, [cli, 'users', 'add', '--email', 'cli@example.com', '--role', 'admin', '--password-stdin'], {
      env: { ...process.env, AIKB_DATA_DIR: dir, LOG_LEVEL: 'warn' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.end('cli password\n');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^added user cli@example\.com \(id [0-9a-f-]+, roles: admin\)$/m);

    const server = await start({ AIKB_DATA_DIR: dir });
    const { status, text } = await login(server, 'cli@example.com', 'cli password');
    expect(status).toBe(200);
    const { token } = JSON.parse(text) as { token: string };
    expect((await fetch(`${server.url}/api/admin/users`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    // The audit trail names the CLI as the actor of the creation.
    const id = /\(id ([0-9a-f-]+),/.exec(stdout)![1]!;
    const history = (await (await fetch(`${server.url}/api/admin/users/${id}/history`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      history: Array<{ action: string; actor: string }>;
    };
    expect(history.history).toEqual([expect.objectContaining({ action: 'create', actor: 'cli' })]);
  });
});

/** Ten wrong logins, then the eleventh: blocked whether or not the email exists. */
async function expectBlockedAfterTen(server: ServerProcess, email: string): Promise<void> {
  for (let i = 0; i < 10; i++) expect((await login(server, email, 'wrong-password')).status).toBe(401);
  const blocked = await login(server, email, 'wrong-password');
  expect(blocked.status).toBe(429);
  expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(890);
  expect(blocked.headers.get('ratelimit-limit')).toBe('10');
  expect(blocked.headers.get('ratelimit-remaining')).toBe('0');
  expect(blocked.headers.get('content-type')).toMatch(/problem\+json/);
}

describe('aikb-server login rate limits (in memory)', () => {
  it('blocks an email + IP after 10 consecutive failures with 429, Retry-After and RateLimit-*, for known and unknown emails alike', async () => {
    const server = await start({ AIKB_DATA_DIR: dataDir() });
    await expectBlockedAfterTen(server, 'test@example.com');
    await expectBlockedAfterTen(server, 'nobody-at-all@example.com');
    // even the right password is refused while blocked
    expect((await login(server, 'test@example.com', 'test12345')).status).toBe(429);
  });
});

describeWithRedis('aikb-server login rate limits', (redisUrl) => {
  it('keeps the block in Redis (REDIS_URL), so it holds across instances', async () => {
    const email = `e2e-${randomBytes(6).toString('hex')}@example.com`;
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      const server = await start({ AIKB_DATA_DIR: dataDir(), REDIS_URL: redisUrl });
      await expectBlockedAfterTen(server, email);
      expect(await redis.exists(`aikb:login:fail:${email}|127.0.0.1`)).toBe(1);
      const other = await start({ AIKB_DATA_DIR: dataDir(), REDIS_URL: redisUrl });
      expect((await login(other, email, 'wrong-password')).status).toBe(429);
    } finally {
      await redis.del(`aikb:login:fail:${email}|127.0.0.1`, 'aikb:login:ip:127.0.0.1');
      redis.disconnect();
    }
  });
});

describe('aikb-server login under a flood', () => {
  it('lets the seeded user in at once after two floods of wrong logins, keeps /api/health up and writes no error line per refusal', async () => {
    const server = await start({ AIKB_DATA_DIR: dataDir(), ADMIN_TOKEN: 'an-admin-token-for-the-flood-test' });
    const attempts = async () => {
      const res = await fetch(`${server.url}/api/admin/system/status`, { headers: { authorization: 'Bearer an-admin-token-for-the-flood-test' } });
      return ((await res.json()) as { subsystems: { auth: { attempts: number } } }).subsystems.auth.attempts;
    };
    for (let round = 0; round < 2; round++) {
      const before = await attempts();
      const flood = Array.from({ length: 400 }, () =>
        login(server, `flood-${randomBytes(6).toString('hex')}@example.com`, 'wrong-password').catch(() => ({ status: 0 })),
      );
      await eventually(async () => (await attempts()) > before, 5000, 'the flood reaching the authenticator');
      const health = await fetch(`${server.url}/api/health`);
      expect(health.status).toBe(200);
      const statuses = new Set((await Promise.all(flood)).map((r) => r.status));
      for (const status of statuses) expect([401, 503]).toContain(status);
    }
    const started = performance.now();
    const ok = await login(server, 'test@example.com', 'test12345');
    expect(ok.status).toBe(200);
    // answered at its deadline (≈ 500 ms), with slack for a loaded machine, not refused or queued
    expect(performance.now() - started).toBeLessThan(1500);
    expect(server.logs.filter((l) => l.level >= 50)).toEqual([]);
    const refusalLines = server.logs.filter((l) => /admission control/.test(l.msg));
    expect(refusalLines.every((l) => l.level === 40)).toBe(true);
  });
});

describe.runIf(hasRedisServer())('aikb-server logins when Redis dies', () => {
  const redisServer = useThrowawayRedis();

  it('answers every login at its deadline from in-process limits: no 503, none later than the window + 1 s', async () => {
    const server = await start({ AIKB_DATA_DIR: dataDir(), REDIS_URL: redisServer().url });
    try {
      expect((await login(server, 'test@example.com', 'test12345')).status).toBe(200);
      await redisServer().kill();
      const results: Array<{ status: number; ms: number }> = [];
      for (let batch = 0; batch < 9; batch++) {
        results.push(
          ...(await Promise.all(
            Array.from({ length: 5 }, async (_, i) => {
              const started = performance.now();
              const right = i === 0;
              const { status } = await login(
                server,
                right ? 'test@example.com' : `down-${randomBytes(4).toString('hex')}@example.com`,
                right ? 'test12345' : 'wrong-password',
              );
              return { status, ms: performance.now() - started };
            }),
          )),
        );
      }
      expect(results.filter((r) => r.status === 200)).toHaveLength(9);
      expect(results.filter((r) => r.status === 401)).toHaveLength(36);
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(1520);
    } finally {
      await redisServer().start(); // for the suite's own clean-up
    }
  });
});

describe('aikb-server auth in production', () => {
  it('refuses to start without ADMIN_TOKEN: one clear line, exit code 1', async () => {
    const result = await runServerCommand(['serve'], { NODE_ENV: 'production', AIKB_DATA_DIR: dataDir(), AUTH_JWT_SECRET: 'x'.repeat(40) });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      'aikb-server: invalid configuration: ADMIN_TOKEN is required when NODE_ENV=production (at least 16 characters)',
    ]);
  });

  it('refuses to start without AUTH_JWT_SECRET', async () => {
    const result = await runServerCommand(['serve'], { NODE_ENV: 'production', AIKB_DATA_DIR: dataDir(), ADMIN_TOKEN: 'a-production-admin-token' });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^aikb-server: invalid configuration: AUTH_JWT_SECRET is required when NODE_ENV=production/);
  });

  it('never seeds the test user', async () => {
    const server = await start({ NODE_ENV: 'production', AIKB_DATA_DIR: dataDir(), ADMIN_TOKEN: 'a-production-admin-token', AUTH_JWT_SECRET: 'y'.repeat(40) });
    expect((await login(server, 'test@example.com', 'test12345')).status).toBe(401);
    const res = await fetch(`${server.url}/api/admin/users`, { headers: { authorization: 'Bearer a-production-admin-token' } });
    expect(((await res.json()) as { users: unknown[] }).users).toEqual([]);
  });
});

/** Real timing on the real server: only with AIKB_TIMING_TESTS=1 (a quiet machine). */
describe.runIf(process.env.AIKB_TIMING_TESTS === '1')('aikb-server login timing (AIKB_TIMING_TESTS=1)', () => {
  it("answers every class of the runbook's logins no earlier than 480 ms, with medians in [480, 525] ms and within 20 ms of each other", async () => {
    const server = await start({ AIKB_DATA_DIR: dataDir() });
    await login(server, 'test@example.com', 'test12345'); // warm-up
    const classes = [
      ['test@example.com', 'test12345'],
      ['test@example.com', 'wrong-password'],
      ['nobody@example.com', 'test12345'],
    ] as const;
    const times: number[][] = classes.map(() => []);
    for (let i = 0; i < 10; i++) {
      for (const [c, [email, password]] of classes.entries()) {
        const start = performance.now();
        await login(server, email, password);
        times[c]!.push(performance.now() - start);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // The lower bound is guaranteed by design; the upper one is statistical (scheduling noise).
    expect(Math.min(...times.flat())).toBeGreaterThanOrEqual(479);
    for (const xs of times) {
      expect(median(xs)).toBeGreaterThanOrEqual(480);
      expect(median(xs)).toBeLessThanOrEqual(525);
    }
    const medians = times.map(median);
    expect(Math.max(...medians) - Math.min(...medians)).toBeLessThan(20);
  });
});
