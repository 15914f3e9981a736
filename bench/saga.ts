/**
 * `npm run bench:saga`: what the durable saga log costs. A three-step saga of no-op steps, run
 * on the Postgres log (a fresh database on the server), on embedded PGlite and on the memory log,
 * one at a time and 16 at once: sagas/s, per-step overhead p50/p99 (from one step's start to the
 * next's, so the log writes between them), and database round trips per step (counted through
 * the pool).
 *
 * Environment: AIKB_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; a
 * fresh database is created for the run and dropped after).
 */
import os from 'node:os';
import { createDatabase, migrate, type Queryable } from '@aikb/core/db';
import { benchDatabase, median, percentile, printTable } from './support';
import { createMemorySagaLog, createPostgresSagaLog, createSagaRunner, defineSaga, sagaLogMigrations, type SagaLog } from '@aikb/core/saga';

const RUNS = 3;
const SAGAS = { 1: 300, 16: 2000 } as const;
const WARM_UP = 50;
const databaseUrl = process.env.AIKB_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A pool that counts what it is asked to do: one query or one connect is one round trip. */
function counting(pool: Queryable): { pool: Queryable; count(): number } {
  let n = 0;
  return {
    pool: {
      query: ((...args: unknown[]) => {
        n += 1;
        return (pool.query as (...a: unknown[]) => unknown)(...args);
      }) as Queryable['query'],
      connect: (() => {
        n += 1;
        return pool.connect();
      }) as Queryable['connect'],
    },
    count: () => n,
  };
}

interface Result {
  sagasPerSecond: number;
  stepP50Ms: number;
  stepP99Ms: number;
  roundTripsPerStep: number | undefined;
}

/** Runs `total` sagas, `concurrency` at a time, and measures them. */
async function measure(log: SagaLog, count: (() => number) | undefined, concurrency: number, total: number): Promise<Result> {
  const runner = createSagaRunner({ log, recoveryIntervalMs: 0 });
  const marks = new Map<string, number[]>();
  const mark = (id: string) => {
    const list = marks.get(id) ?? [];
    list.push(performance.now());
    marks.set(id, list);
  };
  const saga = defineSaga<null>({ name: 'bench_noop', version: 1 })
    .step('a', { action: async ({ sagaId }) => (mark(sagaId), null), compensate: async () => undefined })
    .step('b', { action: async ({ sagaId }) => (mark(sagaId), null), compensate: async () => undefined })
    .step('c', { action: async ({ sagaId }) => (mark(sagaId), null) });
  const runAll = async (n: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < n) {
          const outcome = await runner.run(saga, null);
          if (outcome.state !== 'completed') throw new Error(`bench saga ended ${outcome.state}`);
          mark(outcome.id);
        }
      }),
    );
  };
  await runAll(WARM_UP);
  marks.clear();
  const before = count?.();
  const started = performance.now();
  await runAll(total);
  const seconds = (performance.now() - started) / 1000;
  const trips = count ? (count() - before!) / (total * 3) : undefined;
  await runner.close();
  // Step i's overhead: from its action's start to the next action's start (or the saga's end).
  const steps: number[] = [];
  for (const times of marks.values()) for (let i = 1; i < times.length; i++) steps.push(times[i]! - times[i - 1]!);
  return { sagasPerSecond: total / seconds, stepP50Ms: percentile(steps, 50), stepP99Ms: percentile(steps, 99), roundTripsPerStep: trips };
}

async function main(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `aikb bench:saga — ${os.cpus().length} × ${cpu}, Node.js ${process.version}, three no-op steps, median of ${RUNS} runs (${SAGAS[1]} sagas at 1, ${SAGAS[16]} at 16 concurrent)`,
  );
  const server = await benchDatabase(databaseUrl);
  const rows: string[][] = [['log', 'concurrent', 'sagas/s', 'per-step p50', 'per-step p99', 'round trips/step']];
  try {
    const backends: Array<{ label: string; open: () => Promise<{ log: SagaLog; count?: () => number; close(): Promise<void> }> }> = [];
    if (server) {
      const url = server.url;
      backends.push({
        label: 'PostgreSQL (loopback)',
        open: async () => {
          const db = await createDatabase({ url, max: 20 });
          await migrate(db.pool, sagaLogMigrations);
          const c = counting(db.pool);
          return { log: createPostgresSagaLog({ pool: c.pool }), count: () => c.count(), close: () => db.close() };
        },
      });
    }
    backends.push({
      label: 'PGlite (embedded)',
      open: async () => {
        const db = await createDatabase({ dataDir: 'memory://', vector: false });
        await migrate(db.pool, sagaLogMigrations);
        const c = counting(db.pool);
        return { log: createPostgresSagaLog({ pool: c.pool }), count: () => c.count(), close: () => db.close() };
      },
    });
    backends.push({ label: 'memory', open: async () => ({ log: createMemorySagaLog(), close: async () => undefined }) });

    for (const backend of backends) {
      for (const concurrency of [1, 16] as const) {
        const results: Result[] = [];
        for (let run = 0; run < RUNS; run++) {
          const opened = await backend.open();
          try {
            results.push(await measure(opened.log, opened.count, concurrency, SAGAS[concurrency]));
          } finally {
            await opened.close();
          }
        }
        const trips = results[0]!.roundTripsPerStep;
        rows.push([
          backend.label,
          String(concurrency),
          median(results.map((r) => r.sagasPerSecond)).toFixed(0),
          `${median(results.map((r) => r.stepP50Ms)).toFixed(3)} ms`,
          `${median(results.map((r) => r.stepP99Ms)).toFixed(3)} ms`,
          trips === undefined ? '—' : trips.toFixed(2),
        ]);
      }
    }
  } finally {
    await server?.drop();
  }
  printTable(rows);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
