/**
 * A child process of the saga fault-injection harness (run with `node --import tsx`). Its one
 * argument is a JSON job:
 * - `run`: runs the planned sagas (a few at a time) with their faults; a kill fault SIGKILLs it;
 * - `hang`: starts `count` sagas that hang in their second step, prints `ready`, waits to be killed;
 * - `recover`: recovers (clock moved `offsetMs` ahead, so dead leases have expired) until nothing
 *   is left, and prints the ids it claimed as JSON.
 */
import pg from 'pg';
import { createPostgresSagaLog, createSagaRunner, defineSaga, type SagaLog } from '../../src/saga/index';
import { faultSaga, killingLog, type RunPlan } from './fault-saga';

type Job =
  | { mode: 'run'; url: string; schema: string; plans: RunPlan[]; concurrency: number; leaseMs: number }
  | { mode: 'hang'; url: string; schema: string; count: number }
  | { mode: 'recover'; url: string; schema: string; offsetMs: number; owner: string };

const job = JSON.parse(process.argv[2]!) as Job;
const pool = new pg.Pool({ connectionString: job.url, max: 4, options: `-c search_path=${job.schema},public` });

/** The three-step saga of the `hang` and `recover` jobs: the second step hangs until the process dies. */
export const hangingSaga = (ledger: pg.Pool, hangs: boolean) =>
  defineSaga<{ n: number }>({ name: 'batch', version: 1 })
    .step('one', {
      action: async ({ input }) => {
        await ledger.query(
          `INSERT INTO saga_fault_ledger VALUES ($1, 0, 'action', 1) ON CONFLICT (run, step, kind) DO UPDATE SET count = saga_fault_ledger.count + 1`,
          [input.n],
        );
        return input.n;
      },
      compensate: async ({ input }) => {
        await ledger.query(
          `INSERT INTO saga_fault_ledger VALUES ($1, 0, 'compensation', 1) ON CONFLICT (run, step, kind) DO UPDATE SET count = saga_fault_ledger.count + 1`,
          [input.n],
        );
      },
    })
    .step('two', {
      action: async () => {
        if (hangs) await new Promise(() => undefined);
        return null;
      },
      compensate: async ({ input }) => {
        await ledger.query(
          `INSERT INTO saga_fault_ledger VALUES ($1, 1, 'compensation', 1) ON CONFLICT (run, step, kind) DO UPDATE SET count = saga_fault_ledger.count + 1`,
          [input.n],
        );
      },
      timeoutMs: 3_600_000,
    })
    .step('three', { action: async () => null });

async function main(): Promise<void> {
  const base = createPostgresSagaLog({ pool });
  if (job.mode === 'run') {
    const plans = new Map(job.plans.map((p) => [p.run, p]));
    const runner = createSagaRunner({ log: killingLog(base, plans), leaseMs: job.leaseMs, recoveryIntervalMs: 0 });
    const definitions = { 1: faultSaga(1, pool, true, true), 2: faultSaga(2, pool, true, true) } as const;
    const queue = [...job.plans];
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        for (let plan = queue.shift(); plan; plan = queue.shift()) {
          await runner.run(definitions[plan.version], { run: plan.run, faults: plan.faults }, { idempotencyKey: `run-${plan.run}` });
        }
      }),
    );
    await runner.close();
  } else if (job.mode === 'hang') {
    const runner = createSagaRunner({ log: base, leaseMs: 1000, recoveryIntervalMs: 0 });
    const saga = hangingSaga(pool, true);
    for (let n = 0; n < job.count; n++) void runner.run(saga, { n });
    for (;;) {
      const { rows } = await pool.query<{ count: number }>(`SELECT count(*)::int AS count FROM aikb_saga_steps WHERE name = 'two' AND status = 'running'`);
      if (rows[0]!.count === job.count) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    process.stdout.write('ready\n');
    await new Promise(() => undefined);
  } else {
    const claimed: string[] = [];
    const log: SagaLog = {
      ...base,
      claim: async (lease, limit, names) => {
        const records = await base.claim(lease, limit, names);
        claimed.push(...records.map((r) => r.id));
        return records;
      },
    };
    const clock = {
      now: () => Date.now() + job.offsetMs,
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
    };
    const runner = createSagaRunner({
      log,
      owner: job.owner,
      clock,
      leaseMs: 60_000,
      recoveryIntervalMs: 0,
      recoveryBatchSize: 3,
      definitions: [hangingSaga(pool, false)],
    });
    // Wait for the go signal on stdin, so the three instances start recovering together.
    await new Promise((resolve) => process.stdin.once('data', resolve));
    while ((await runner.recover()).claimed > 0);
    await runner.close();
    process.stdout.write(`${JSON.stringify({ owner: job.owner, claimed })}\n`);
  }
  await pool.end();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
