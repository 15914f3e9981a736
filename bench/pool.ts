/**
 * `npm run bench:pool`: what PoolMonitor costs on `pool.query`, side by side with the bare pool.
 *
 * Three identical pools per backend: bare, monitored with the defaults (leak detection on, no
 * acquire stacks) and monitored with acquire stacks captured. With one caller they take turns query
 * by query and each query's latency is timed; with four callers they take turns round by round.
 * Either way machine noise hits all three alike. Prints medians and the overhead against the bare pool.
 *
 * Backends: PostgreSQL at AIKB_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres;
 * set it to "" to skip) and embedded PGlite.
 */
import os from 'node:os';
import { createDatabase, type Database } from '../packages/core/src/db';
import { createPoolMonitor } from '../packages/core/src/pool';

const ROUNDS = Number(process.env.AIKB_BENCH_ROUNDS ?? 61);
const QUERIES = Number(process.env.AIKB_BENCH_QUERIES ?? 300);
const LATENCY_QUERIES = Number(process.env.AIKB_BENCH_LATENCY_QUERIES ?? 20_000);
const url = process.env.AIKB_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Sample {
  /** Wall-clock µs per query. */
  wall: number;
  /** This process's CPU µs (user + system) per query: the monitor's cost without the server's noise. */
  cpu: number;
}

/** One round of `QUERIES` queries, `concurrency` at a time. */
async function round(db: Database, concurrency: number): Promise<Sample> {
  let left = QUERIES;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) await db.pool.query('SELECT 1');
    }),
  );
  const wall = ((performance.now() - started) * 1000) / QUERIES;
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) / QUERIES };
}

interface Row {
  backend: string;
  /** Median µs per query (wall clock and CPU): bare pool, monitored (defaults), monitored with acquire stacks. */
  times: [Sample, Sample, Sample];
  /** Median over rounds of each monitored variant's figure divided by the bare pool's in the same round. */
  ratios: [Sample, Sample];
}

/**
 * One caller: the three pools take turns query by query, each query timed on its own (wall clock),
 * so that load from other processes hits all three alike; medians of 3 × LATENCY_QUERIES.
 */
async function latency(dbs: readonly [Database, Database, Database]): Promise<Row> {
  const times: [number[], number[], number[]] = [[], [], []];
  for (let i = 0; i < LATENCY_QUERIES; i++) {
    for (let k = 0; k < 3; k++) {
      const v = (i + k) % 3;
      const started = performance.now();
      await dbs[v]!.pool.query('SELECT 1');
      times[v]!.push((performance.now() - started) * 1000);
    }
  }
  const [bare, monitored, stacks] = times.map((t) => median(t)) as [number, number, number];
  const sample = (wall: number): Sample => ({ wall, cpu: Number.NaN });
  return { backend: '', times: [sample(bare), sample(monitored), sample(stacks)], ratios: [sample(monitored / bare), sample(stacks / bare)] };
}

async function compare(backend: string, open: () => Promise<Database>, concurrency: number): Promise<Row> {
  const dbs = [await open(), await open(), await open()] as const;
  const monitors = [
    createPoolMonitor(dbs[1].pool),
    createPoolMonitor(dbs[2].pool, { captureStacks: true }),
  ];
  try {
    if (concurrency === 1) {
      for (const db of dbs) await round(db, 1);
      return { ...(await latency(dbs)), backend };
    }
    // Warm-up: open every connection and let the JIT settle.
    for (const db of dbs) await round(db, concurrency);
    const times: [Sample[], Sample[], Sample[]] = [[], [], []];
    for (let i = 0; i < ROUNDS; i++) {
      // Rotate which goes first, so no variant always runs on a warmer (or busier) machine.
      for (let k = 0; k < 3; k++) {
        const v = (i + k) % 3;
        times[v]!.push(await round(dbs[v]!, concurrency));
      }
    }
    for (const monitor of monitors) if (monitor.snapshot().holdTime.count < ROUNDS * QUERIES) throw new Error('a monitor missed queries');
    const medians = (v: 0 | 1 | 2): Sample => ({ wall: median(times[v].map((t) => t.wall)), cpu: median(times[v].map((t) => t.cpu)) });
    const paired = (v: 1 | 2): Sample => ({
      wall: median(times[v].map((t, i) => t.wall / times[0][i]!.wall)),
      cpu: median(times[v].map((t, i) => t.cpu / times[0][i]!.cpu)),
    });
    return { backend, times: [medians(0), medians(1), medians(2)], ratios: [paired(1), paired(2)] };
  } finally {
    for (const monitor of monitors) monitor.close();
    for (const db of dbs) await db.close();
  }
}

const rows: Row[] = [];
if (url) {
  rows.push(await compare('postgres, 1 caller', () => createDatabase({ url, max: 1 }), 1));
  rows.push(await compare('postgres, 4 connections, 4 callers', () => createDatabase({ url, max: 4 }), 4));
}
rows.push(await compare('pglite (embedded), 1 caller', () => createDatabase({ dataDir: 'memory://', vector: false }), 1));

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`PoolMonitor overhead on pool.query('SELECT 1') — ${os.cpus().length} × ${cpu}, Node.js ${process.version}`);
console.log(`${LATENCY_QUERIES} queries per pool (1 caller); ${ROUNDS} rotating rounds of ${QUERIES} queries (4 callers)`);
const pct = (ratio: number) => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)}%`;
const cell = (t: Sample) => (Number.isNaN(t.cpu) ? `${t.wall.toFixed(1)} µs` : `${t.wall.toFixed(1)} / ${t.cpu.toFixed(1)} µs`);
const overhead = (r: Sample) => (Number.isNaN(r.cpu) ? pct(r.wall) : `${pct(r.wall)} / ${pct(r.cpu)}`);
console.log('1 caller: median latency of one query, the pools taking turns query by query.');
console.log('4 callers: median µs per query over rounds, as wall clock / CPU of this process; overhead = median of per-round ratios.\n');
console.log('| backend | bare pool | monitored (defaults) | overhead | monitored + acquire stacks | overhead |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const { backend, times: [bare, monitored, stacks], ratios: [plain, withStacks] } of rows) {
  console.log(`| ${backend} | ${cell(bare)} | ${cell(monitored)} | ${overhead(plain)} | ${cell(stacks)} | ${overhead(withStacks)} |`);
}
