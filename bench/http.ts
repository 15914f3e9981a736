/**
 * `npm run bench:http`: HTTP throughput and p99 of the reference server (the built bundle, `npm run
 * build` first) with its full middleware stack — tracing, request logs, HTTP metrics and error
 * windows, the NUL guard, the admin guard or `requireUser` — beside the same handlers on bare
 * Express (the same `@aikb/express` routers over the same core primitives, on the same database
 * and Redis, nothing in front of them), for three requests: a flag status read, a search, and a
 * health check. The bare app is started as Express services usually are (`app.listen`); a second
 * comparison runs it on an HTTP server made with `expressServerOptions`, as the reference server's
 * is, which shows the middleware's own cost. Then the throughput of three instances on this one
 * machine, and how long a flag change made through one instance takes to be served by the two
 * others.
 *
 * One table from one process run; autocannon (10 connections, `BENCH_HTTP_SECONDS` s per run,
 * default 5) is the client, in this process. Full and bare runs alternate, 5 of each; the table
 * shows medians. The servers log at `info` (JSON, to a file).
 *
 * Environment: AIKB_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres, with
 * pgvector: a fresh database is created for the run and dropped after). Redis: a throw-away
 * `redis-server` on a spare port, or AIKB_BENCH_REDIS_URL when set.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import express from 'express';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createRedisInvalidationBus } from '@aikb/core/cache';
import { checkDatabase, createDatabase } from '@aikb/core/db';
import { createFeatureFlagClient, createPostgresFlagStore } from '@aikb/core/flags';
import { createHealthRegistry } from '@aikb/core/health';
import { createHashingEmbedder, createPostgresSearchStore } from '@aikb/core/search';
import { expressServerOptions, featureFlagsRouter, healthRouter, searchRouter } from '@aikb/express';
import { createLogger } from '../examples/reference-server/src/logger';
import { median, percentile } from './support';

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const CONNECTIONS = 10;
const RUNS = 5;
/** Connections to each of the three instances (12 in all, against 10 for one). */
const PER_INSTANCE = Math.ceil(CONNECTIONS / 3);
const DOCUMENTS = 300;
const PROPAGATION_CHANGES = 100;
const FLAG = 'priority_2_2_rbac_api_filtering';
const ADMIN_TOKEN = 'bench-http-admin-token-0123456789';
const JWT_SECRET = 'bench-http-jwt-secret-0123456789abcdefgh';
const PRINCIPAL = { userId: 'bench-user', roles: ['user'] };
const WORDS = 'pool connection saga upload drive flag rollout cache redis postgres vector search index token login audit trace metric health'.split(' ');
const cli = fileURLToPath(new URL('../examples/reference-server/dist/cli.js', import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface Running {
  readonly url: string;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/**
 * The built reference server, as an operator runs it: production settings, JSON logs at
 * `logLevel` on stdout, which goes to a file (as under systemd with `LOG_FILE`), so that no reader
 * of a pipe competes with the servers for the CPU.
 */
async function startFull(databaseUrl: string, redisUrl: string, logLevel = 'info'): Promise<Running> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'aikb-bench-http-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    LOG_LEVEL: logLevel,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    ADMIN_TOKEN,
    AUTH_JWT_SECRET: JWT_SECRET,
    AIKB_DATA_DIR: path.join(root, 'data'),
  };
  delete env.LOG_FILE;
  const out = openSync(path.join(root, 'stdout.log'), 'a');
  const child = spawn(process.execPath, [cli, 'serve'], { env, stdio: ['ignore', out, out] });
  closeSync(out);
  const url = `http://127.0.0.1:${port}`;
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`aikb-server exited with ${String(code)}: ${readFileSync(path.join(root, 'stdout.log'), 'utf8').slice(-2000)}`);
  });
  await Promise.race([until(async () => (await fetch(`${url}/api/health`)).status === 200, `${url} healthy`), exited]);
  exited.catch(() => undefined);
  return {
    url,
    async stop() {
      await stopChild(child);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * How the bare app runs: `plain` is `app.listen`, as an Express service is usually started;
 * `primed` is an HTTP server made with `expressServerOptions(app)` (as the reference server's
 * is), so that the full stack's own cost shows against the same server; `logged` is `plain` plus
 * the server's request log line (its own logger, `createLogger`, one `info` line per request):
 * the cost of that line alone, the floor of any stack that logs every request.
 */
type BareMode = 'plain' | 'primed' | 'logged';

/** This file again, as `--bare`: the same handlers on bare Express. Its output goes to a file, as the full server's does. */
async function startBare(databaseUrl: string, redisUrl: string, mode: BareMode = 'plain'): Promise<Running> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'aikb-bench-bare-'));
  const out = openSync(path.join(root, 'stdout.log'), 'a');
  const child = fork(fileURLToPath(import.meta.url), ['--bare', databaseUrl, redisUrl, mode], { stdio: ['ignore', out, out, 'ipc'] });
  closeSync(out);
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`bare Express exited with ${String(code)}: ${readFileSync(path.join(root, 'stdout.log'), 'utf8').slice(-2000)}`);
  });
  const [message] = (await Promise.race([once(child, 'message'), exited])) as [{ port: number }];
  exited.catch(() => undefined);
  return {
    url: `http://127.0.0.1:${message.port}`,
    async stop() {
      await stopChild(child);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * The bare app: `featureFlagsRouter`, `searchRouter` and `healthRouter` of `@aikb/express` over the
 * server's primitives (Postgres flag store + Redis bus, Postgres search store with the same
 * embedder and flag switches, health checks doing the server's work), with no middleware in
 * front: no tracing, logs, metrics, guard or user check (the caller is a fixed principal).
 */
async function runBare(databaseUrl: string, redisUrl: string, mode: BareMode): Promise<void> {
  const db = await createDatabase({ url: databaseUrl, max: 10 });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const flags = createFeatureFlagClient({ store: createPostgresFlagStore({ pool: db.pool }), bus: createRedisInvalidationBus({ redis }) });
  await flags.start();
  const search = createPostgresSearchStore({ pool: db.pool, embedder: createHashingEmbedder({ dimensions: 256 }) });
  await search.start();
  const health = createHealthRegistry();
  // The server's four checks, with the same work and the same members: the database's (after one
  // turn of the event loop, as the server's waits for the pool check to read the pool first),
  // Redis's, the pool's figures and the search subsystem's state.
  health.register('database', async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const check = await checkDatabase(db.pool);
    return { ...check, kind: 'postgres', migrations: 'applied', vector: 'available' };
  });
  health.register('redis', async () => (redis.status === 'ready' ? (await redis.ping(), { status: 'ok', connection: redis.status }) : { status: 'down' }));
  health.register('pool', () => {
    const { totalCount, idleCount, waitingCount } = db.pool;
    return { status: 'ok', activeConnections: totalCount - idleCount, availableConnections: idleCount, queuedRequests: waitingCount, maxConnections: 10 };
  });
  health.register('search', () => ({ status: 'ok', embedder: 'hashing', dimensions: 256 }));

  const app = express();
  app.disable('x-powered-by');
  if (mode === 'logged') {
    const logger = createLogger({ logLevel: 'info', logFile: undefined });
    app.use((req, res, next) => {
      const started = performance.now();
      res.once('finish', () => {
        const endpoint = req.originalUrl.split('?')[0];
        const line = { method: req.method, endpoint, status: res.statusCode, durationMs: Math.round((performance.now() - started) * 100) / 100 };
        logger.info(line, `${req.method} ${endpoint} ${res.statusCode}`);
      });
      next();
    });
  }
  app.use('/api/health', healthRouter({ registry: health, version: 'bench', tracing: true }));
  app.use('/api/admin/feature-flags', featureFlagsRouter({ flags }));
  app.use(
    '/api',
    searchRouter({
      search,
      principal: () => PRINCIPAL,
      vectorValidation: (_req, principal) => flags.isEnabled('priority_1_1_vector_validation', { userId: principal.userId }, true),
      rbacFiltering: (_req, principal) => flags.isEnabled(FLAG, { userId: principal.userId }, true),
    }),
  );
  const server = (mode === 'primed' ? createServer(expressServerOptions(app), app) : createServer(app)).listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
  });
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void flags
      .close()
      .then(() => redis.quit())
      .then(() => db.close())
      .finally(() => process.exit(0));
  });
}

async function call<T = Record<string, unknown>>(url: string, method: string, pathname: string, token: string | undefined, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${pathname}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${pathname}: ${res.status} ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Target {
  readonly name: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: string;
  /** Headers for the full stack (its guard or user check); the bare app needs none. */
  readonly headers: Record<string, string>;
}

interface Measured {
  readonly rps: number;
  readonly p99: number;
  readonly failures: number;
}

async function cannon(url: string, target: Target, headers: Record<string, string>, connections = CONNECTIONS): Promise<Measured> {
  const result = await autocannon({
    url: `${url}${target.path}`,
    method: target.method,
    headers: { ...headers, ...(target.body ? { 'content-type': 'application/json' } : {}) },
    body: target.body,
    connections,
    duration: SECONDS,
  });
  return { rps: result.requests.average, p99: result.latency.p99, failures: result.errors + result.timeouts + result.non2xx };
}

async function main(): Promise<void> {
  const databaseUrl = process.env.AIKB_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `aikb_bench_http_${randomBytes(4).toString('hex')}`;
  const adminDb = new pg.Client({ connectionString: databaseUrl });
  await adminDb.connect();
  await adminDb.query(`CREATE DATABASE ${name}`);
  const target = new URL(databaseUrl);
  target.pathname = `/${name}`;
  const benchDatabaseUrl = target.href;

  let redisChild: ChildProcess | undefined;
  let redisUrl = process.env.AIKB_BENCH_REDIS_URL;
  if (!redisUrl) {
    if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('no redis-server on PATH: set AIKB_BENCH_REDIS_URL');
    const port = await freePort();
    redisChild = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    redisUrl = `redis://127.0.0.1:${port}`;
    await until(
      async () =>
        spawnSync('redis-cli', ['-p', String(port), 'ping'])
          .stdout?.toString()
          .trim() === 'PONG',
      'redis-server',
    );
  }

  const running: Running[] = [];
  try {
    const full = await startFull(benchDatabaseUrl, redisUrl);
    running.push(full);
    // A user to search as, and documents it may read.
    await call(full.url, 'POST', '/api/admin/users', ADMIN_TOKEN, { email: 'bench@example.com', password: 'bench password 1', roles: ['user'] });
    const { token } = await call<{ token: string }>(full.url, 'POST', '/auth/login', undefined, { email: 'bench@example.com', password: 'bench password 1' });
    for (let i = 0; i < DOCUMENTS; i++) {
      const text = Array.from({ length: 80 }, (_, j) => WORDS[(i * 7 + j * 13) % WORDS.length]).join(' ');
      await call(full.url, 'POST', '/api/admin/documents', ADMIN_TOKEN, { title: `doc ${i}`, text, acl: i % 2 ? ['role:user'] : ['role:staff'] });
    }
    const bare = await startBare(benchDatabaseUrl, redisUrl);
    running.push(bare);

    const targets: Target[] = [
      {
        name: 'flag status read',
        method: 'GET',
        path: `/api/admin/feature-flags/${FLAG}/status?userId=test-user`,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      },
      {
        name: 'search (query, k = 10)',
        method: 'POST',
        path: '/api/search',
        body: JSON.stringify({ query: 'saga upload drive', k: 10 }),
        headers: { authorization: `Bearer ${token}` },
      },
      { name: 'health check', method: 'GET', path: '/api/health', headers: {} },
    ];
    // Both answer each request the same way before anything is measured.
    for (const t of targets) {
      for (const [url, headers] of [
        [full.url, t.headers],
        [bare.url, {}],
      ] as const) {
        const res = await fetch(`${url}${t.path}`, { method: t.method, headers: { ...headers, 'content-type': 'application/json' }, body: t.body });
        if (res.status !== 200) throw new Error(`${t.name} on ${url}: ${res.status} ${await res.text()}`);
      }
    }
    // Warm-up, then alternating runs.
    for (const t of targets) {
      await cannon(full.url, t, t.headers);
      await cannon(bare.url, t, {});
    }
    const rows: string[][] = [];
    /** Alternating runs of `server` and the bare app on `t`: medians, and the table row for them. */
    const versusBare = async (label: string, server: Running, t: Target, headers: Record<string, string>, reference = bare) => {
      const serverRuns: Measured[] = [];
      const bareRuns: Measured[] = [];
      for (let run = 0; run < RUNS; run++) {
        serverRuns.push(await cannon(server.url, t, headers));
        bareRuns.push(await cannon(reference.url, t, {}));
      }
      const f = { rps: median(serverRuns.map((m) => m.rps)), p99: median(serverRuns.map((m) => m.p99)) };
      const b = { rps: median(bareRuns.map((m) => m.rps)), p99: median(bareRuns.map((m) => m.p99)) };
      rows.push([
        label,
        `${Math.round(f.rps)} req/s, p99 ${f.p99} ms`,
        `${Math.round(b.rps)} req/s, p99 ${b.p99} ms`,
        `${((100 * f.rps) / b.rps).toFixed(1)} %`,
        String([...serverRuns, ...bareRuns].reduce((sum, m) => sum + m.failures, 0)),
      ]);
      return f.rps;
    };
    let singleFlagRps = 0;
    for (const t of targets) {
      const rps = await versusBare(t.name, full, t, t.headers);
      if (t.name === 'flag status read') singleFlagRps = rps;
    }
    // The middleware's own cost: the same comparison against bare Express on an equally made server.
    const primed = await startBare(benchDatabaseUrl, redisUrl, 'primed');
    running.push(primed);
    for (const t of targets) {
      await cannon(primed.url, t, {});
      await versusBare(`${t.name}, vs bare Express with expressServerOptions`, full, t, t.headers, primed);
    }
    // Where the difference goes, for the flag read: the same server with its request logs off.
    const quiet = await startFull(benchDatabaseUrl, redisUrl, 'warn');
    running.push(quiet);
    const flagRead = targets[0]!;
    await cannon(quiet.url, flagRead, flagRead.headers);
    await versusBare('flag status read, LOG_LEVEL=warn (no request logs)', quiet, flagRead, flagRead.headers);
    // The floor: bare Express and nothing but the server's request log line.
    const logged = await startBare(benchDatabaseUrl, redisUrl, 'logged');
    running.push(logged);
    await cannon(logged.url, flagRead, {});
    await versusBare('flag status read, bare Express + the request log line only', logged, flagRead, {});
    for (const stopped of [bare, primed, quiet, logged]) {
      await stopped.stop();
      running.splice(running.indexOf(stopped), 1);
    }

    // Three instances on this machine: each gets a third of the connections, all at once.
    const others = [await startFull(benchDatabaseUrl, redisUrl), await startFull(benchDatabaseUrl, redisUrl)];
    running.push(...others);
    const three = [full, ...others];
    const flagTarget = targets[0]!;
    await Promise.all(three.map((s) => cannon(s.url, flagTarget, flagTarget.headers, PER_INSTANCE))); // warm-up
    const threeRuns: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const results = await Promise.all(three.map((s) => cannon(s.url, flagTarget, flagTarget.headers, PER_INSTANCE)));
      threeRuns.push(results.reduce((sum, r) => sum + r.rps, 0));
    }
    const threeRps = median(threeRuns);

    // Propagation: a flag change through the first instance, read back-to-back on the other two.
    const delays: number[] = [];
    let firstRead = 0;
    for (let i = 0; i < PROPAGATION_CHANGES; i++) {
      const written = await call<{ version: number }>(full.url, 'POST', `/api/admin/feature-flags/${FLAG}`, ADMIN_TOKEN, {
        rolloutPercentage: i % 2 ? 100 : 99,
      });
      const answered = performance.now();
      for (const s of others) {
        let reads = 0;
        for (;;) {
          reads += 1;
          const status = await call<{ version: number }>(s.url, 'GET', flagTarget.path, ADMIN_TOKEN);
          if (status.version >= written.version) break;
        }
        if (reads === 1) firstRead += 1;
        delays.push(performance.now() - answered);
      }
    }
    await call(full.url, 'POST', `/api/admin/feature-flags/${FLAG}`, ADMIN_TOKEN, { rolloutPercentage: 100 });

    const load = os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ');
    console.log(
      `\nbench:http — ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node.js ${process.version}; load average ${load} (1/5/15 min) at the end` +
        `\nautocannon ${CONNECTIONS} connections, ${SECONDS} s per run, median of ${RUNS} runs each, full and bare alternating; PostgreSQL + Redis on loopback\n`,
    );
    const header = ['request', 'full stack (reference server)', 'bare Express, same handler', 'full ÷ bare (target ≥ 85 %)', 'non-2xx/errors'];
    const table = [header, ...rows];
    const widths = header.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    for (const r of table) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
    console.log(
      `\nthree instances on this machine, flag status read, ${PER_INSTANCE} connections each: ${Math.round(threeRps)} req/s in total` +
        ` (one instance: ${Math.round(singleFlagRps)} req/s; ${(threeRps / singleFlagRps).toFixed(2)}×)`,
    );
    console.log(
      `flag change through A, served by B and C (${PROPAGATION_CHANGES} changes × 2 instances, from A's answer to the read that shows it):` +
        ` p50 ${percentile(delays, 50).toFixed(2)} ms, p99 ${percentile(delays, 99).toFixed(2)} ms, max ${Math.max(...delays).toFixed(2)} ms;` +
        ` visible on the first read ${firstRead} of ${delays.length}`,
    );
  } finally {
    for (const s of running.reverse()) await s.stop().catch(() => undefined);
    if (redisChild) {
      redisChild.kill('SIGKILL');
      await once(redisChild, 'exit');
    }
    await adminDb.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await adminDb.end();
  }
}

if (process.argv[2] === '--bare') {
  await runBare(process.argv[3]!, process.argv[4]!, process.argv[5] as BareMode);
} else {
  await main();
}
