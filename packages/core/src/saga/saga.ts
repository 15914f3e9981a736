import type { Meter, Tracer } from '@opentelemetry/api';
import type { Clock } from '../clock';
import type { SagaCompensationError } from '../errors';
import type { Logger } from '../logger';

/** A value that survives `JSON.stringify` / `JSON.parse` unchanged: what a step may return. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * The closed set of states a saga is in. `completed`, `compensated` and `cancelled` are final;
 * `compensation_failed` and `parked` wait for an operator (retry or resolve).
 *
 * | from | to |
 * | --- | --- |
 * | `running` | `completed`, `compensating`, `parked` |
 * | `compensating` | `compensated`, `cancelled`, `compensation_failed`, `parked` |
 * | `compensation_failed` | `compensating` (retry) |
 * | `parked` | the state it was parked from (retry) |
 *
 * Every {@link SagaLog} refuses any other transition.
 */
export type SagaState = 'running' | 'completed' | 'compensating' | 'compensated' | 'compensation_failed' | 'parked' | 'cancelled';

/** Every {@link SagaState}, in lifecycle order. */
export const SAGA_STATES: readonly SagaState[] = Object.freeze([
  'running',
  'completed',
  'compensating',
  'compensated',
  'compensation_failed',
  'parked',
  'cancelled',
]);

/** What happens to a saga found interrupted (its process died): undo it, or carry on. */
export type SagaRecoveryPolicy = 'compensate' | 'resume';

/** Which half of a step a log entry is about. */
export type SagaPhase = 'action' | 'compensation';

/**
 * Where one phase of one step stands:
 * - `running`: started and not finished (in flight, or its process died: possibly done);
 * - `succeeded`: returned (an action's output is stored);
 * - `failed`: threw, after its retries; it never completed, so it is not compensated;
 * - `timed_out`: an attempt did not settle (it timed out, was cancelled mid-way, or its process
 *   died and the retry after recovery did not succeed); possibly done, so it is compensated;
 * - `invalid_output`: an action returned a value that is not JSON; it ran, so it is compensated.
 */
export type SagaStepStatus = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'invalid_output';

/** An error as the log keeps it: its type, message and code, never its stack. */
export interface SagaErrorInfo {
  /** The error's class name (`SagaCompensationError`, `TypeError`, ...). */
  readonly type: string;
  readonly message: string;
  /** The `AikbError` code, or a driver's `code`, when the error had one. */
  readonly code?: string;
  /** The step it came from, when it came from one. */
  readonly step?: string;
}

/** One phase of one step, as logged. */
export interface SagaStepRecord {
  /** Position of the step in the definition, from 0. */
  readonly index: number;
  readonly name: string;
  readonly phase: SagaPhase;
  readonly status: SagaStepStatus;
  /** Attempts started, counting those of earlier processes (the retry budget is spent across restarts). */
  readonly attempts: number;
  /** An action's output once it `succeeded`; `null` otherwise. */
  readonly output: JsonValue | null;
  /** The last attempt's error. */
  readonly error: SagaErrorInfo | null;
  readonly startedAtMs: number;
  readonly finishedAtMs: number | null;
}

/** A saga as the log keeps it. Times are epoch milliseconds from the runner's clock. */
export interface SagaRecord {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly idempotencyKey: string | null;
  readonly state: SagaState;
  readonly policy: SagaRecoveryPolicy;
  readonly input: JsonValue;
  /** Why it left `running` (the failing step's error, a cancel, an interruption) or the compensation error. */
  readonly error: SagaErrorInfo | null;
  /** For `parked`: why (`definition checkout@3 is not registered`). */
  readonly parkReason: string | null;
  /** For `parked`: the state a retry returns it to. */
  readonly parkedFrom: SagaState | null;
  readonly cancelRequested: boolean;
  /** The runner instance working on it, while its lease lasts. */
  readonly leaseOwner: string | null;
  readonly leaseExpiresAtMs: number | null;
  /** How many times an instance took it over after its owner's lease expired. */
  readonly recoveries: number;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** When it reached `completed`, `compensated`, `cancelled`, `compensation_failed` or `parked`. */
  readonly finishedAtMs: number | null;
  /** When an operator marked a `compensation_failed` / `parked` saga resolved. */
  readonly resolvedAtMs: number | null;
  readonly resolvedBy: string | null;
  readonly resolutionNote: string | null;
  /** Both phases of every step started so far, actions in order, then compensations. */
  readonly steps: readonly SagaStepRecord[];
}

/** A saga in a list: the record without its input and steps. */
export type SagaSummary = Omit<SagaRecord, 'input' | 'steps'>;

/** The first write of a saga (see {@link SagaLog.create}). */
export interface NewSaga {
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly idempotencyKey: string | null;
  readonly policy: SagaRecoveryPolicy;
  readonly input: JsonValue;
  readonly owner: string;
  readonly nowMs: number;
  readonly leaseExpiresAtMs: number;
  /** Start the first action's first attempt in the same write (one round trip less per saga). */
  readonly firstStep?: string;
}

/** The lease a write is made under: refused when another instance owns the saga now. */
export interface SagaLease {
  readonly owner: string;
  readonly nowMs: number;
  /** The lease is extended to this time by the write. */
  readonly leaseExpiresAtMs: number;
}

/** {@link SagaLog.startStep}: the start of one attempt of one phase of a step. */
export interface StartStep extends SagaLease {
  readonly index: number;
  readonly name: string;
  readonly phase: SagaPhase;
}

/** What {@link SagaLog.startStep} returns. */
export interface StepStarted {
  /** Attempts of this phase so far, this one included. */
  readonly attempts: number;
  /** An operator asked to cancel the saga: run no further action. */
  readonly cancelRequested: boolean;
}

/** {@link SagaLog.finishStep}: the outcome of one phase of a step, and optionally the saga's next state. */
export interface FinishStep extends SagaLease {
  readonly index: number;
  readonly phase: SagaPhase;
  readonly status: Exclude<SagaStepStatus, 'running'>;
  readonly output?: JsonValue;
  readonly error?: SagaErrorInfo;
  /** Move the saga on in the same write (the last step completes it; a failure starts compensating). */
  readonly transition?: SagaTransition;
}

/** A change of state (see {@link SagaState} for the ones allowed). */
export interface SagaTransition {
  readonly from: SagaState;
  readonly to: SagaState;
  /** Stored as the saga's error; kept when omitted. */
  readonly error?: SagaErrorInfo;
  /** For `parked`. */
  readonly parkReason?: string;
}

/** Filters of {@link SagaLog.list}; all optional. */
export interface SagaListQuery {
  readonly states?: readonly SagaState[];
  readonly name?: string;
  /** Created at or after (epoch ms). */
  readonly createdFromMs?: number;
  /** Created before (epoch ms). */
  readonly createdToMs?: number;
  /** Sagas with `resolvedAtMs` set (true), unset (false), or both (undefined). */
  readonly resolved?: boolean;
  /**
   * At most this many (1 to 500).
   * @default 50
   */
  readonly limit?: number;
  /** The `next` cursor of the previous page. */
  readonly after?: string;
}

/** A page of {@link SagaLog.list}, newest first. */
export interface SagaPage {
  readonly items: readonly SagaSummary[];
  /** Pass as `after` for the next page; absent on the last one. */
  readonly next?: string;
}

/**
 * Where sagas are kept: what each step did, so a runner that starts after a crash knows exactly
 * what happened. Every write that changes a saga's state checks the transition is allowed
 * (`FAILED_PRECONDITION` otherwise) and, for a write made under a lease, that the lease is still
 * the caller's (`FAILED_PRECONDITION` with `details.reason: 'lease_lost'` otherwise: another
 * instance took the saga over, or its state changed under the caller).
 *
 * Implementations: {@link createMemorySagaLog} (one process) and {@link createPostgresSagaLog}.
 */
export interface SagaLog {
  /**
   * Writes a new saga in `running`, leased to `owner`. When `idempotencyKey` is taken, writes
   * nothing and returns the saga that holds it (`created: false`).
   */
  create(saga: NewSaga): Promise<{ readonly record: SagaRecord; readonly created: boolean }>;
  /** Starts an attempt (a new one counts on top of earlier ones) and extends the lease, in one write. */
  startStep(id: string, start: StartStep): Promise<StepStarted>;
  /** Records an outcome, and the transition when given, in one write. */
  finishStep(id: string, finish: FinishStep): Promise<void>;
  /** Changes the state of a saga leased to `lease.owner` (the lease is kept unless `release`). */
  transition(id: string, lease: SagaLease, transition: SagaTransition & { readonly release?: boolean }): Promise<void>;
  /**
   * Takes over up to `limit` sagas named one of `names`, in `running` or `compensating`, whose
   * lease has expired (or was released), leasing them to `lease.owner`; a saga is never handed to
   * two callers at once. A saga whose name an instance does not know is left to one that does.
   */
  claim(lease: SagaLease, limit: number, names: readonly string[]): Promise<SagaRecord[]>;
  /**
   * Reopens a `compensation_failed` saga (→ `compensating`, with a fresh retry budget for the
   * compensations that failed) or a `parked` one (→ the state it was parked from), leased to
   * `lease.owner`; clears any resolution.
   * @throws {AikbError} `FAILED_PRECONDITION` in any other state; `NOT_FOUND`
   */
  reopen(id: string, lease: SagaLease): Promise<SagaRecord>;
  /** Extends `lease.owner`'s leases on the sagas in `ids` (those it still holds); returns how many. */
  renew(lease: SagaLease, ids: readonly string[]): Promise<number>;
  /** Gives up `owner`'s leases (all, or those in `ids`), so another instance can claim them at once. */
  release(owner: string, ids?: readonly string[]): Promise<number>;
  /**
   * Asks for a saga in `running` to be cancelled; the runner that holds it sees it at its next
   * step. Returns the record, or `undefined` when there is no such saga.
   * @throws {AikbError} `FAILED_PRECONDITION` when the saga is not `running`
   */
  requestCancel(id: string, nowMs: number): Promise<SagaRecord | undefined>;
  /**
   * Marks a `compensation_failed` or `parked` saga resolved by an operator (it stays in its state,
   * is no longer listed as open, and retention may prune it).
   * @throws {AikbError} `FAILED_PRECONDITION` in any other state
   */
  resolve(id: string, resolution: { readonly by: string; readonly note: string; readonly nowMs: number }): Promise<SagaRecord | undefined>;
  /** One saga with its steps, or `undefined`. */
  get(id: string): Promise<SagaRecord | undefined>;
  /** Sagas newest first, filtered, by keyset pages. */
  list(query?: SagaListQuery): Promise<SagaPage>;
  /** How many sagas are in each state (for status pages). */
  countByState(): Promise<Readonly<Record<SagaState, number>>>;
  /**
   * Deletes up to `limit` finished sagas (`completed`, `compensated`, `cancelled`, or resolved)
   * that finished before `beforeMs`; never an unresolved `compensation_failed` or `parked` one.
   */
  prune(beforeMs: number, limit: number): Promise<number>;
}

/** Retries of one phase of a step, through p-retry. */
export interface SagaRetryPolicy {
  /**
   * Retries after the first attempt (so `retries + 1` attempts in all, counted across restarts).
   * @default 2 for actions, 5 for compensations
   */
  readonly retries?: number;
  /**
   * Delay before the first retry, in ms (doubled by `factor` each time, up to `maxDelayMs`).
   * @default 100
   */
  readonly minDelayMs?: number;
  /** @default 5000 */
  readonly maxDelayMs?: number;
  /** @default 2 */
  readonly factor?: number;
  /**
   * Multiply each delay by a random factor from 1 to 2.
   * @default true
   */
  readonly randomize?: boolean;
  /**
   * Whether an error may be retried; a non-retryable error of an action goes straight to
   * compensation. (p-retry never retries a `TypeError`, which is a programming error.)
   * @default () => true
   */
  readonly retryable?: (error: unknown) => boolean;
}

/** What an action is given. */
export interface SagaStepContext<I, P> {
  readonly sagaId: string;
  readonly input: I;
  /** The outputs of the steps before this one, by step name. */
  readonly outputs: Readonly<P>;
  /** This attempt, from 1, counted across restarts. */
  readonly attempt: number;
  /** Aborted when the attempt times out or the saga is cancelled: pass it to your I/O. */
  readonly signal: AbortSignal;
}

/** What a compensation is given. */
export interface SagaCompensationContext<I, P, O> {
  readonly sagaId: string;
  readonly input: I;
  /** The outputs the earlier steps produced (a step that timed out or was interrupted has none). */
  readonly outputs: Readonly<Partial<P>>;
  /**
   * This step's output, or `undefined` when the action timed out, returned an invalid output, or
   * its process died: it may or may not have taken effect, and the compensation must cope with both.
   */
  readonly output: O | undefined;
  readonly attempt: number;
  readonly signal: AbortSignal;
}

/** One step of a saga, as passed to {@link SagaDefinition.step}. */
export interface SagaStepOptions<I, P, O extends JsonValue> {
  /** Does the work; its output must be JSON (it is stored, and read back after a restart). */
  action(context: SagaStepContext<I, P>): Promise<O>;
  /**
   * Undoes the work. Must be idempotent: it can run after an action that timed out or whose
   * process died (which may not have taken effect), and more than once after a crash.
   */
  compensate?(context: SagaCompensationContext<I, P, O>): Promise<void>;
  /**
   * Per attempt, in ms. An action that times out is treated as possibly done: not retried, compensated.
   * @default 30000
   */
  timeoutMs?: number;
  /** Retries of the action. */
  retry?: SagaRetryPolicy;
  /** Retries of the compensation (also per attempt: `compensationTimeoutMs`). */
  compensationRetry?: SagaRetryPolicy;
  /** @default timeoutMs */
  compensationTimeoutMs?: number;
}

/** A step of a definition, as the runner reads it. */
export interface SagaStepDefinition {
  readonly name: string;
  readonly action: (context: SagaStepContext<unknown, Record<string, JsonValue>>) => Promise<JsonValue>;
  readonly compensate?: (context: SagaCompensationContext<unknown, Record<string, JsonValue>, JsonValue>) => Promise<void>;
  readonly timeoutMs: number;
  readonly compensationTimeoutMs: number;
  readonly retry: Readonly<Required<SagaRetryPolicy>>;
  readonly compensationRetry: Readonly<Required<SagaRetryPolicy>>;
}

/**
 * A saga: a name, a version and steps in order; built with {@link defineSaga} and `.step()`, each
 * of which returns a new definition whose later steps see the earlier steps' outputs, typed.
 */
export interface SagaDefinition<I extends JsonValue = JsonValue, P extends Record<string, JsonValue> = Record<string, JsonValue>> {
  readonly name: string;
  readonly version: number;
  readonly recovery: SagaRecoveryPolicy;
  readonly steps: readonly SagaStepDefinition[];
  /**
   * A new definition with one more step.
   * @throws {TypeError} on a duplicate or empty name, or invalid options
   */
  step<N extends string, O extends JsonValue>(
    name: N extends keyof P ? never : N,
    options: SagaStepOptions<I, P, O>,
  ): SagaDefinition<I, P & { readonly [K in N]: O }>;
  /** Phantom: the input type. */
  readonly __input?: I;
  /** Phantom: the outputs type. */
  readonly __outputs?: P;
}

/** {@link defineSaga} options. */
export interface SagaDefinitionOptions {
  /** Unique among the definitions a runner has. */
  name: string;
  /**
   * Raise it whenever the steps change: a saga interrupted under one version is never run
   * against another's steps (it is parked until its version is registered again).
   */
  version: number;
  /**
   * What recovery does with a saga interrupted while `running`.
   * @default 'compensate'
   */
  recovery?: SagaRecoveryPolicy;
}

/** What {@link SagaRunner.run} ends with. */
export type SagaOutcome<P extends Record<string, JsonValue> = Record<string, JsonValue>> =
  | { readonly id: string; readonly state: 'completed'; readonly outputs: Readonly<P> }
  | { readonly id: string; readonly state: 'compensated' | 'cancelled' | 'parked'; readonly error: SagaErrorInfo | null }
  | { readonly id: string; readonly state: 'compensation_failed'; readonly error: SagaErrorInfo | null; readonly compensationError: SagaCompensationError }
  /** Still going: in another instance (the idempotency key was taken), or this runner is closing. */
  | { readonly id: string; readonly state: 'running' | 'compensating' };

/** {@link SagaRunner.run} options. */
export interface SagaRunOptions {
  /** A second run with the same key writes nothing and returns the first run's outcome. */
  idempotencyKey?: string;
}

/** What {@link SagaRunner.recover} did. */
export interface SagaRecoveryResult {
  readonly claimed: number;
  readonly completed: number;
  readonly compensated: number;
  readonly compensationFailed: number;
  readonly parked: number;
  /** Claimed but not finished here (this runner is closing, or lost the lease). */
  readonly unfinished: number;
}

/** {@link SagaRunner.stats}: counts since the runner was created, plus what is in flight. */
export interface SagaRunnerStats {
  readonly owner: string;
  readonly definitions: readonly string[];
  readonly inFlight: number;
  readonly started: number;
  readonly completed: number;
  readonly compensated: number;
  readonly compensationFailed: number;
  readonly cancelled: number;
  readonly parked: number;
  readonly recovered: number;
  /** `compensated / started` (0 before the first saga): the runbook's target is under 1 %. */
  readonly compensationRate: number;
  readonly lastRecoveryAtMs: number | null;
  readonly lastRecoveryError: string | null;
  readonly lastPruneAtMs: number | null;
  readonly pruned: number;
  readonly closed: boolean;
}

/** The durable saga runner. */
export interface SagaRunner {
  /** Makes `definition` available to recovery (`run` registers it too). @throws {TypeError} on another definition with the same name and version */
  register(definition: SagaDefinition<never, never> | SagaDefinition): void;
  /**
   * Runs `definition` on `input`: each step in order, and on a failure the compensations of the
   * steps that ran, in reverse. Resolves with the outcome; rejects only when the log cannot be
   * written (nothing is lost: recovery finishes the saga).
   * @throws {ValidationError} when `input` is not JSON, or the idempotency key is taken by another saga name or input
   */
  run<I extends JsonValue, P extends Record<string, JsonValue>>(definition: SagaDefinition<I, P>, input: I, options?: SagaRunOptions): Promise<SagaOutcome<P>>;
  /**
   * Cancels a `running` saga: no further action runs, and the completed ones are compensated (its
   * final state is `cancelled`, or `compensation_failed`). The running step's signal is aborted
   * when it runs here; another instance sees the request at its next step.
   * @throws {AikbError} `NOT_FOUND`; `FAILED_PRECONDITION` when not `running`
   */
  cancel(id: string): Promise<SagaRecord>;
  /**
   * Runs again a `compensation_failed` saga (its failed compensations, with a fresh budget) or a
   * `parked` one (once its definition is registered), and resolves with the outcome.
   * @throws {AikbError} `NOT_FOUND`; `FAILED_PRECONDITION` in another state or with the definition still missing
   */
  retry(id: string): Promise<SagaOutcome>;
  /** Marks a `compensation_failed` or `parked` saga resolved. @throws {AikbError} `NOT_FOUND`; `FAILED_PRECONDITION` */
  resolve(id: string, resolution: { by: string; note?: string }): Promise<SagaRecord>;
  /** Takes over interrupted sagas whose lease expired and finishes them per their policy. */
  recover(): Promise<SagaRecoveryResult>;
  /** Deletes finished sagas older than the retention; returns how many. */
  prune(): Promise<number>;
  get(id: string): Promise<SagaRecord | undefined>;
  list(query?: SagaListQuery): Promise<SagaPage>;
  stats(): SagaRunnerStats;
  /**
   * Stops the intervals, lets in-flight sagas reach their next step boundary (or aborts them after
   * `drainMs`), and releases their leases so another instance takes them over at once.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** {@link createSagaRunner} options. */
export interface SagaRunnerOptions {
  /** Where sagas are kept. Required. */
  log: SagaLog;
  /** Definitions recovery can finish (more with `register`). @default [] */
  definitions?: readonly SagaDefinition<never, never>[] | readonly SagaDefinition[];
  /**
   * This instance's name in leases.
   * @default `${hostname}:${pid}:${random}`
   */
  owner?: string;
  /**
   * How long a lease lasts without being renewed (renewed every third of it while work runs). A
   * saga whose owner died is recovered this long after its last write.
   * @default 30000
   */
  leaseMs?: number;
  /**
   * Run `recover()` this often; 0 turns the interval off (call `recover()` yourself).
   * @default 10000
   */
  recoveryIntervalMs?: number;
  /**
   * Sagas claimed per `recover()` call.
   * @default 20
   */
  recoveryBatchSize?: number;
  /**
   * Finished sagas are pruned after this long (unresolved failed and parked ones are kept).
   * @default 604800000 (7 days)
   */
  retentionMs?: number;
  /** @default systemClock */
  clock?: Clock;
  /** @default noopLogger */
  logger?: Logger;
  /** @default metrics.getMeter('@aikb/core') */
  meter?: Meter;
  /** @default trace.getTracer('@aikb/core') */
  tracer?: Tracer;
  /** Called with each compensation failure (for error metrics and alerts); its errors are ignored. */
  onCompensationFailure?: (error: Error) => void;
}
