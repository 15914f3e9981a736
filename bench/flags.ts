/**
 * `npm run bench:flags`: feature-flag evaluation throughput, ours beside unleash-client on the same
 * 100 flags and users in the same process, and (with Redis and Postgres available) how long a
 * change made through one process takes to be returned by `isEnabled` in another.
 *
 * Environment: AIKB_BENCH_REDIS_URL (default redis://127.0.0.1:6379),
 * AIKB_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; a fresh database
 * is created for the run and dropped after).
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { InMemStorageProvider, Unleash } from 'unleash-client';
import { createRedisInvalidationBus } from '@aikb/core/cache';
import { createDatabase, migrate } from '@aikb/core/db';
import { createFeatureFlagClient, createMemoryFlagStore, createPostgresFlagStore, flagStoreMigrations, type FeatureFlagClient } from '@aikb/core/flags';
import { median, percentile } from './stats';

const FLAGS = 100;
const USERS = 1000;
const RUNS = 5;
const EVALUATIONS_PER_RUN = 3_000_000;
const UPDATES = 200;
const PROPAGATION_RUNS = 3;
const redisUrl = process.env.AIKB_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const databaseUrl = process.env.AIKB_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The same 100 flags for both: a mix of off, 0%, partial and 100% rollouts. */
const definitions = Array.from({ length: FLAGS }, (_, i) => ({
  name: `bench_flag_${i}`,
  enabled: i % 10 !== 0,
  rolloutPercentage: i % 5 === 0 ? 100 : (i * 37) % 101,
}));
const names = definitions.map((d) => d.name);
const contexts = Array.from({ length: USERS }, (_, i) => ({ userId: `user-${i}` }));

function timeLoop(isEnabled: (name: string, context: { userId: string }) => boolean): number {
  let enabled = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < EVALUATIONS_PER_RUN; i++) {
    if (isEnabled(names[i % FLAGS]!, contexts[i % USERS]!)) enabled++;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (enabled === 0) throw new Error('no flag was ever enabled: the bench is broken');
  return EVALUATIONS_PER_RUN / seconds;
}

async function throughput(): Promise<{ ours: number; unleash: number }> {
  const store = createMemoryFlagStore();
  for (const d of definitions) await store.put(d.name, { enabled: d.enabled, rolloutPercentage: d.rolloutPercentage }, 'bench');
  const flags = createFeatureFlagClient({ store });
  await flags.start();

  const unleash = new Unleash({
    appName: 'aikb-bench',
    url: 'http://127.0.0.1:9/api/', // never contacted: refreshInterval 0 disables fetching
    refreshInterval: 0,
    disableMetrics: true,
    storageProvider: new InMemStorageProvider(),
    skipInstanceCountWarning: true,
    bootstrap: {
      data: definitions.map((d) => ({
        name: d.name,
        enabled: d.enabled,
        type: 'release',
        project: 'default',
        stale: false,
        impressionData: false,
        strategies: [{ name: 'flexibleRollout', constraints: [], parameters: { rollout: String(d.rolloutPercentage), stickiness: 'userId', groupId: d.name } }],
        variants: [],
      })),
    },
  });
  unleash.on('error', (error: Error) => {
    throw error;
  });
  if (!unleash.getFeatureToggleDefinition(names[0]!)) await once(unleash, 'ready');

  // Both must agree on every decision before their speed means anything.
  for (const name of names) {
    for (const context of contexts.slice(0, 200)) {
      if (flags.isEnabled(name, context) !== unleash.isEnabled(name, context)) throw new Error(`disagreement on ${name} for ${context.userId}`);
    }
  }

  const ours: number[] = [];
  const theirs: number[] = [];
  timeLoop((n, c) => flags.isEnabled(n, c)); // warm-up
  timeLoop((n, c) => unleash.isEnabled(n, c));
  for (let run = 0; run < RUNS; run++) {
    ours.push(timeLoop((n, c) => flags.isEnabled(n, c)));
    theirs.push(timeLoop((n, c) => unleash.isEnabled(n, c)));
  }
  unleash.destroy();
  await flags.close();
  return { ours: median(ours), unleash: median(theirs) };
}

async function clientOn(url: string, channel: string): Promise<{ flags: FeatureFlagClient; close(): Promise<void> }> {
  const db = await createDatabase({ url, max: 3 });
  const redis = new Redis(redisUrl);
  const bus = createRedisInvalidationBus({ redis, channel });
  const flags = createFeatureFlagClient({ store: createPostgresFlagStore({ pool: db.pool }), bus });
  await flags.start();
  while (bus.state !== 'connected') await new Promise((r) => setTimeout(r, 5));
  return {
    flags,
    async close() {
      await flags.close();
      await bus.close();
      redis.disconnect();
      await db.close();
    },
  };
}

/** Process B: reports every version of the flag it installs. */
async function follower(url: string, channel: string): Promise<void> {
  const b = await clientOn(url, channel);
  b.flags.onChange(() => {
    const evaluation = b.flags.evaluate('bench_propagation');
    process.send!({ version: evaluation.version });
  });
  process.send!({ ready: true });
  process.on('message', (message: { stop?: boolean }) => {
    if (!message.stop) return;
    // A failed close still ends the process, with a non-zero code instead of an unhandled rejection.
    void b.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}

async function propagation(): Promise<{ p50: number; p99: number } | string> {
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    probe.disconnect();
  } catch (error) {
    return `skipped: Redis at ${redisUrl} unreachable (${(error as Error).message})`;
  }
  const admin = new pg.Client({ connectionString: databaseUrl });
  try {
    await admin.connect();
  } catch (error) {
    return `skipped: Postgres at ${databaseUrl} unreachable (${(error as Error).message})`;
  }
  const name = `aikb_bench_${randomBytes(5).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const target = new URL(databaseUrl);
  target.pathname = `/${name}`;
  const url = target.href;
  try {
    const setup = await createDatabase({ url, max: 1 });
    await migrate(setup.pool, flagStoreMigrations);
    await createPostgresFlagStore({ pool: setup.pool }).put('bench_propagation', { enabled: true, rolloutPercentage: 0 }, 'bench');
    await setup.close();

    const p50s: number[] = [];
    const p99s: number[] = [];
    for (let run = 0; run < PROPAGATION_RUNS; run++) {
      const channel = `aikb:bench:${randomBytes(5).toString('hex')}`;
      const child = fork(fileURLToPath(import.meta.url), ['--follower', url, channel], { stdio: 'inherit' });
      // When B reported each version, on A's clock (IPC included: the figure errs on the slow side).
      const arrivals = new Map<number, number>();
      let waiter: { version: number; resolve: () => void } | undefined;
      child.on('message', (message: { version?: number }) => {
        if (message.version === undefined) return;
        arrivals.set(message.version, performance.now());
        if (waiter && message.version >= waiter.version) waiter.resolve();
      });
      await new Promise<void>((resolve) => child.once('message', () => resolve()));
      const a = await clientOn(url, channel);
      const latencies: number[] = [];
      for (let i = 0; i < UPDATES; i++) {
        const started = performance.now();
        const flag = await a.flags.updateFlag('bench_propagation', { rolloutPercentage: (i * 7) % 101 });
        if (!arrivals.has(flag.version)) await new Promise<void>((resolve) => (waiter = { version: flag.version, resolve }));
        latencies.push(arrivals.get(flag.version)! - started);
      }
      p50s.push(percentile(latencies, 50));
      p99s.push(percentile(latencies, 99));
      child.send({ stop: true });
      await once(child, 'exit');
      await a.close();
    }
    return { p50: median(p50s), p99: median(p99s) };
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--follower') return follower(process.argv[3]!, process.argv[4]!);
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `aikb bench:flags — ${os.cpus().length} × ${cpu}, Node.js ${process.version}, ${FLAGS} flags × ${USERS} users, median of ${RUNS} runs of ${EVALUATIONS_PER_RUN / 1e6} M evaluations`,
  );
  const { ours, unleash } = await throughput();
  const spread = await propagation();
  const rows: string[][] = [
    ['measure', 'aikb', 'unleash-client', 'ratio'],
    ['isEnabled evaluations/s (one core)', `${(ours / 1e6).toFixed(2)} M`, `${(unleash / 1e6).toFixed(2)} M`, `${(ours / unleash).toFixed(1)}×`],
  ];
  if (typeof spread === 'string') rows.push(['propagation A → B (2 processes, Redis)', spread, '—', '—']);
  else {
    rows.push([
      `propagation A → B p50 (2 processes, Redis + Postgres, ${UPDATES} updates, median of ${PROPAGATION_RUNS})`,
      `${spread.p50.toFixed(2)} ms`,
      'n/a (polling, 15 s default)',
      '—',
    ]);
    rows.push([`propagation A → B p99`, `${spread.p99.toFixed(2)} ms`, 'n/a', '—']);
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, col) => cell.padEnd(widths[col]!)).join(' | ')} |`;
  console.log(line(rows[0]!));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows.slice(1)) console.log(line(row));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
