import type {
  FinishStep,
  NewSaga,
  SagaLease,
  SagaListQuery,
  SagaLog,
  SagaPage,
  SagaRecord,
  SagaState,
  SagaStepRecord,
  SagaTransition,
  StartStep,
  StepStarted,
} from './saga';
import { SAGA_STATES } from './saga';
import { checkListQuery, encodeCursor } from './internal/cursor';
import { ACTIVE_STATES, FINAL_STATES, FINISHED_STATES, OPERATOR_STATES, assertTransition, copyJson, leaseLost, notFound, wrongState } from './internal/rules';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Saga = Mutable<Omit<SagaRecord, 'steps'>> & { steps: Array<Mutable<SagaStepRecord>> };

const clone = (saga: Saga): SagaRecord => {
  const actions = saga.steps.filter((s) => s.phase === 'action').sort((a, b) => a.index - b.index);
  const compensations = saga.steps.filter((s) => s.phase === 'compensation').sort((a, b) => b.index - a.index);
  return copyJson({ ...saga, steps: [...actions, ...compensations] } as never);
};

const summary = (saga: Saga) => {
  const { input: _input, steps: _steps, ...rest } = clone(saga);
  return rest;
};

/**
 * A {@link SagaLog} in this process's memory: for tests and single-process tools. A crash loses
 * it, so it recovers nothing across restarts; use {@link createPostgresSagaLog} in a service.
 */
export function createMemorySagaLog(): SagaLog {
  const sagas = new Map<string, Saga>();
  const byKey = new Map<string, string>();

  /** The saga, leased to `lease.owner` and in one of `states`. */
  function leased(id: string, lease: SagaLease, states: readonly SagaState[]): Saga {
    const saga = sagas.get(id);
    if (!saga || saga.leaseOwner !== lease.owner || !states.includes(saga.state)) throw leaseLost(id);
    return saga;
  }

  function apply(saga: Saga, transition: SagaTransition, nowMs: number): void {
    assertTransition(saga.id, transition.from, transition.to);
    if (saga.state !== transition.from) throw leaseLost(saga.id);
    saga.state = transition.to;
    saga.updatedAtMs = nowMs;
    if (transition.error !== undefined) saga.error = transition.error;
    if (transition.to === 'parked') {
      saga.parkReason = transition.parkReason ?? 'parked';
      saga.parkedFrom = transition.from;
    }
    if (FINISHED_STATES.includes(transition.to)) {
      saga.finishedAtMs = nowMs;
      saga.leaseOwner = null;
      saga.leaseExpiresAtMs = null;
    }
  }

  return {
    async create(input: NewSaga) {
      if (input.idempotencyKey !== null) {
        const existing = byKey.get(input.idempotencyKey);
        if (existing !== undefined) return { record: clone(sagas.get(existing)!), created: false };
      }
      const saga: Saga = {
        id: input.id,
        name: input.name,
        version: input.version,
        idempotencyKey: input.idempotencyKey,
        state: 'running',
        policy: input.policy,
        input: copyJson(input.input),
        error: null,
        parkReason: null,
        parkedFrom: null,
        cancelRequested: false,
        leaseOwner: input.owner,
        leaseExpiresAtMs: input.leaseExpiresAtMs,
        recoveries: 0,
        createdAtMs: input.nowMs,
        updatedAtMs: input.nowMs,
        finishedAtMs: null,
        resolvedAtMs: null,
        resolvedBy: null,
        resolutionNote: null,
        steps: [],
      };
      if (input.firstStep !== undefined) {
        saga.steps.push({
          index: 0,
          name: input.firstStep,
          phase: 'action',
          status: 'running',
          attempts: 1,
          output: null,
          error: null,
          startedAtMs: input.nowMs,
          finishedAtMs: null,
        });
      }
      sagas.set(saga.id, saga);
      if (input.idempotencyKey !== null) byKey.set(input.idempotencyKey, saga.id);
      return { record: clone(saga), created: true };
    },

    async startStep(id: string, start: StartStep): Promise<StepStarted> {
      const saga = leased(id, start, start.phase === 'action' ? ['running'] : ['compensating']);
      saga.leaseExpiresAtMs = start.leaseExpiresAtMs;
      saga.updatedAtMs = start.nowMs;
      let step = saga.steps.find((s) => s.index === start.index && s.phase === start.phase);
      if (!step) {
        step = {
          index: start.index,
          name: start.name,
          phase: start.phase,
          status: 'running',
          attempts: 0,
          output: null,
          error: null,
          startedAtMs: start.nowMs,
          finishedAtMs: null,
        };
        saga.steps.push(step);
      }
      step.attempts += 1;
      step.status = 'running';
      step.startedAtMs = start.nowMs;
      step.finishedAtMs = null;
      return { attempts: step.attempts, cancelRequested: saga.cancelRequested };
    },

    async finishStep(id: string, finish: FinishStep) {
      const saga = leased(id, finish, finish.phase === 'action' ? ['running'] : ['compensating']);
      const step = saga.steps.find((s) => s.index === finish.index && s.phase === finish.phase);
      if (!step) throw leaseLost(id);
      if (finish.transition) {
        assertTransition(id, finish.transition.from, finish.transition.to);
        apply(saga, finish.transition, finish.nowMs);
      }
      step.status = finish.status;
      step.output = finish.output === undefined ? null : copyJson(finish.output);
      step.error = finish.error ?? null;
      step.finishedAtMs = finish.nowMs;
      saga.updatedAtMs = finish.nowMs;
      if (!finish.transition || !FINISHED_STATES.includes(finish.transition.to)) saga.leaseExpiresAtMs = finish.leaseExpiresAtMs;
    },

    async transition(id, lease, transition) {
      assertTransition(id, transition.from, transition.to);
      const saga = leased(id, lease, [transition.from]);
      apply(saga, transition, lease.nowMs);
      if (transition.release === true) {
        saga.leaseOwner = null;
        saga.leaseExpiresAtMs = null;
      } else if (!FINISHED_STATES.includes(transition.to)) saga.leaseExpiresAtMs = lease.leaseExpiresAtMs;
    },

    async claim(lease, limit, names) {
      const claimable = [...sagas.values()]
        .filter((s) => names.includes(s.name) && ACTIVE_STATES.includes(s.state) && (s.leaseExpiresAtMs === null || s.leaseExpiresAtMs < lease.nowMs))
        .sort((a, b) => a.updatedAtMs - b.updatedAtMs)
        .slice(0, limit);
      for (const saga of claimable) {
        saga.recoveries += 1;
        saga.leaseOwner = lease.owner;
        saga.leaseExpiresAtMs = lease.leaseExpiresAtMs;
      }
      return claimable.map(clone);
    },

    async reopen(id, lease) {
      const saga = sagas.get(id);
      if (!saga) throw notFound(id);
      if (saga.state === 'compensation_failed') {
        apply(saga, { from: 'compensation_failed', to: 'compensating' }, lease.nowMs);
        for (const step of saga.steps) if (step.phase === 'compensation' && step.status !== 'succeeded') step.attempts = 0;
      } else if (saga.state === 'parked' && saga.parkedFrom !== null) {
        apply(saga, { from: 'parked', to: saga.parkedFrom }, lease.nowMs);
        saga.parkReason = null;
        saga.parkedFrom = null;
      } else {
        throw wrongState(id, saga.state, 'compensation_failed or parked');
      }
      saga.finishedAtMs = null;
      saga.resolvedAtMs = null;
      saga.resolvedBy = null;
      saga.resolutionNote = null;
      saga.leaseOwner = lease.owner;
      saga.leaseExpiresAtMs = lease.leaseExpiresAtMs;
      return clone(saga);
    },

    async renew(lease, ids) {
      let count = 0;
      for (const saga of sagas.values()) {
        if (saga.leaseOwner === lease.owner && ids.includes(saga.id) && ACTIVE_STATES.includes(saga.state)) {
          saga.leaseExpiresAtMs = lease.leaseExpiresAtMs;
          count += 1;
        }
      }
      return count;
    },

    async release(owner, ids) {
      let count = 0;
      for (const saga of sagas.values()) {
        if (saga.leaseOwner === owner && (ids === undefined || ids.includes(saga.id))) {
          saga.leaseOwner = null;
          saga.leaseExpiresAtMs = null;
          count += 1;
        }
      }
      return count;
    },

    async requestCancel(id, nowMs) {
      const saga = sagas.get(id);
      if (!saga) return undefined;
      if (saga.state !== 'running') throw wrongState(id, saga.state, 'running');
      saga.cancelRequested = true;
      saga.updatedAtMs = nowMs;
      return clone(saga);
    },

    async resolve(id, resolution) {
      const saga = sagas.get(id);
      if (!saga) return undefined;
      if (!OPERATOR_STATES.includes(saga.state)) throw wrongState(id, saga.state, 'compensation_failed or parked');
      saga.resolvedAtMs = resolution.nowMs;
      saga.resolvedBy = resolution.by;
      saga.resolutionNote = resolution.note;
      saga.updatedAtMs = resolution.nowMs;
      return clone(saga);
    },

    async get(id) {
      const saga = sagas.get(id);
      return saga ? clone(saga) : undefined;
    },

    async list(query: SagaListQuery = {}): Promise<SagaPage> {
      const q = checkListQuery(query);
      const matching = [...sagas.values()]
        .filter(
          (s) =>
            (q.states === undefined || q.states.includes(s.state)) &&
            (q.name === undefined || s.name === q.name) &&
            (q.createdFromMs === undefined || s.createdAtMs >= q.createdFromMs) &&
            (q.createdToMs === undefined || s.createdAtMs < q.createdToMs) &&
            (q.resolved === undefined || (s.resolvedAtMs !== null) === q.resolved) &&
            (q.cursor === undefined || s.createdAtMs < q.cursor.createdAtMs || (s.createdAtMs === q.cursor.createdAtMs && s.id < q.cursor.id)),
        )
        .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      const items = matching.slice(0, q.limit).map(summary);
      const last = items[items.length - 1];
      return matching.length > q.limit && last ? { items, next: encodeCursor(last) } : { items };
    },

    async countByState() {
      const counts = Object.fromEntries(SAGA_STATES.map((s) => [s, 0])) as Record<SagaState, number>;
      for (const saga of sagas.values()) counts[saga.state] += 1;
      return counts;
    },

    async prune(beforeMs, limit) {
      let count = 0;
      for (const saga of [...sagas.values()].sort((a, b) => (a.finishedAtMs ?? 0) - (b.finishedAtMs ?? 0))) {
        if (count >= limit) break;
        const done = FINAL_STATES.includes(saga.state) || (OPERATOR_STATES.includes(saga.state) && saga.resolvedAtMs !== null);
        const at = saga.resolvedAtMs ?? saga.finishedAtMs;
        if (!done || at === null || at >= beforeMs) continue;
        sagas.delete(saga.id);
        if (saga.idempotencyKey !== null) byKey.delete(saga.idempotencyKey);
        count += 1;
      }
      return count;
    },
  };
}
