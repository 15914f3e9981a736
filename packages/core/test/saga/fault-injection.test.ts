/**
 * Proof by fault injection, on PostgreSQL (several processes share one database): randomized runs
 * of a three-step saga in child processes, where each action and compensation fails by throwing,
 * by timing out, or by its process being SIGKILLed (also right after any of the saga's log
 * writes); then recovery, operator retries, and a check that an independent side-effect ledger
 * agrees with the log. And three runner processes recovering one batch: each saga exactly once.
 *
 * `AIKB_SAGA_FAULT_RUNS` sets the number of runs (default 200); `AIKB_SAGA_FAULT_SEED` replays a
 * seed (printed when a check fails). Skipped without `AIKB_TEST_DATABASE_URL`.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createIsolatedPostgres, seededRandom, testDatabaseUrl } from '@aikb/test-support';
import { migrate, type Database } from '../../src/db';
import { createPostgresSagaLog, createSagaRunner, sagaLogMigrations, type SagaRecord, type SagaState, type SagaSummary } from '../../src/saga';
import { faultSaga, LEDGER_MIGRATION, SAGA_NAME, STEPS, type Fault, type RunPlan } from './fault-saga';

const RUNS = Number(process.env.AIKB_SAGA_FAULT_RUNS ?? 200);
const SEED = Number(process.env.AIKB_SAGA_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const LANES = 5;
const CHILD = fileURLToPath(new URL('./fault-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../..', import.meta.url));
/** Moves a recovering runner's clock past every lease a dead child held. */
const OFFSET_MS = 10 * 60_000;

const ACTION_FAULTS = ['throw', 'flaky', 'timeout_after_effect', 'timeout_before_effect', 'kill_before_effect', 'kill_after_effect'] as const;
const COMPENSATION_FAULTS = ['throw', 'flaky', 'timeout_after_effect', 'timeout_before_effect', 'kill_before_effect', 'kill_after_effect'] as const;
/** Writes of a three-step saga: create, 2 per action, 2 per compensation, the last transition. */
const MAX_WRITES = 2 * STEPS * 2;

/**
 * The plans: first every position × every way of failing (each action fault at each step; each
 * compensation fault at each step below a failing one; a kill after each log write), then random.
 */
function plans(count: number, next: () => number): RunPlan[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const enumerated: Fault[][] = [[]];
  for (let step = 0; step < STEPS; step++) for (const type of ACTION_FAULTS) enumerated.push([{ at: 'action', step, type }]);
  for (let step = 0; step < STEPS - 1; step++)
    for (const type of COMPENSATION_FAULTS)
      enumerated.push([
        { at: 'action', step: STEPS - 1, type: 'throw' },
        { at: 'compensation', step, type },
      ]);
  for (let write = 1; write <= MAX_WRITES; write++)
    enumerated.push([{ at: 'log', write, type: 'kill' }, ...(write > 2 * STEPS ? [{ at: 'action', step: STEPS - 1, type: 'throw' } as const] : [])]);
  const result: RunPlan[] = [];
  for (let run = 0; run < count; run++) {
    const version = next() < 0.15 ? 2 : 1;
    if (run < enumerated.length) {
      result.push({ run, version, faults: enumerated[run]! });
      continue;
    }
    const faults: Fault[] = [];
    const roll = next();
    if (roll < 0.1) {
      // no fault: completes
    } else if (roll < 0.25) {
      faults.push({ at: 'log', write: 1 + Math.floor(next() * MAX_WRITES), type: 'kill' });
      if (next() < 0.5) faults.push({ at: 'action', step: STEPS - 1, type: 'throw' });
    } else {
      const step = Math.floor(next() * STEPS);
      const type = pick(ACTION_FAULTS);
      faults.push({ at: 'action', step, type });
      const compensates = type !== 'flaky';
      const highest = type === 'throw' ? step - 1 : step;
      if (compensates && highest >= 0 && next() < 0.5)
        faults.push({ at: 'compensation', step: Math.floor(next() * (highest + 1)), type: pick(COMPENSATION_FAULTS) });
    }
    result.push({ run, version, faults });
  }
  return result;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts a child process on `job`; `onStdout` sees its output as it comes. */
function child(job: object, onStdout?: (text: string) => void) {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(job)], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onStdout?.(stdout);
  });
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exit>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { proc, exited: exited.then((e) => ({ ...e, stdout, stderr })) };
}

async function listAll(log: ReturnType<typeof createPostgresSagaLog>, states?: SagaState[]): Promise<SagaSummary[]> {
  const all: SagaSummary[] = [];
  let after: string | undefined;
  do {
    const page = await log.list({ name: SAGA_NAME, limit: 500, ...(states ? { states } : {}), ...(after ? { after } : {}) });
    all.push(...page.items);
    after = page.next;
  } while (after);
  return all;
}

type Ledger = Map<string, number>;
const ledgerKey = (run: number, step: number, kind: 'action' | 'compensation') => `${run}:${step}:${kind}`;

/** What the ledger and the log say about one saga that is not right, as sentences. */
function violations(record: SagaRecord, run: number, ledger: Ledger, final: boolean): string[] {
  const found: string[] = [];
  const action = (step: number) => ledger.get(ledgerKey(run, step, 'action')) ?? 0;
  const compensation = (step: number) => ledger.get(ledgerKey(run, step, 'compensation')) ?? 0;
  const statusOf = (step: number) => record.steps.find((s) => s.phase === 'action' && s.index === step)?.status;
  const failedAt = record.state === 'compensation_failed' ? record.steps.find((s) => s.phase === 'compensation' && s.status !== 'succeeded')?.index : undefined;
  for (let step = 0; step < STEPS; step++) {
    const status = statusOf(step);
    if (action(step) > 1) found.push(`step ${step}: action ran ${action(step)} times`);
    if (status === 'succeeded' && action(step) !== 1) found.push(`step ${step}: logged succeeded but the ledger has no action`);
    if (record.state === 'completed') {
      if (action(step) !== 1) found.push(`completed, but step ${step} has no action in the ledger`);
      if (compensation(step) > 0) found.push(`completed, but step ${step} was compensated`);
      continue;
    }
    if (record.state === 'parked' && !final) continue;
    // No action without its compensation on a non-completed saga (but the failed compensation and those after it).
    const pending = failedAt !== undefined && step <= failedAt;
    if (action(step) > 0 && compensation(step) === 0 && !pending) found.push(`${record.state}: step ${step} acted but was never compensated`);
    // No compensation of a step that never ran to completion, unless it timed out or its process died.
    if (compensation(step) > 0 && action(step) === 0 && status !== 'timed_out' && status !== 'running')
      found.push(`${record.state}: step ${step} compensated though its action ${status ?? 'never started'}`);
    if (status === 'failed' && compensation(step) > 0) found.push(`step ${step}: its action failed, yet it was compensated`);
  }
  return found;
}

describe.skipIf(!testDatabaseUrl)('SagaRunner under fault injection [postgres]', () => {
  it(
    `ends ${RUNS} randomized runs completed, compensated or listed for an operator, and the side-effect ledger agrees with the log`,
    { timeout: 600_000 },
    async () => {
      const db: Database = await createIsolatedPostgres(testDatabaseUrl!, { max: 8 });
      const schema = /schema (\w+)/.exec(db.target)![1]!;
      const startedAt = performance.now();
      try {
        await migrate(db.pool, sagaLogMigrations);
        await db.pool.query(LEDGER_MIGRATION);
        const all = plans(RUNS, seededRandom(SEED));
        const byRun = new Map(all.map((p) => [p.run, p]));
        const log = createPostgresSagaLog({ pool: db.pool });
        const started = async () => new Set((await listAll(log)).map((s) => Number(s.idempotencyKey!.slice('run-'.length))));

        // Each lane runs its share in children until every run has started; a kill ends a child early.
        let spawned = 0;
        let killed = 0;
        await Promise.all(
          Array.from({ length: LANES }, async (_, lane) => {
            const mine = all.filter((p) => p.run % LANES === lane);
            for (let round = 0; round <= mine.length; round++) {
              const done = await started();
              // Runs that cannot kill the child first, so they finish in it; then the killing ones,
              // whose kill interrupts the others in flight at whatever point they reached.
              const kills = (p: RunPlan) => p.faults.some((f) => f.type.startsWith('kill'));
              const remaining = mine.filter((p) => !done.has(p.run)).sort((a, b) => Number(kills(a)) - Number(kills(b)));
              if (remaining.length === 0) return;
              spawned += 1;
              const exit = await child({ mode: 'run', url: testDatabaseUrl, schema, plans: remaining, concurrency: 8, leaseMs: 2000 }).exited;
              if (exit.signal === 'SIGKILL') killed += 1;
              else if (exit.code !== 0) throw new Error(`child failed (${exit.code}): ${exit.stderr}`);
            }
            throw new Error(`lane ${lane} did not start all its runs`);
          }),
        );
        expect(killed).toBeGreaterThan(0);
        const lanesDoneAt = performance.now();

        // Recovery by a runner that knows only version 1 (a deploy dropped version 2).
        const clock = {
          now: () => Date.now() + OFFSET_MS,
          setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
          clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
        };
        const runner = createSagaRunner({
          log,
          clock,
          leaseMs: 60_000,
          recoveryIntervalMs: 0,
          recoveryBatchSize: 50,
          definitions: [faultSaga(1, db.pool, false)],
        });
        let recovered = 0;
        for (let r = await runner.recover(); r.claimed > 0; r = await runner.recover()) recovered += r.claimed;

        const readLedger = async (): Promise<Ledger> =>
          new Map(
            (
              await db.pool.query<{ run: number; step: number; kind: 'action' | 'compensation'; count: number }>(
                'SELECT run, step, kind, count FROM saga_fault_ledger',
              )
            ).rows.map((r) => [ledgerKey(r.run, r.step, r.kind), r.count]),
          );
        const check = async (final: boolean) => {
          const sagas = await listAll(log);
          expect(sagas.map((s) => s.idempotencyKey).sort()).toEqual(all.map((p) => `run-${p.run}`).sort());
          const ledger = await readLedger();
          const problems: string[] = [];
          const byState = new Map<SagaState, number>();
          for (const summary of sagas) {
            byState.set(summary.state, (byState.get(summary.state) ?? 0) + 1);
            const run = Number(summary.idempotencyKey!.slice('run-'.length));
            const allowed: SagaState[] = final ? ['completed', 'compensated'] : ['completed', 'compensated', 'compensation_failed', 'parked'];
            if (!allowed.includes(summary.state)) problems.push(`run ${run}: ${summary.state}`);
            if (summary.state === 'parked' && !(summary.version === 2 && summary.parkReason === `definition ${SAGA_NAME}@2 is not registered`))
              problems.push(`run ${run}: parked for ${summary.parkReason}`);
            const record = (await log.get(summary.id))!;
            for (const v of violations(record, run, ledger, final)) problems.push(`run ${run} ${JSON.stringify(byRun.get(run)!.faults)}: ${v}`);
          }
          // Every saga waiting for an operator is listed under its state.
          for (const state of ['compensation_failed', 'parked'] as const) {
            expect((await listAll(log, [state])).length, state).toBe(byState.get(state) ?? 0);
          }
          expect(problems, `seed ${SEED}`).toEqual([]);
          return byState;
        };
        const recoveredAt = performance.now();
        const before = await check(false);
        expect(recovered).toBeGreaterThan(0);
        expect(before.get('compensation_failed') ?? 0).toBeGreaterThan(0);

        // The operator: version 2 is deployed again and the cause fixed; retry every open saga.
        runner.register(faultSaga(2, db.pool, false));
        for (const summary of await listAll(log, ['compensation_failed', 'parked'])) await runner.retry(summary.id);
        const after = await check(true);
        await runner.close();
        console.info(
          `[saga faults] seed ${SEED}: ${RUNS} runs, ${spawned} child processes (${killed} SIGKILLed), ${recovered} recovered; before operator: ${JSON.stringify(Object.fromEntries(before))}; after: ${JSON.stringify(Object.fromEntries(after))}; children ${Math.round(lanesDoneAt - startedAt)} ms, recovery ${Math.round(recoveredAt - lanesDoneAt)} ms, checks and retries ${Math.round(performance.now() - recoveredAt)} ms`,
        );
      } finally {
        await db.close();
      }
    },
  );

  it('lets three runner processes recover a batch of interrupted sagas, each exactly once', { timeout: 120_000 }, async () => {
    const db: Database = await createIsolatedPostgres(testDatabaseUrl!, { max: 4 });
    const schema = /schema (\w+)/.exec(db.target)![1]!;
    try {
      await migrate(db.pool, sagaLogMigrations);
      await db.pool.query(LEDGER_MIGRATION);
      const count = 30;
      let ready!: () => void;
      const isReady = new Promise<void>((resolve) => (ready = resolve));
      const hanging = child({ mode: 'hang', url: testDatabaseUrl, schema, count }, (out) => out.includes('ready') && ready());
      await Promise.race([isReady, hanging.exited.then((e) => Promise.reject(new Error(`hang child exited early: ${e.stderr}`)))]);
      hanging.proc.kill('SIGKILL');
      expect((await hanging.exited).signal).toBe('SIGKILL');

      const recoverers = ['r1', 'r2', 'r3'].map((owner) => child({ mode: 'recover', url: testDatabaseUrl, schema, offsetMs: OFFSET_MS, owner }));
      for (const r of recoverers) r.proc.stdin.end('go\n');
      const exits = await Promise.all(recoverers.map((r) => r.exited));
      for (const exit of exits) expect(exit.code, exit.stderr).toBe(0);
      const claims = exits.map((e) => JSON.parse(e.stdout.trim()) as { owner: string; claimed: string[] });
      const claimed = claims.flatMap((c) => c.claimed);
      expect(new Set(claimed).size).toBe(claimed.length);
      expect(claimed).toHaveLength(count);

      const log = createPostgresSagaLog({ pool: db.pool });
      const { items } = await log.list({ name: 'batch', limit: 500 });
      expect(items).toHaveLength(count);
      for (const saga of items) expect(saga).toMatchObject({ state: 'compensated', recoveries: 1 });
      const { rows } = await db.pool.query<{ run: number; step: number; kind: string; count: number }>(
        'SELECT run, step, kind, count FROM saga_fault_ledger ORDER BY run, step, kind',
      );
      // Each saga: its first action once, and both compensations exactly once (the hung step is possibly done).
      expect(rows).toEqual(
        Array.from({ length: count }, (_, n) => [
          { run: n, step: 0, kind: 'action', count: 1 },
          { run: n, step: 0, kind: 'compensation', count: 1 },
          { run: n, step: 1, kind: 'compensation', count: 1 },
        ]).flat(),
      );
      console.info(`[saga faults] three recoverers claimed ${claims.map((c) => `${c.owner}: ${c.claimed.length}`).join(', ')}`);
    } finally {
      await db.close();
    }
  });
});
