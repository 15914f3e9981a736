import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { metrics, type Attributes, type Counter, type Histogram, type Tracer } from '@opentelemetry/api';
import pRetry, { AbortError } from 'p-retry';
import { systemClock, unrefTimer, type Clock } from '../clock';
import { AikbError, NotFoundError, SagaCompensationError, UnavailableError, ValidationError } from '../errors';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import { withSpan } from '../tracing/with-span';
import type {
  JsonValue,
  SagaDefinition,
  SagaErrorInfo,
  SagaLease,
  SagaListQuery,
  SagaLog,
  SagaOutcome,
  SagaPhase,
  SagaRecord,
  SagaRecoveryResult,
  SagaRunner,
  SagaRunnerOptions,
  SagaRunnerStats,
  SagaRunOptions,
  SagaState,
  SagaStepDefinition,
  SagaStepRecord,
  SagaStepStatus,
} from './saga';
import { FINISHED_STATES, assertJson, canonicalJson, errorFromInfo, errorInfo, isLeaseLost, nonJsonPath } from './internal/rules';

const METER = '@aikb/core';
const PRUNE_BATCH = 1000;

/** Why a saga stopped moving here: this runner is closing, lost the lease, or cannot write the log. */
class Stop extends Error {
  constructor(
    readonly why: 'closing' | 'lease_lost' | 'log',
    readonly error?: unknown,
  ) {
    super(why);
  }
}

/** An attempt interrupted by the saga's own signal: a cancel, or the runner closing. */
const CANCELLED = 'cancelled';
const CLOSING = 'closing';

type PhaseResult =
  | { readonly kind: 'ok'; readonly output: JsonValue; readonly attempts: number }
  | { readonly kind: 'failed'; readonly status: Exclude<SagaStepStatus, 'running' | 'succeeded'>; readonly error: unknown; readonly attempts: number };

/** What one saga's execution here knows. */
interface Execution {
  readonly id: string;
  readonly definition: SagaDefinition;
  readonly input: JsonValue;
  /** Aborted on a cancel: interrupts actions only (compensations must run). */
  readonly cancel: AbortController;
  /** Aborted when the runner closes: interrupts everything. */
  readonly close: AbortController;
  cancelRequested: boolean;
  promise?: Promise<SagaOutcome>;
}

interface Instruments {
  started: Counter;
  finished: Counter;
  recovered: Counter;
  steps: Counter;
  stepDuration: Histogram;
  duration: Histogram;
}

function instruments(options: SagaRunnerOptions): Instruments {
  const meter = options.meter ?? metrics.getMeter(METER);
  return {
    started: meter.createCounter('aikb.saga.started', { unit: '{saga}', description: 'Sagas started.' }),
    finished: meter.createCounter('aikb.saga.finished', {
      unit: '{saga}',
      description: 'Sagas that reached completed, compensated, cancelled, compensation_failed or parked, by aikb.saga.state.',
    }),
    recovered: meter.createCounter('aikb.saga.recovered', { unit: '{saga}', description: 'Interrupted sagas taken over by recovery.' }),
    steps: meter.createCounter('aikb.saga.steps', { unit: '{step}', description: 'Saga step phases finished, by phase and status.' }),
    stepDuration: meter.createHistogram('aikb.saga.step.duration', { unit: 's', description: 'Duration of a saga step phase, its retries included.' }),
    duration: meter.createHistogram('aikb.saga.duration', { unit: 's', description: 'Duration of a saga run, from its start here to its end.' }),
  };
}

const defaultOwner = () => `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
const keyOf = (name: string, version: number) => `${name}@${version}`;

/** The step's attempt failed because its deadline passed. */
const timeoutError = (step: string, ms: number) => new AikbError('DEADLINE_EXCEEDED', `step ${step} did not finish within ${ms} ms`);

class Runner implements SagaRunner {
  readonly #log: SagaLog;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #recoveryIntervalMs: number;
  readonly #batch: number;
  readonly #retentionMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #tracer: Tracer | undefined;
  readonly #onCompensationFailure: ((error: Error) => void) | undefined;
  readonly #metrics: Instruments;
  readonly #definitions = new Map<string, SagaDefinition>();
  readonly #executions = new Map<string, Execution>();
  readonly #pendingKeys = new Map<string, Promise<SagaOutcome>>();
  #recovering: Promise<SagaRecoveryResult> | undefined;
  #timers: unknown[] = [];
  #closed = false;
  #counts = { started: 0, completed: 0, compensated: 0, compensationFailed: 0, cancelled: 0, parked: 0, recovered: 0, pruned: 0 };
  #lastRecoveryAtMs: number | null = null;
  #lastRecoveryError: string | null = null;
  #lastPruneAtMs: number | null = null;

  constructor(options: SagaRunnerOptions) {
    this.#log = options.log;
    this.#owner = options.owner ?? defaultOwner();
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#recoveryIntervalMs = options.recoveryIntervalMs ?? 10_000;
    this.#batch = options.recoveryBatchSize ?? 20;
    this.#retentionMs = options.retentionMs ?? 7 * 24 * 3_600_000;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? noopLogger;
    this.#tracer = options.tracer;
    this.#onCompensationFailure = options.onCompensationFailure;
    this.#metrics = instruments(options);
    for (const definition of options.definitions ?? []) this.register(definition);
    this.#every(Math.max(1, Math.floor(this.#leaseMs / 3)), () => this.#heartbeat());
    if (this.#recoveryIntervalMs > 0) this.#every(this.#recoveryIntervalMs, () => this.#tick());
  }

  /** A repeating timer on the injected clock, unref'd. */
  #every(ms: number, fn: () => Promise<void>): void {
    const slot = this.#timers.length;
    const schedule = () => {
      const handle = this.#clock.setTimeout(() => {
        if (this.#closed) return;
        void fn().finally(() => {
          if (!this.#closed) schedule();
        });
      }, ms);
      unrefTimer(handle);
      this.#timers[slot] = handle;
    };
    schedule();
  }

  #lease(): SagaLease {
    const nowMs = this.#clock.now();
    return { owner: this.#owner, nowMs, leaseExpiresAtMs: nowMs + this.#leaseMs };
  }

  async #heartbeat(): Promise<void> {
    if (this.#executions.size === 0) return;
    try {
      await this.#log.renew(this.#lease(), [...this.#executions.keys()]);
    } catch (error) {
      this.#logger.warn({ err: error, owner: this.#owner }, 'saga lease renewal failed; another instance may take the sagas over when the leases expire');
    }
  }

  async #tick(): Promise<void> {
    try {
      await this.recover();
      await this.prune();
    } catch {
      // recover() and prune() record and log their own failures
    }
  }

  register(definition: SagaDefinition<never, never> | SagaDefinition): void {
    const def = definition as SagaDefinition;
    if (!def || typeof def.name !== 'string' || !Array.isArray(def.steps) || typeof def.step !== 'function') {
      throw new TypeError('SagaRunner.register: definition must come from defineSaga()');
    }
    const key = keyOf(def.name, def.version);
    const existing = this.#definitions.get(key);
    if (existing !== undefined && existing !== def)
      throw new TypeError(`SagaRunner.register: another definition of ${key} is registered; raise the version when the steps change`);
    if (existing === undefined && ![...this.#definitions.values()].some((d) => d.name === def.name)) {
      // Reported from 0 once a name is known: a compensation rate (finished{state="compensated"} over
      // started) needs both series before the first saga ends.
      const saga = { 'aikb.saga.name': def.name };
      this.#metrics.started.add(0, saga);
      for (const state of FINISHED_STATES) this.#metrics.finished.add(0, { ...saga, 'aikb.saga.state': state });
    }
    this.#definitions.set(key, def);
  }

  async run<I extends JsonValue, P extends Record<string, JsonValue>>(
    definition: SagaDefinition<I, P>,
    input: I,
    options: SagaRunOptions = {},
  ): Promise<SagaOutcome<P>> {
    if (this.#closed) throw new UnavailableError('the saga runner is closed');
    this.register(definition);
    assertJson('input', input);
    const check = checkOptions('SagaRunner.run', options, true);
    check.string('idempotencyKey');
    const key = options.idempotencyKey;
    if (key !== undefined && (key.length > 200 || key.includes('\u0000')))
      throw new ValidationError('idempotencyKey', 'idempotencyKey must be at most 200 characters, without NUL');
    if (key !== undefined) {
      const pending = this.#pendingKeys.get(key);
      if (pending) return (await pending) as SagaOutcome<P>;
      const promise = this.#start(definition, input, key);
      this.#pendingKeys.set(key, promise);
      try {
        return (await promise) as SagaOutcome<P>;
      } finally {
        this.#pendingKeys.delete(key);
      }
    }
    return (await this.#start(definition, input, null)) as SagaOutcome<P>;
  }

  async #start(definition: SagaDefinition, input: JsonValue, idempotencyKey: string | null): Promise<SagaOutcome> {
    const lease = this.#lease();
    const first = definition.steps[0]?.name;
    const { record, created } = await this.#log.create({
      id: randomUUID(),
      name: definition.name,
      version: definition.version,
      idempotencyKey,
      policy: definition.recovery,
      input,
      owner: this.#owner,
      nowMs: lease.nowMs,
      leaseExpiresAtMs: lease.leaseExpiresAtMs,
      ...(first !== undefined ? { firstStep: first } : {}),
    });
    if (!created) {
      if (record.name !== definition.name || canonicalJson(record.input) !== canonicalJson(input)) {
        throw new ValidationError('idempotencyKey', 'idempotencyKey was already used for a saga with another name or input');
      }
      const running = this.#executions.get(record.id)?.promise;
      return running ? running : outcomeOf(record);
    }
    this.#counts.started += 1;
    this.#metrics.started.add(1, { 'aikb.saga.name': definition.name });
    return this.#track(record, definition, false, true);
  }

  /** Runs `record` here, registered as in flight (its lease renewed, cancellable), until it stops. */
  #track(record: SagaRecord, definition: SagaDefinition, recovered: boolean, firstStarted = false): Promise<SagaOutcome> {
    const execution: Execution = {
      id: record.id,
      definition,
      input: record.input,
      cancel: new AbortController(),
      close: new AbortController(),
      cancelRequested: record.cancelRequested,
    };
    this.#executions.set(record.id, execution);
    const startedAt = this.#clock.now();
    const promise = withSpan(
      `saga ${definition.name}`,
      async (span) => {
        const outcome = await this.#drive(execution, record, recovered, firstStarted);
        span.setAttribute('aikb.saga.state', outcome.state);
        return outcome;
      },
      {
        ...(this.#tracer ? { tracer: this.#tracer } : {}),
        attributes: { 'aikb.saga.id': record.id, 'aikb.saga.name': definition.name, 'aikb.saga.version': definition.version, 'aikb.saga.recovered': recovered },
      },
    ).finally(() => {
      this.#executions.delete(record.id);
      this.#metrics.duration.record((this.#clock.now() - startedAt) / 1000, { 'aikb.saga.name': definition.name });
    });
    execution.promise = promise;
    return promise;
  }

  #finished(definition: SagaDefinition, state: SagaState): void {
    if (state === 'completed') this.#counts.completed += 1;
    else if (state === 'compensated') this.#counts.compensated += 1;
    else if (state === 'cancelled') this.#counts.cancelled += 1;
    else if (state === 'compensation_failed') this.#counts.compensationFailed += 1;
    else if (state === 'parked') this.#counts.parked += 1;
    this.#metrics.finished.add(1, { 'aikb.saga.name': definition.name, 'aikb.saga.state': state });
  }

  /** Moves the saga on from where the log says it is, to a state it rests in (or until it must stop here). */
  async #drive(execution: Execution, record: SagaRecord, recovered: boolean, firstStarted: boolean): Promise<SagaOutcome> {
    const { definition } = execution;
    const actions = new Map<number, SagaStepRecord>(record.steps.filter((s) => s.phase === 'action').map((s) => [s.index, s]));
    const compensations = new Map<number, SagaStepRecord>(record.steps.filter((s) => s.phase === 'compensation').map((s) => [s.index, s]));
    const outputs: Record<string, JsonValue> = {};
    for (const step of actions.values()) if (step.status === 'succeeded' && step.output !== null) outputs[step.name] = step.output;
    /** Statuses of the actions as they stand, for choosing what to compensate. */
    const statuses = new Map<number, SagaStepStatus>([...actions].map(([index, step]) => [index, step.status]));
    let state = record.state;
    let failure: SagaErrorInfo | null = record.error;
    try {
      if (state === 'running' && recovered && (record.policy === 'compensate' || record.cancelRequested)) {
        failure = { type: 'SagaInterrupted', message: `its runner stopped before it finished; recovered by ${this.#owner}` };
        await this.#write(() => this.#log.transition(record.id, this.#lease(), { from: 'running', to: 'compensating', error: failure! }));
        state = 'compensating';
      }
      if (state === 'running') {
        const result = await this.#forward(execution, actions, statuses, outputs, firstStarted);
        if (result.kind === 'completed') {
          this.#finished(definition, 'completed');
          return { id: record.id, state: 'completed', outputs };
        }
        failure = result.error;
        state = 'compensating';
      }
      if (state === 'compensating') return await this.#compensate(execution, statuses, compensations, outputs, failure);
      return outcomeOf((await this.#log.get(record.id)) ?? record);
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      if (error.why === 'log') {
        // Give the saga up so that recovery (here or elsewhere) finishes it once the log is back.
        await this.#log.release(this.#owner, [record.id]).catch(() => undefined);
        throw error.error;
      }
      return { id: record.id, state: state === 'compensating' ? 'compensating' : 'running' };
    }
  }

  /** A log write of this execution: a lost lease or a failed write stops the saga here. */
  async #write<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      throw new Stop(isLeaseLost(error) ? 'lease_lost' : 'log', error);
    }
  }

  async #forward(
    execution: Execution,
    actions: Map<number, SagaStepRecord>,
    statuses: Map<number, SagaStepStatus>,
    outputs: Record<string, JsonValue>,
    firstStarted: boolean,
  ): Promise<{ kind: 'completed' } | { kind: 'failed'; error: SagaErrorInfo }> {
    const { definition, id } = execution;
    const steps = definition.steps;
    if (steps.length === 0) {
      await this.#write(() => this.#log.transition(id, this.#lease(), { from: 'running', to: 'completed' }));
      return { kind: 'completed' };
    }
    for (let index = 0; index < steps.length; index++) {
      const step = steps[index]!;
      const logged = actions.get(index);
      if (logged?.status === 'succeeded') continue;
      // The first action's first attempt was started by create(); any other started attempt was
      // interrupted (its process died), so the step may have taken effect whatever happens next.
      const preStarted = index === 0 && firstStarted && logged?.status === 'running';
      const interrupted = logged?.status === 'running' && !preStarted;
      const result = preStarted
        ? await this.#phase(execution, step, index, 'action', outputs, 0, logged.attempts)
        : await this.#phase(execution, step, index, 'action', outputs, logged?.attempts ?? 0);
      const last = index === steps.length - 1;
      if (result.kind === 'ok') {
        outputs[step.name] = result.output;
        statuses.set(index, 'succeeded');
        await this.#write(() =>
          this.#log.finishStep(id, {
            ...this.#lease(),
            index,
            phase: 'action',
            status: 'succeeded',
            output: result.output,
            ...(last ? { transition: { from: 'running', to: 'completed' } } : {}),
          }),
        );
        if (last) return { kind: 'completed' };
        continue;
      }
      const status = interrupted && result.status === 'failed' ? 'timed_out' : result.status;
      statuses.set(index, status);
      const error = errorInfo(result.error, step.name);
      await this.#write(() =>
        this.#log.finishStep(id, { ...this.#lease(), index, phase: 'action', status, error, transition: { from: 'running', to: 'compensating', error } }),
      );
      return { kind: 'failed', error };
    }
    return { kind: 'completed' };
  }

  async #compensate(
    execution: Execution,
    statuses: Map<number, SagaStepStatus>,
    compensations: Map<number, SagaStepRecord>,
    outputs: Record<string, JsonValue>,
    failure: SagaErrorInfo | null,
  ): Promise<SagaOutcome> {
    const { definition, id } = execution;
    const end: SagaState = execution.cancelRequested ? 'cancelled' : 'compensated';
    // Every action that may have taken effect (all but those that threw), latest first.
    const todo = definition.steps
      .map((step, index) => ({ step, index, status: statuses.get(index) }))
      .filter(
        ({ step, index, status }) =>
          step.compensate !== undefined && status !== undefined && status !== 'failed' && compensations.get(index)?.status !== 'succeeded',
      )
      .reverse();
    if (todo.length === 0) {
      await this.#write(() => this.#log.transition(id, this.#lease(), { from: 'compensating', to: end }));
      this.#finished(definition, end);
      return { id, state: end, error: failure };
    }
    for (const [position, { step, index }] of todo.entries()) {
      const result = await this.#phase(execution, step, index, 'compensation', outputs, compensations.get(index)?.attempts ?? 0);
      const last = position === todo.length - 1;
      if (result.kind === 'ok') {
        await this.#write(() =>
          this.#log.finishStep(id, {
            ...this.#lease(),
            index,
            phase: 'compensation',
            status: 'succeeded',
            ...(last ? { transition: { from: 'compensating', to: end } } : {}),
          }),
        );
        if (last) {
          this.#finished(definition, end);
          return { id, state: end, error: failure };
        }
        continue;
      }
      const cause = result.error;
      const compensationError = new SagaCompensationError(cause instanceof Error ? cause.message : String(cause), {
        sagaId: id,
        sagaName: definition.name,
        step: step.name,
        cause,
      });
      const info = errorInfo(compensationError, step.name);
      await this.#write(() =>
        this.#log.finishStep(id, {
          ...this.#lease(),
          index,
          phase: 'compensation',
          status: result.status,
          error: errorInfo(cause, step.name),
          transition: { from: 'compensating', to: 'compensation_failed', error: info },
        }),
      );
      this.#finished(definition, 'compensation_failed');
      this.#logger.error({ err: compensationError, sagaId: id, saga: definition.name, step: step.name }, 'saga compensation failed');
      try {
        this.#onCompensationFailure?.(compensationError);
      } catch {
        // a failing listener must not change the outcome
      }
      return { id, state: 'compensation_failed', error: info, compensationError };
    }
    return { id, state: end, error: failure };
  }

  /**
   * Runs one phase of one step with its retries. `loggedAttempts` are those spent before (in any
   * process); `started` is the attempt number already written by create(), if any.
   */
  async #phase(
    execution: Execution,
    step: SagaStepDefinition,
    index: number,
    phase: SagaPhase,
    outputs: Record<string, JsonValue>,
    loggedAttempts: number,
    started?: number,
  ): Promise<PhaseResult> {
    const { definition, id } = execution;
    const policy = phase === 'action' ? step.retry : step.compensationRetry;
    const timeoutMs = phase === 'action' ? step.timeoutMs : step.compensationTimeoutMs;
    const budget = policy.retries + 1;
    const remaining = started !== undefined ? budget - started + 1 : budget - loggedAttempts;
    const attrs: Attributes = { 'aikb.saga.name': definition.name, 'aikb.saga.step': step.name, 'aikb.saga.phase': phase };
    const startedAt = this.#clock.now();
    const result = await withSpan(
      `saga.${phase} ${step.name}`,
      async (span): Promise<PhaseResult> => {
        let attempts = started ?? loggedAttempts;
        if (remaining <= 0) {
          return {
            kind: 'failed',
            status: 'failed',
            attempts,
            error: new AikbError('RESOURCE_EXHAUSTED', `step ${step.name}: its ${budget} attempts were spent before a restart`),
          };
        }
        let pre = started !== undefined;
        let stop: Stop | undefined;
        try {
          const output = await pRetry(
            async () => {
              if (this.#closed) throw new AbortError((stop = new Stop('closing')));
              if (pre) pre = false;
              else {
                try {
                  const begun = await this.#log.startStep(id, { ...this.#lease(), index, name: step.name, phase });
                  attempts = begun.attempts;
                  if (phase === 'action' && begun.cancelRequested) execution.cancelRequested = true;
                } catch (error) {
                  throw new AbortError((stop = new Stop(isLeaseLost(error) ? 'lease_lost' : 'log', error)));
                }
              }
              if (phase === 'action' && execution.cancelRequested) throw new AbortError(cancelledError(step.name));
              span.setAttribute('aikb.saga.attempt', attempts);
              return await this.#attempt(execution, step, phase, outputs, attempts, timeoutMs);
            },
            {
              retries: remaining - 1,
              factor: policy.factor,
              minTimeout: policy.minDelayMs,
              maxTimeout: policy.maxDelayMs,
              randomize: policy.randomize,
              unref: true,
              // A cancel is seen at the next attempt's start (cancelRequested); a close stops the delay.
              signal: execution.close.signal,
              shouldRetry: ({ error }) => {
                if (this.#closed || error instanceof InterruptedError || error instanceof InvalidOutputError) return false;
                if (phase === 'action' && isTimeout(error)) return false;
                return policy.retryable(error);
              },
            },
          );
          return { kind: 'ok', output: output, attempts };
        } catch (error) {
          if (stop) throw stop;
          // CLOSING / CANCELLED: the signal's reason, when it fired during a delay between attempts.
          if ((error instanceof InterruptedError && error.why === CLOSING) || error === CLOSING) throw new Stop('closing');
          if (error === CANCELLED) return { kind: 'failed', status: 'failed', error: cancelledError(step.name), attempts };
          const status =
            error instanceof InvalidOutputError ? 'invalid_output' : isTimeout(error) || error instanceof InterruptedError ? 'timed_out' : 'failed';
          // A cancel seen before the action started: it never ran.
          const never = error instanceof AikbError && error.details.reason === CANCELLED && error.details.before === true;
          return { kind: 'failed', status: never ? 'failed' : status, error: error instanceof InvalidOutputError ? error.cause : error, attempts };
        }
      },
      {
        ...(this.#tracer ? { tracer: this.#tracer } : {}),
        attributes: { 'aikb.saga.id': id, 'aikb.saga.name': definition.name, 'aikb.saga.step': step.name, 'aikb.saga.phase': phase },
      },
    ).catch((error: unknown) => {
      throw error instanceof Stop ? error : new Stop('log', error);
    });
    this.#metrics.steps.add(1, { ...attrs, 'aikb.saga.step.status': result.kind === 'ok' ? 'succeeded' : result.status });
    this.#metrics.stepDuration.record((this.#clock.now() - startedAt) / 1000, attrs);
    return result;
  }

  /** One attempt, raced against its deadline and the saga's signal (cancel, close). */
  async #attempt(
    execution: Execution,
    step: SagaStepDefinition,
    phase: SagaPhase,
    outputs: Record<string, JsonValue>,
    attempt: number,
    timeoutMs: number,
  ): Promise<JsonValue> {
    const controller = new AbortController();
    // A close interrupts every attempt; a cancel only actions (compensations must run).
    const signals = phase === 'action' ? [execution.close.signal, execution.cancel.signal] : [execution.close.signal];
    let timer: unknown;
    let onAbort: (() => void) | undefined;
    const interrupted = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(() => {
        const error = timeoutError(step.name, timeoutMs);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
      onAbort = () => {
        const why = execution.close.signal.aborted ? CLOSING : CANCELLED;
        const error = new InterruptedError(why, step.name);
        controller.abort(error);
        reject(error);
      };
      if (signals.some((signal) => signal.aborted)) onAbort();
      else for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
    });
    // Settled by the race below or never awaited when the work wins: keep an unhandled rejection away.
    void interrupted.catch(() => undefined);
    const context = { sagaId: execution.id, input: execution.input, outputs: { ...outputs }, attempt, signal: controller.signal };
    try {
      const work =
        phase === 'action'
          ? Promise.resolve().then(() => step.action(context))
          : Promise.resolve().then(async () => {
              await step.compensate!({ ...context, output: outputs[step.name] });
              return null;
            });
      const output = await Promise.race([work, interrupted]);
      if (phase === 'action') {
        const bad = nonJsonPath(output);
        if (bad !== undefined) {
          throw new InvalidOutputError(new ValidationError(`steps.${step.name}.output`, `the output of step ${step.name} must be JSON; ${bad} is not`));
        }
        return JSON.parse(JSON.stringify(output)) as JsonValue;
      }
      return null;
    } finally {
      this.#clock.clearTimeout(timer);
      if (onAbort) for (const signal of signals) signal.removeEventListener('abort', onAbort);
    }
  }

  async cancel(id: string): Promise<SagaRecord> {
    const record = await this.#log.requestCancel(id, this.#clock.now());
    if (!record) throw new NotFoundError(`no saga with id ${id}`, { key: id });
    const execution = this.#executions.get(id);
    if (execution) {
      execution.cancelRequested = true;
      execution.cancel.abort(CANCELLED);
    }
    return record;
  }

  async retry(id: string): Promise<SagaOutcome> {
    if (this.#closed) throw new UnavailableError('the saga runner is closed');
    const record = await this.#log.get(id);
    if (!record) throw new NotFoundError(`no saga with id ${id}`, { key: id });
    const definition = this.#definitions.get(keyOf(record.name, record.version));
    if (!definition) {
      throw new AikbError('FAILED_PRECONDITION', `saga ${id} needs definition ${keyOf(record.name, record.version)}, which this runner does not have`, {
        details: { reason: 'definition_missing' },
      });
    }
    const reopened = await this.#log.reopen(id, this.#lease());
    return this.#track(reopened, definition, record.state === 'parked');
  }

  async resolve(id: string, resolution: { by: string; note?: string }): Promise<SagaRecord> {
    const check = checkOptions('SagaRunner.resolve', resolution);
    check.string('by', true);
    check.string('note', false, true);
    const record = await this.#log.resolve(id, { by: resolution.by.slice(0, 200), note: (resolution.note ?? '').slice(0, 2000), nowMs: this.#clock.now() });
    if (!record) throw new NotFoundError(`no saga with id ${id}`, { key: id });
    return record;
  }

  recover(): Promise<SagaRecoveryResult> {
    this.#recovering ??= this.#recover().finally(() => {
      this.#recovering = undefined;
    });
    return this.#recovering;
  }

  async #recover(): Promise<SagaRecoveryResult> {
    const result = { claimed: 0, completed: 0, compensated: 0, compensationFailed: 0, parked: 0, unfinished: 0 };
    const names = [...new Set([...this.#definitions.values()].map((d) => d.name))];
    if (this.#closed || names.length === 0) return result;
    let claimed: SagaRecord[];
    try {
      claimed = await this.#log.claim(this.#lease(), this.#batch, names);
      this.#lastRecoveryAtMs = this.#clock.now();
      this.#lastRecoveryError = null;
    } catch (error) {
      this.#lastRecoveryError = error instanceof Error ? error.message : String(error);
      this.#logger.warn({ err: error }, 'saga recovery could not claim sagas');
      throw error;
    }
    result.claimed = claimed.length;
    await Promise.all(
      claimed.map(async (record) => {
        this.#counts.recovered += 1;
        this.#metrics.recovered.add(1, { 'aikb.saga.name': record.name });
        const definition = this.#definitions.get(keyOf(record.name, record.version));
        try {
          if (!definition) {
            const parkReason = `definition ${keyOf(record.name, record.version)} is not registered`;
            await this.#log.transition(record.id, this.#lease(), { from: record.state, to: 'parked', parkReason });
            this.#counts.parked += 1;
            this.#metrics.finished.add(1, { 'aikb.saga.name': record.name, 'aikb.saga.state': 'parked' });
            this.#logger.warn({ sagaId: record.id, saga: record.name, version: record.version }, `saga parked: ${parkReason}`);
            result.parked += 1;
            return;
          }
          this.#logger.info({ sagaId: record.id, saga: record.name, state: record.state }, 'recovering an interrupted saga');
          const outcome = await this.#track(record, definition, true);
          if (outcome.state === 'completed') result.completed += 1;
          else if (outcome.state === 'compensated' || outcome.state === 'cancelled') result.compensated += 1;
          else if (outcome.state === 'compensation_failed') result.compensationFailed += 1;
          else result.unfinished += 1;
        } catch (error) {
          result.unfinished += 1;
          this.#logger.warn({ err: error, sagaId: record.id }, 'saga recovery stopped; the saga is retried when its lease expires');
        }
      }),
    );
    return result;
  }

  async prune(): Promise<number> {
    try {
      const count = await this.#log.prune(this.#clock.now() - this.#retentionMs, PRUNE_BATCH);
      this.#counts.pruned += count;
      this.#lastPruneAtMs = this.#clock.now();
      return count;
    } catch (error) {
      this.#logger.warn({ err: error }, 'saga pruning failed');
      throw error;
    }
  }

  get(id: string) {
    return this.#log.get(id);
  }

  list(query?: SagaListQuery) {
    return this.#log.list(query);
  }

  stats(): SagaRunnerStats {
    const c = this.#counts;
    return {
      owner: this.#owner,
      definitions: [...this.#definitions.keys()].sort(),
      inFlight: this.#executions.size,
      started: c.started,
      completed: c.completed,
      compensated: c.compensated,
      compensationFailed: c.compensationFailed,
      cancelled: c.cancelled,
      parked: c.parked,
      recovered: c.recovered,
      compensationRate: c.started === 0 ? 0 : c.compensated / c.started,
      lastRecoveryAtMs: this.#lastRecoveryAtMs,
      lastRecoveryError: this.#lastRecoveryError,
      lastPruneAtMs: this.#lastPruneAtMs,
      pruned: c.pruned,
      closed: this.#closed,
    };
  }

  async close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    const check = checkOptions('SagaRunner.close', options, true);
    check.number('drainMs', { min: 0, integer: true });
    this.#closed = true;
    for (const handle of this.#timers) this.#clock.clearTimeout(handle);
    const drainMs = options.drainMs ?? 5000;
    const running = [...this.#executions.values()];
    const settled = Promise.allSettled(running.flatMap((e) => (e.promise ? [e.promise] : [])));
    if (drainMs > 0 && running.length > 0) {
      let timer: unknown;
      const deadline = new Promise<void>((resolve) => {
        timer = this.#clock.setTimeout(resolve, drainMs);
      });
      await Promise.race([settled, deadline]);
      this.#clock.clearTimeout(timer);
    }
    for (const execution of running) execution.close.abort(CLOSING);
    await settled;
    if (running.length > 0) {
      await this.#log
        .release(
          this.#owner,
          running.map((e) => e.id),
        )
        .catch((error: unknown) => {
          this.#logger.warn({ err: error }, 'saga leases could not be released; they expire on their own');
        });
    }
  }
}

/** An attempt stopped by the saga's signal. */
class InterruptedError extends AikbError {
  constructor(
    readonly why: typeof CANCELLED | typeof CLOSING,
    step: string,
  ) {
    super(
      why === CANCELLED ? 'FAILED_PRECONDITION' : 'UNAVAILABLE',
      why === CANCELLED ? `step ${step} was interrupted: the saga was cancelled` : `step ${step} was interrupted: the runner is closing`,
      { details: { reason: why } },
    );
  }
}

/** An action returned something that is not JSON: it ran, but its output cannot be kept. */
class InvalidOutputError extends Error {
  constructor(override readonly cause: ValidationError) {
    super(cause.message);
  }
}

const cancelledError = (step: string) =>
  new AikbError('FAILED_PRECONDITION', `the saga was cancelled before step ${step}`, { details: { reason: CANCELLED, before: true } });

const isTimeout = (error: unknown) => error instanceof AikbError && error.code === 'DEADLINE_EXCEEDED';

/** The outcome a saga's record stands for (a repeated run, a retry's result). */
function outcomeOf(record: SagaRecord): SagaOutcome {
  switch (record.state) {
    case 'completed': {
      const outputs: Record<string, JsonValue> = {};
      for (const step of record.steps) if (step.phase === 'action' && step.status === 'succeeded' && step.output !== null) outputs[step.name] = step.output;
      return { id: record.id, state: 'completed', outputs };
    }
    case 'compensated':
    case 'cancelled':
    case 'parked':
      return { id: record.id, state: record.state, error: record.error };
    case 'compensation_failed': {
      const failed = [...record.steps].reverse().find((s) => s.phase === 'compensation' && s.status !== 'succeeded');
      const stepName = record.error?.step ?? failed?.name ?? 'unknown';
      const cause = failed?.error ? errorFromInfo(failed.error) : undefined;
      const compensationError = new SagaCompensationError(record.error?.message ?? 'compensation failed', {
        sagaId: record.id,
        sagaName: record.name,
        step: stepName,
        ...(cause ? { cause } : {}),
      });
      return { id: record.id, state: 'compensation_failed', error: record.error, compensationError };
    }
    case 'running':
    case 'compensating':
      return { id: record.id, state: record.state };
  }
}

/**
 * Creates the durable saga runner: runs {@link SagaDefinition}s step by step, writing each step's
 * start, attempts, outcome and output to the {@link SagaLog} before the next begins; on a failure
 * runs the compensations of the steps that ran, in reverse; and recovers sagas whose process died
 * (`recover()` at start-up and every `recoveryIntervalMs`), on exactly one instance at a time.
 *
 * Failure policy: a step that timed out, was cancelled mid-way or whose process died is treated as
 * possibly done, so its compensation runs: **compensations must be idempotent** and must cope with
 * an action that never took effect (`output` is then `undefined`). A compensation that still fails
 * after its retries leaves the saga `compensation_failed` with a {@link SagaCompensationError},
 * listed until an operator retries or resolves it; nothing is dropped.
 *
 * @throws {TypeError} naming the option when an option is invalid
 * @example
 * ```ts
 * const runner = createSagaRunner({ log: createPostgresSagaLog({ pool, logger }), definitions: [upload], logger })
 * await runner.recover()
 * const outcome = await runner.run(upload, { path }, { idempotencyKey: requestId })
 * if (outcome.state === 'compensation_failed') logger.error({ err: outcome.compensationError }, 'upload left a mess')
 * ```
 */
export function createSagaRunner(options: SagaRunnerOptions): SagaRunner {
  const check = checkOptions('createSagaRunner', options);
  check.object('log', 'a SagaLog', true, [
    'create',
    'startStep',
    'finishStep',
    'transition',
    'claim',
    'reopen',
    'renew',
    'release',
    'requestCancel',
    'resolve',
    'get',
    'list',
    'countByState',
    'prune',
  ]);
  check.string('owner');
  if (options.owner !== undefined && (options.owner.length > 200 || options.owner.includes('\u0000')))
    throw new TypeError('createSagaRunner: owner must be at most 200 characters, without NUL');
  check.number('leaseMs', { min: 10, max: 86_400_000, integer: true });
  check.number('recoveryIntervalMs', { min: 0, max: 86_400_000, integer: true });
  check.number('recoveryBatchSize', { min: 1, max: 10_000, integer: true });
  check.number('retentionMs', { min: 0, integer: true });
  check.object('clock', 'a Clock', false, ['now', 'setTimeout', 'clearTimeout']);
  check.object('logger', 'a Logger', false, ['debug', 'info', 'warn', 'error']);
  check.object('meter', 'an OpenTelemetry Meter', false, ['createCounter', 'createHistogram']);
  check.object('tracer', 'an OpenTelemetry Tracer', false, ['startSpan']);
  check.function('onCompensationFailure');
  if (options.definitions !== undefined && !Array.isArray(options.definitions))
    throw new TypeError('createSagaRunner: definitions must be an array (got an object)');
  return new Runner(options);
}
