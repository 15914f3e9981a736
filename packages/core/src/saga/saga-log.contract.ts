import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { isAikbError, ValidationError } from '../errors';
import type { NewSaga, SagaLease, SagaLog, SagaState } from './saga';
import { SAGA_STATES } from './saga';
import { TRANSITIONS } from './internal/rules';

/** Far from any other test's times, so prune and claim cutoffs here touch only this suite's sagas. */
const T0 = 1_600_000_000_000;

const leaseLost = (e: unknown) => isAikbError(e, 'FAILED_PRECONDITION') && (e as { details: { reason?: string } }).details.reason === 'lease_lost';

/**
 * The behaviour every {@link SagaLog} implementation must have. Call inside a `describe`; `make`
 * may return the same log (a shared database) every time: each test uses its own sagas.
 */
export function describeSagaLogContract(make: () => Promise<SagaLog> | SagaLog): void {
  let log: SagaLog;
  let owner: string;
  let name: string;
  beforeEach(async () => {
    log = await make();
    owner = `owner-${randomUUID()}`;
    name = `saga_${randomUUID().slice(0, 8)}`;
  });

  const lease = (nowMs = T0, who = owner): SagaLease => ({ owner: who, nowMs, leaseExpiresAtMs: nowMs + 30_000 });
  const newSaga = (extra: Partial<NewSaga> = {}): NewSaga => ({
    id: randomUUID(),
    name,
    version: 1,
    idempotencyKey: null,
    policy: 'compensate',
    input: { path: '/docs/ü.pdf', size: 3, tags: ['a', 'b'], nested: { ok: true, none: null } },
    owner,
    nowMs: T0,
    leaseExpiresAtMs: T0 + 30_000,
    ...extra,
  });

  /** A saga driven to `state` through allowed transitions. */
  async function sagaIn(state: SagaState, extra: Partial<NewSaga> = {}): Promise<string> {
    const { record } = await log.create(newSaga({ firstStep: 'drive', ...extra }));
    const id = record.id;
    const go = (from: SagaState, to: SagaState, more: object = {}) => log.transition(id, lease(), { from, to, ...more });
    if (state === 'running') return id;
    if (state === 'completed') return (await go('running', 'completed'), id);
    if (state === 'parked') return (await go('running', 'parked', { parkReason: 'definition x@1 is not registered' }), id);
    await go('running', 'compensating', { error: { type: 'Error', message: 'boom', step: 'drive' } });
    if (state === 'compensating') return id;
    await go('compensating', state);
    return id;
  }

  describe('create', () => {
    it('writes a running saga leased to its owner, with the first step started', async () => {
      const saga = newSaga({ firstStep: 'drive', idempotencyKey: `key-${randomUUID()}` });
      const { record, created } = await log.create(saga);
      expect(created).toBe(true);
      const stored = await log.get(saga.id);
      for (const r of [record, stored!]) {
        expect(r).toMatchObject({
          id: saga.id,
          name,
          version: 1,
          state: 'running',
          policy: 'compensate',
          input: saga.input,
          leaseOwner: owner,
          leaseExpiresAtMs: T0 + 30_000,
          createdAtMs: T0,
          recoveries: 0,
        });
        expect(r.steps).toEqual([
          { index: 0, name: 'drive', phase: 'action', status: 'running', attempts: 1, output: null, error: null, startedAtMs: T0, finishedAtMs: null },
        ]);
      }
    });

    it('returns the saga holding an idempotency key and writes nothing', async () => {
      const key = `key-${randomUUID()}`;
      const first = await log.create(newSaga({ idempotencyKey: key }));
      const second = await log.create(newSaga({ idempotencyKey: key, input: { other: 1 } }));
      expect(second.created).toBe(false);
      expect(second.record.id).toBe(first.record.id);
      expect(second.record.input).toEqual(first.record.input);
      expect((await log.list({ name })).items).toHaveLength(1);
    });
  });

  describe('steps', () => {
    it('counts attempts across calls and keeps the output and the outcome', async () => {
      const { record } = await log.create(newSaga({ firstStep: 'drive' }));
      expect(await log.startStep(record.id, { ...lease(T0 + 1), index: 0, name: 'drive', phase: 'action' })).toEqual({ attempts: 2, cancelRequested: false });
      await log.finishStep(record.id, { ...lease(T0 + 2), index: 0, phase: 'action', status: 'succeeded', output: { fileId: 'f-1', n: [1, 2.5] } });
      expect(await log.startStep(record.id, { ...lease(T0 + 3), index: 1, name: 'rows', phase: 'action' })).toEqual({ attempts: 1, cancelRequested: false });
      const error = { type: 'TypeError', message: 'no rows', code: 'E1', step: 'rows' };
      await log.finishStep(record.id, {
        ...lease(T0 + 4),
        index: 1,
        phase: 'action',
        status: 'failed',
        error,
        transition: { from: 'running', to: 'compensating', error },
      });
      await log.startStep(record.id, { ...lease(T0 + 5), index: 0, name: 'drive', phase: 'compensation' });
      const saga = (await log.get(record.id))!;
      expect(saga).toMatchObject({ state: 'compensating', error, updatedAtMs: T0 + 5, leaseExpiresAtMs: T0 + 5 + 30_000 });
      expect(saga.steps.map((s) => [s.phase, s.name, s.status, s.attempts, s.output])).toEqual([
        ['action', 'drive', 'succeeded', 2, { fileId: 'f-1', n: [1, 2.5] }],
        ['action', 'rows', 'failed', 1, null],
        ['compensation', 'drive', 'running', 1, null],
      ]);
      expect(saga.steps[0]).toMatchObject({ startedAtMs: T0 + 1, finishedAtMs: T0 + 2 });
      expect(saga.steps[1]!.error).toEqual(error);
    });

    it('refuses a step under another owner, or in a state that does not run that phase', async () => {
      const { record } = await log.create(newSaga({ firstStep: 'drive' }));
      await expect(log.startStep(record.id, { ...lease(T0, 'someone-else'), index: 1, name: 'rows', phase: 'action' })).rejects.toSatisfy(leaseLost);
      await expect(log.finishStep(record.id, { ...lease(T0, 'someone-else'), index: 0, phase: 'action', status: 'succeeded', output: 1 })).rejects.toSatisfy(
        leaseLost,
      );
      await expect(log.startStep(record.id, { ...lease(), index: 0, name: 'drive', phase: 'compensation' })).rejects.toSatisfy(leaseLost);
      await expect(log.startStep(randomUUID(), { ...lease(), index: 0, name: 'drive', phase: 'action' })).rejects.toSatisfy(leaseLost);
      expect((await log.get(record.id))!.steps).toHaveLength(1);
    });

    it('reports a cancel request to the next step', async () => {
      const { record } = await log.create(newSaga({ firstStep: 'drive' }));
      expect(await log.requestCancel(record.id, T0 + 1)).toMatchObject({ cancelRequested: true, state: 'running' });
      expect((await log.startStep(record.id, { ...lease(), index: 1, name: 'rows', phase: 'action' })).cancelRequested).toBe(true);
    });
  });

  describe('state machine', () => {
    it.each(SAGA_STATES.flatMap((from) => SAGA_STATES.filter((to) => to !== from).map((to) => [from, to] as const)))(
      '%s → %s is refused unless allowed',
      async (from, to) => {
        const id = await sagaIn(from);
        const before = await log.get(id);
        const allowed = TRANSITIONS[from].includes(to);
        const attempt = log.transition(id, lease(T0 + 10), { from, to });
        if (allowed) {
          // Allowed only for the lease holder; finished states leave no lease to check.
          if (['running', 'compensating'].includes(from)) {
            await attempt;
            expect((await log.get(id))!.state).toBe(to);
          } else {
            await expect(attempt).rejects.toSatisfy(leaseLost);
          }
        } else {
          await expect(attempt).rejects.toSatisfy((e) => isAikbError(e, 'FAILED_PRECONDITION'));
          expect(await log.get(id)).toEqual(before);
        }
      },
    );

    it('refuses a transition whose from is not the current state', async () => {
      const id = await sagaIn('compensating');
      await expect(log.transition(id, lease(), { from: 'running', to: 'completed' })).rejects.toSatisfy(leaseLost);
      expect((await log.get(id))!.state).toBe('compensating');
    });

    it('ends the lease and stamps the time when a saga finishes or is parked', async () => {
      for (const state of ['completed', 'compensated', 'cancelled', 'compensation_failed', 'parked'] as const) {
        const saga = (await log.get(await sagaIn(state)))!;
        expect(saga, state).toMatchObject({ state, leaseOwner: null, leaseExpiresAtMs: null, finishedAtMs: T0 });
      }
      expect((await log.get(await sagaIn('parked')))!).toMatchObject({ parkReason: 'definition x@1 is not registered', parkedFrom: 'running' });
    });
  });

  describe('leases', () => {
    it('claims only active sagas whose lease expired, each for one caller, counting recoveries', async () => {
      const expired = [await sagaIn('running'), await sagaIn('compensating'), await sagaIn('running')];
      const other = [await sagaIn('completed'), await sagaIn('compensation_failed'), await sagaIn('parked')];
      const mine = new Set([...expired, ...other]);
      // Still leased at T0 + 10: nothing to claim.
      expect((await log.claim(lease(T0 + 10, 'a'), 1000, [name])).filter((r) => mine.has(r.id))).toEqual([]);
      const late = T0 + 30_001;
      // Names it does not know are left to an instance that does.
      expect((await log.claim(lease(late, 'z'), 1000, [`${name}_other`])).filter((r) => mine.has(r.id))).toEqual([]);
      const [a, b] = await Promise.all([log.claim(lease(late, 'a'), 1000, [name]), log.claim(lease(late, 'b'), 1000, [name])]);
      const claimedA = a.filter((r) => mine.has(r.id));
      const claimedB = b.filter((r) => mine.has(r.id));
      expect([...claimedA, ...claimedB].map((r) => r.id).sort()).toEqual([...expired].sort());
      for (const r of claimedA) expect(r).toMatchObject({ leaseOwner: 'a', leaseExpiresAtMs: late + 30_000, recoveries: 1 });
      const compensating = [...claimedA, ...claimedB].find((r) => r.id === expired[1])!;
      expect(compensating.steps.map((s) => s.name)).toEqual(['drive']);
      // The old owner's writes are refused now.
      await expect(log.startStep(expired[0]!, { ...lease(late), index: 1, name: 'rows', phase: 'action' })).rejects.toSatisfy(leaseLost);
    });

    it('renews only the given sagas the owner holds, and releases them for an immediate claim', async () => {
      const one = await sagaIn('running');
      const two = await sagaIn('running');
      expect(await log.renew({ owner, nowMs: T0 + 1, leaseExpiresAtMs: T0 + 90_000 }, [one])).toBe(1);
      expect((await log.get(one))!.leaseExpiresAtMs).toBe(T0 + 90_000);
      expect((await log.get(two))!.leaseExpiresAtMs).toBe(T0 + 30_000);
      expect(await log.renew({ owner: 'not-me', nowMs: T0 + 1, leaseExpiresAtMs: T0 + 90_000 }, [two])).toBe(0);
      expect(await log.release(owner, [one])).toBe(1);
      const claimed = (await log.claim(lease(T0 + 2, 'c'), 1000, [name])).map((r) => r.id);
      expect(claimed).toContain(one);
      expect(claimed).not.toContain(two);
    });
  });

  describe('operators', () => {
    it('cancels only a running saga, and says undefined for a missing one', async () => {
      expect(await log.requestCancel(randomUUID(), T0)).toBeUndefined();
      await expect(log.requestCancel(await sagaIn('compensating'), T0)).rejects.toSatisfy((e) => isAikbError(e, 'FAILED_PRECONDITION'));
    });

    it('resolves a failed or parked saga, and nothing else', async () => {
      const failed = await sagaIn('compensation_failed');
      expect(await log.resolve(failed, { by: 'ops@example.com', note: 'deleted by hand', nowMs: T0 + 5 })).toMatchObject({
        state: 'compensation_failed',
        resolvedAtMs: T0 + 5,
        resolvedBy: 'ops@example.com',
        resolutionNote: 'deleted by hand',
      });
      await expect(log.resolve(await sagaIn('completed'), { by: 'x', note: '', nowMs: T0 })).rejects.toSatisfy((e) => isAikbError(e, 'FAILED_PRECONDITION'));
      expect(await log.resolve(randomUUID(), { by: 'x', note: '', nowMs: T0 })).toBeUndefined();
    });

    it('reopens a failed saga with a fresh budget for the failed compensations, and a parked one where it was', async () => {
      const { record } = await log.create(newSaga({ firstStep: 'drive' }));
      await log.finishStep(record.id, { ...lease(), index: 0, phase: 'action', status: 'succeeded', output: 1 });
      await log.startStep(record.id, { ...lease(), index: 1, name: 'rows', phase: 'action' });
      await log.finishStep(record.id, { ...lease(), index: 1, phase: 'action', status: 'succeeded', output: 2 });
      await log.transition(record.id, lease(), { from: 'running', to: 'compensating' });
      await log.startStep(record.id, { ...lease(), index: 1, name: 'rows', phase: 'compensation' });
      await log.finishStep(record.id, { ...lease(), index: 1, phase: 'compensation', status: 'succeeded' });
      await log.startStep(record.id, { ...lease(), index: 0, name: 'drive', phase: 'compensation' });
      await log.startStep(record.id, { ...lease(), index: 0, name: 'drive', phase: 'compensation' });
      await log.finishStep(record.id, {
        ...lease(),
        index: 0,
        phase: 'compensation',
        status: 'failed',
        transition: { from: 'compensating', to: 'compensation_failed' },
      });
      await log.resolve(record.id, { by: 'x', note: 'n', nowMs: T0 });
      const reopened = await log.reopen(record.id, lease(T0 + 7, 'new-owner'));
      expect(reopened).toMatchObject({ state: 'compensating', leaseOwner: 'new-owner', finishedAtMs: null, resolvedAtMs: null });
      expect(reopened.steps.filter((s) => s.phase === 'compensation').map((s) => [s.name, s.attempts])).toEqual([
        ['rows', 1],
        ['drive', 0],
      ]);
      const parked = await sagaIn('parked');
      expect(await log.reopen(parked, lease())).toMatchObject({ state: 'running', parkReason: null, parkedFrom: null, leaseOwner: owner });
      await expect(log.reopen(await sagaIn('completed'), lease())).rejects.toSatisfy((e) => isAikbError(e, 'FAILED_PRECONDITION'));
      await expect(log.reopen(randomUUID(), lease())).rejects.toSatisfy((e) => isAikbError(e, 'NOT_FOUND'));
    });
  });

  describe('list', () => {
    it('filters by state, name and time, newest first, by keyset pages that neither repeat nor skip', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await log.create(newSaga({ nowMs: T0 + (i % 3) * 1000 }))).record.id);
      await log.transition(ids[0]!, lease(), { from: 'running', to: 'completed' });
      const seen: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page++) {
        const result = await log.list({ name, limit: 3, ...(after ? { after } : {}) });
        seen.push(...result.items.map((s) => s.id));
        expect(result.items.every((s) => !('input' in s) && !('steps' in s))).toBe(true);
        if (!result.next) break;
        after = result.next;
      }
      expect([...seen].sort()).toEqual([...ids].sort());
      const all = (await log.list({ name, limit: 500 })).items;
      expect(all.map((s) => s.id)).toEqual(seen);
      for (let i = 1; i < all.length; i++) expect(all[i - 1]!.createdAtMs).toBeGreaterThanOrEqual(all[i]!.createdAtMs);
      expect((await log.list({ name, states: ['completed'] })).items.map((s) => s.id)).toEqual([ids[0]]);
      expect((await log.list({ name, createdFromMs: T0 + 1000, createdToMs: T0 + 2000 })).items.every((s) => s.createdAtMs === T0 + 1000)).toBe(true);
      expect((await log.list({ name, createdFromMs: T0 + 1000, createdToMs: T0 + 2000 })).items).toHaveLength(2);
      expect((await log.list({ name: `${name}_none` })).items).toEqual([]);
    });

    it('refuses a forged cursor or a bad limit with a ValidationError naming the field', async () => {
      await expect(log.list({ after: 'not-a-cursor' })).rejects.toSatisfy((e) => e instanceof ValidationError && e.field === 'after');
      await expect(log.list({ limit: 0 })).rejects.toSatisfy((e) => e instanceof ValidationError && e.field === 'limit');
      await expect(log.list({ states: ['nope' as SagaState] })).rejects.toSatisfy((e) => e instanceof ValidationError && e.field === 'state');
    });

    it('counts sagas by state', async () => {
      const before = await log.countByState();
      await sagaIn('compensation_failed');
      await sagaIn('running');
      const after = await log.countByState();
      expect(after.compensation_failed - before.compensation_failed).toBe(1);
      expect(after.running - before.running).toBe(1);
      expect(Object.keys(after).sort()).toEqual([...SAGA_STATES].sort());
    });
  });

  describe('prune', () => {
    it('deletes finished and resolved sagas older than the cutoff, never an open failure', async () => {
      const old = T0 - 10_000_000;
      const make = async (state: SagaState) => {
        const { record } = await log.create(newSaga({ nowMs: old, leaseExpiresAtMs: old + 1 }));
        const l = lease(old);
        if (state === 'completed') await log.transition(record.id, l, { from: 'running', to: 'completed' });
        if (state === 'compensation_failed') {
          await log.transition(record.id, l, { from: 'running', to: 'compensating' });
          await log.transition(record.id, l, { from: 'compensating', to: 'compensation_failed' });
        }
        return record.id;
      };
      const completed = await make('completed');
      const open = await make('compensation_failed');
      const resolved = await make('compensation_failed');
      await log.resolve(resolved, { by: 'ops', note: '', nowMs: old + 5 });
      const recent = await sagaIn('completed');
      expect(await log.prune(old + 1000, 1000)).toBeGreaterThanOrEqual(2);
      expect(await log.get(completed)).toBeUndefined();
      expect(await log.get(resolved)).toBeUndefined();
      expect(await log.get(open)).toBeDefined();
      expect(await log.get(recent)).toBeDefined();
    });
  });
}
