/**
 * The saga the fault-injection harness runs, shared by the test and its child processes: every
 * action and compensation writes its side effect to an independent ledger table, and fails by
 * throwing, by timing out or by killing its process (SIGKILL) where the run's plan says so.
 */
import type { Pool } from 'pg';
import { defineSaga, type SagaDefinition, type SagaLog } from '../../src/saga/index';

export const SAGA_NAME = 'fault_upload';
export const STEPS = 3;
export const STEP_TIMEOUT_MS = 150;

/** Where and how a run fails. */
export type Fault =
  | {
      readonly at: 'action' | 'compensation';
      readonly step: number;
      readonly type: 'throw' | 'flaky' | 'timeout_after_effect' | 'timeout_before_effect' | 'kill_before_effect' | 'kill_after_effect';
    }
  /** SIGKILL right after the saga's `write`-th log write resolved (create is the first). */
  | { readonly at: 'log'; readonly write: number; readonly type: 'kill' };

/** One randomized run: its number (the idempotency key is `run-<n>`), version and faults. */
export interface RunPlan {
  readonly run: number;
  readonly version: 1 | 2;
  readonly faults: readonly Fault[];
}

export const LEDGER_MIGRATION = `CREATE TABLE IF NOT EXISTS saga_fault_ledger (
  run integer NOT NULL, step integer NOT NULL, kind text NOT NULL, count integer NOT NULL,
  PRIMARY KEY (run, step, kind)
)`;

async function record(ledger: Pick<Pool, 'query'>, run: number, step: number, kind: 'action' | 'compensation'): Promise<void> {
  await ledger.query(
    `INSERT INTO saga_fault_ledger (run, step, kind, count) VALUES ($1, $2, $3, 1)
     ON CONFLICT (run, step, kind) DO UPDATE SET count = saga_fault_ledger.count + 1`,
    [run, step, kind],
  );
}

const kill = (): never => {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL');
};

/** Never settles unless `signal` aborts (then rejects): a hung call that honours its signal. */
const hang = (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });

/**
 * The definition of `version`. With `inject` the plan's faults fire (in the child processes);
 * without, the steps just do their work (the "fixed" code an operator retries with). Kills fire
 * only when `allowKill` (never in the test process itself).
 */
export function faultSaga(
  version: 1 | 2,
  ledger: Pick<Pool, 'query'>,
  inject: boolean,
  allowKill = false,
): SagaDefinition<{ run: number; faults: readonly Fault[] }> {
  let definition = defineSaga<{ run: number; faults: readonly Fault[] }>({ name: SAGA_NAME, version }) as unknown as SagaDefinition<{
    run: number;
    faults: readonly Fault[];
  }>;
  for (let step = 0; step < STEPS; step++) {
    const phase = async (at: 'action' | 'compensation', run: number, faults: readonly Fault[], attempt: number, signal: AbortSignal) => {
      const fault = inject ? faults.find((f): f is Extract<Fault, { step: number }> => f.at === at && 'step' in f && f.step === step) : undefined;
      switch (fault?.type) {
        case undefined:
          break;
        case 'throw':
          throw new Error(`${at} ${step} failed`);
        case 'flaky':
          if (attempt === 1) throw new Error(`${at} ${step} failed once`);
          break;
        case 'timeout_before_effect':
          if (at === 'action' || attempt === 1) await hang(signal);
          break;
        case 'timeout_after_effect':
          await record(ledger, run, step, at);
          if (at === 'action' || attempt === 1) await hang(signal);
          return;
        case 'kill_before_effect':
          if (allowKill && attempt === 1) kill();
          break;
        case 'kill_after_effect':
          await record(ledger, run, step, at);
          if (allowKill && attempt === 1) kill();
          return;
      }
      await record(ledger, run, step, at);
    };
    definition = (definition as unknown as { step: (name: string, options: object) => typeof definition }).step(`step${step}`, {
      action: async ({ input, attempt, signal }: { input: { run: number; faults: readonly Fault[] }; attempt: number; signal: AbortSignal }) => {
        await phase('action', input.run, input.faults, attempt, signal);
        return { step };
      },
      compensate: async ({ input, attempt, signal }: { input: { run: number; faults: readonly Fault[] }; attempt: number; signal: AbortSignal }) => {
        await phase('compensation', input.run, input.faults, attempt, signal);
      },
      timeoutMs: STEP_TIMEOUT_MS,
      retry: { retries: 1, minDelayMs: 0 },
      compensationRetry: { retries: 2, minDelayMs: 0 },
    });
  }
  return definition;
}

/** A log that SIGKILLs its process right after the planned write of a saga. */
export function killingLog(log: SagaLog, plans: ReadonlyMap<number, RunPlan>): SagaLog {
  const writes = new Map<string, number>();
  const runOf = new Map<string, number>();
  const after = async <T>(id: string, result: Promise<T>): Promise<T> => {
    const value = await result;
    const count = (writes.get(id) ?? 0) + 1;
    writes.set(id, count);
    const plan = plans.get(runOf.get(id) ?? -1);
    if (plan?.faults.some((f) => f.at === 'log' && f.write === count)) kill();
    return value;
  };
  return {
    ...log,
    create: async (saga) => {
      runOf.set(saga.id, (saga.input as { run: number }).run);
      return after(saga.id, log.create(saga));
    },
    startStep: (id, start) => after(id, log.startStep(id, start)),
    finishStep: (id, finish) => after(id, log.finishStep(id, finish)),
    transition: (id, lease, transition) => after(id, log.transition(id, lease, transition)),
  };
}
