/**
 * `npm run bench:pool`: what PoolMonitor costs on `pool.query`, side by side with the bare pool.
 *
 * One pool per backend, run in three variants that take turns on the very same connections: bare,
 * monitored with the defaults (leak detection on, no acquire stacks: the reference server as
 * shipped), and monitored during a leak hunt (acquire stacks captured, as with
 * `POOL_CAPTURE_STACKS=1`). The monitor is attached and removed between turns, outside the timed part, so
 * neither a slower server backend process nor load from other processes favours one variant.
 *
 * The variants take turns round by round (ROUNDS rounds of QUERIES queries each).
 * - 1 caller: each query's latency is timed; medians over every query of a variant.
 * - 4 callers: µs per query of each round (wall clock and this process's CPU time).
 *
 * Backends: PostgreSQL at AIKB_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres;
 * set it to "" to skip) and embedded PGlite.
 */
import os from 'node:os';
import { createDatabase, type Database } from '../packages/core/src/db';
import { createPoolMonitor, type PoolMonitorOptions } from '../packages/core/src/pool';
import { median } from './support';

const ROUNDS = Number(process.env.AIKB_BENCH_ROUNDS ?? 61);
const QUERIES = Number(process.env.AIKB_BENCH_QUERIES ?? 300);
const url = process.env.AIKB_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The variants: no monitor, the defaults, a leak hunt running (acquire stacks on). */
const VARIANTS: Array<{ options: PoolMonitorOptions; hunt: boolean } | undefined> = [undefined, { options: {}, hunt: false }, { options: {}, hunt: true }];

/** µs per query: wall clock, and this process's CPU (user + system; NaN where not measured). */
interface Sample {
  wall: number;
  cpu: number;
}

interface Row {
  backend: string;
  /** Medians per variant. */
  times: Sample[];
  /** Each monitored variant against the bare pool. */
  ratios: Sample[];
}

/** Runs `body` with variant `v` attached to the pool, and counts what the monitor saw. */
async function withVariant<T>(db: Database, v: number, seen: number[], body: () => Promise<T>): Promise<T> {
  const variant = VARIANTS[v];
  const monitor = variant ? createPoolMonitor(db.pool, variant.options) : undefined;
  if (variant?.hunt) monitor!.startLeakHunt(60 * 60_000);
  try {
    return await body();
  } finally {
    if (monitor) {
      seen[v]! += monitor.stats().holdTimeMs.count;
      monitor.close();
    }
  }
}

async function latency(db: Database, seen: number[]): Promise<Pick<Row, 'times' | 'ratios'>> {
  const times: number[][] = VARIANTS.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = (i + k) % VARIANTS.length;
      await withVariant(db, v, seen, async () => {
        for (let q = 0; q < QUERIES; q++) {
          const started = performance.now();
          await db.pool.query('SELECT 1');
          times[v]!.push((performance.now() - started) * 1000);
        }
      });
    }
  }
  const medians = times.map((t) => ({ wall: median(t), cpu: Number.NaN }));
  return { times: medians, ratios: medians.slice(1).map((m) => ({ wall: m.wall / medians[0]!.wall, cpu: Number.NaN })) };
}

async function rounds(db: Database, concurrency: number, seen: number[]): Promise<Pick<Row, 'times' | 'ratios'>> {
  const samples: Sample[][] = VARIANTS.map(() => []);
  for (let i = 0; i < ROUNDS; i++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = (i + k) % VARIANTS.length;
      await withVariant(db, v, seen, async () => {
        let left = QUERIES;
        const cpu = process.cpuUsage();
        const started = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (left-- > 0) await db.pool.query('SELECT 1');
          }),
        );
        const used = process.cpuUsage(cpu);
        samples[v]!.push({ wall: ((performance.now() - started) * 1000) / QUERIES, cpu: (used.user + used.system) / QUERIES });
      });
    }
  }
  const times = samples.map((s) => ({ wall: median(s.map((x) => x.wall)), cpu: median(s.map((x) => x.cpu)) }));
  // Paired: each round's figure against the bare pool's in the same round.
  const ratios = samples.slice(1).map((s) => ({
    wall: median(s.map((x, i) => x.wall / samples[0]![i]!.wall)),
    cpu: median(s.map((x, i) => x.cpu / samples[0]![i]!.cpu)),
  }));
  return { times, ratios };
}

async function compare(backend: string, open: () => Promise<Database>, concurrency: number): Promise<Row> {
  const db = await open();
  const seen = VARIANTS.map(() => 0);
  try {
    // Warm-up: open every connection and let the JIT settle.
    await rounds(db, concurrency, []).catch(() => undefined);
    seen.fill(0);
    const result = concurrency === 1 ? await latency(db, seen) : await rounds(db, concurrency, seen);
    const expected = ROUNDS * QUERIES;
    if (seen.slice(1).some((n) => n < expected)) throw new Error(`a monitor missed queries: ${seen.join(', ')}`);
    return { backend, ...result };
  } finally {
    await db.close();
  }
}

const rows: Row[] = [];
if (url) {
  rows.push(await compare('postgres, 1 caller', () => createDatabase({ url, max: 1 }), 1));
  rows.push(await compare('postgres, 4 connections, 4 callers', () => createDatabase({ url, max: 4 }), 4));
}
rows.push(await compare('pglite (embedded), 1 caller', () => createDatabase({ dataDir: 'memory://', vector: false }), 1));

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const pct = (ratio: number) => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)}%`;
const cell = (t: Sample) => (Number.isNaN(t.cpu) ? `${t.wall.toFixed(1)} µs` : `${t.wall.toFixed(1)} / ${t.cpu.toFixed(1)} µs`);
const overhead = (r: Sample) => (Number.isNaN(r.cpu) ? pct(r.wall) : `${pct(r.wall)} / ${pct(r.cpu)}`);
console.log(`PoolMonitor overhead on pool.query('SELECT 1') — ${os.cpus().length} × ${cpu}, Node.js ${process.version}`);
console.log(`The variants take turns on the same connections, ${ROUNDS} rounds of ${QUERIES} queries each.`);
console.log('1 caller: median latency of one query.');
console.log('4 callers: median µs per query of the rounds, wall clock / CPU of this process; overhead = median of per-round ratios.\n');
console.log('| backend | bare pool | monitored (defaults, as the server ships) | overhead | during a leak hunt (acquire stacks) | overhead |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const { backend, times, ratios } of rows) {
  console.log(`| ${backend} | ${cell(times[0]!)} | ${cell(times[1]!)} | ${overhead(ratios[0]!)} | ${cell(times[2]!)} | ${overhead(ratios[1]!)} |`);
}
