import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { createRecordingMeter, describeEachDatabase } from '@aikb/test-support';
import type { Clock } from '../clock';
import { migrate } from '../db';
import { isAikbError, SagaCompensationError, ValidationError } from '../errors';
import type { Logger } from '../logger';
import { createSagaRunner } from './create-saga-runner';
import { defineSaga } from './define-saga';
import { createMemorySagaLog } from './memory-saga-log';
import { createPostgresSagaLog, sagaLogMigrations } from './postgres-saga-log';
import type { SagaLog, SagaRunner, SagaRunnerOptions } from './saga';

/** A clock whose time moves only when the test says so; timers fire in order. */
function fakeClock(start = Date.now()): Clock & { advance(ms: number): Promise<void> } {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      seq += 1;
      timers.set(seq, { at: now + ms, fn });
      return seq;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    async advance(ms) {
      const target = now + ms;
      for (;;) {
        const due = [...timers].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
        await flush();
      }
      now = target;
      await flush();
    },
  };
}

/** Lets every settled promise run its continuations (log writes included). */
async function flush(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A promise with its resolve and reject. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Waits until `check` holds (the log is written by another connection), checking between turns of the event loop. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline) {
    if (await check()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error('condition never held');
}

const fast = { retries: 2, minDelayMs: 0, randomize: false } as const;

/** A three-step upload, with a ledger of every side effect and switches to make steps fail. */
function uploadSaga(version = 1, options: { recovery?: 'compensate' | 'resume' } = {}) {
  const ledger: string[] = [];
  const fail = new Map<string, Error>();
  const hooks = new Map<string, () => Promise<void>>();
  const effect = async (what: string) => {
    await hooks.get(what)?.();
    const error = fail.get(what);
    if (error !== undefined) throw error;
    ledger.push(what);
  };
  const definition = defineSaga<{ path: string }>({ name: 'document_upload', version, ...options })
    .step('drive', {
      action: async ({ input }) => {
        await effect('drive');
        return { fileId: `file:${input.path}` };
      },
      compensate: async () => effect('undo drive'),
      retry: fast,
      compensationRetry: fast,
    })
    .step('rows', {
      action: async ({ outputs }) => {
        expectTypeOf(outputs.drive.fileId).toEqualTypeOf<string>();
        await effect('rows');
        return { documentId: 7, fileId: outputs.drive.fileId };
      },
      compensate: async ({ output }) => effect(`undo rows${output ? ` ${output.documentId}` : ''}`),
      retry: fast,
      compensationRetry: fast,
    })
    .step('index', {
      action: async ({ outputs }) => {
        await effect('index');
        return outputs.rows.documentId;
      },
      retry: fast,
      compensationRetry: fast,
    });
  return { definition, ledger, fail, hooks };
}

const recordingLogger = () => {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) =>
    void lines.push({ level, obj: obj as Record<string, unknown>, ...(msg !== undefined ? { msg } : {}) });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
};

function describeRunner(makeLog: () => Promise<SagaLog>): void {
  let log: SagaLog;
  let clock: ReturnType<typeof fakeClock>;
  const runners: SagaRunner[] = [];
  const runner = (options: Partial<SagaRunnerOptions> = {}) => {
    const r = createSagaRunner({ log, clock, recoveryIntervalMs: 0, leaseMs: 1000, ...options });
    runners.push(r);
    return r;
  };
  beforeEach(async () => {
    log = await makeLog();
    clock = fakeClock();
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.close({ drainMs: 0 })));
  });

  describe('run', () => {
    it('runs the steps in order, each seeing the input and the outputs before it, and logs every one', async () => {
      const { definition, ledger } = uploadSaga();
      const outcome = await runner().run(definition, { path: 'a.pdf' });
      expect(outcome).toMatchObject({
        state: 'completed',
        outputs: { drive: { fileId: 'file:a.pdf' }, rows: { documentId: 7, fileId: 'file:a.pdf' }, index: 7 },
      });
      expect(ledger).toEqual(['drive', 'rows', 'index']);
      const saga = (await log.get(outcome.id))!;
      expect(saga).toMatchObject({ state: 'completed', name: 'document_upload', version: 1, leaseOwner: null });
      expect(saga.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
        ['drive', 'succeeded', 1],
        ['rows', 'succeeded', 1],
        ['index', 'succeeded', 1],
      ]);
    });

    it('compensates the steps that ran, in reverse, when a later one fails, and not the one that failed', async () => {
      const { definition, ledger, fail } = uploadSaga();
      fail.set('index', new Error('search is down'));
      const outcome = await runner().run(definition, { path: 'b.pdf' });
      expect(outcome).toMatchObject({ state: 'compensated', error: { type: 'Error', message: 'search is down', step: 'index' } });
      expect(ledger).toEqual(['drive', 'rows', 'undo rows 7', 'undo drive']);
      const saga = (await log.get(outcome.id))!;
      expect(saga.steps.map((s) => [s.phase, s.name, s.status, s.attempts])).toEqual([
        ['action', 'drive', 'succeeded', 1],
        ['action', 'rows', 'succeeded', 1],
        ['action', 'index', 'failed', 3],
        ['compensation', 'rows', 'succeeded', 1],
        ['compensation', 'drive', 'succeeded', 1],
      ]);
    });

    it('retries a step by its policy and counts the attempts in the log', async () => {
      const { definition, ledger, fail, hooks } = uploadSaga();
      let calls = 0;
      hooks.set('rows', async () => {
        calls += 1;
        if (calls === 2) fail.delete('rows');
      });
      fail.set('rows', new Error('flaky'));
      const outcome = await runner().run(definition, { path: 'c.pdf' });
      expect(outcome.state).toBe('completed');
      expect(ledger).toEqual(['drive', 'rows', 'index']);
      expect((await log.get(outcome.id))!.steps[1]).toMatchObject({ name: 'rows', attempts: 2, status: 'succeeded' });
    });

    it('sends a non-retryable error straight to compensation', async () => {
      const definition = defineSaga<null>({ name: 'non_retryable', version: 1 })
        .step('one', { action: async () => 1, compensate: async () => undefined })
        .step('two', {
          action: async () => {
            throw Object.assign(new Error('quota exceeded'), { permanent: true });
          },
          retry: { retries: 5, minDelayMs: 0, retryable: (e) => !(e as { permanent?: boolean }).permanent },
        });
      const outcome = await runner().run(definition, null);
      expect(outcome.state).toBe('compensated');
      expect((await log.get(outcome.id))!.steps.find((s) => s.name === 'two')).toMatchObject({ attempts: 1, status: 'failed' });
    });

    it('rejects an output that is not JSON with a typed error, and compensates the step that produced it', async () => {
      const undone: unknown[] = [];
      const definition = defineSaga<null>({ name: 'bad_output', version: 1 }).step('date', {
        action: async () => ({ at: new Date() }) as never,
        compensate: async ({ output }) => void undone.push(output),
      });
      const outcome = await runner().run(definition, null);
      expect(outcome).toMatchObject({ state: 'compensated', error: { type: 'ValidationError', step: 'date' } });
      expect((await log.get(outcome.id))!.steps[0]).toMatchObject({
        status: 'invalid_output',
        attempts: 1,
        error: { type: 'ValidationError', message: expect.stringMatching(/output of step date must be JSON; at is not/) },
      });
      expect(undone).toEqual([undefined]);
    });

    it('refuses an input that is not JSON before writing anything', async () => {
      const { definition } = uploadSaga();
      const r = runner();
      await expect(r.run(definition, { path: 'x', when: new Date() } as never)).rejects.toSatisfy((e) => e instanceof ValidationError && e.field === 'input');
      await expect(r.run(definition, { path: 'x', n: Number.NaN } as never)).rejects.toBeInstanceOf(ValidationError);
      expect((await log.list({ name: 'document_upload' })).items).toEqual([]);
    });
  });

  describe('idempotency', () => {
    it('returns the first outcome for the same key and repeats no side effect, even when run concurrently', async () => {
      const { definition, ledger } = uploadSaga();
      const r = runner();
      const key = `upload-${Math.random()}`;
      const [a, b] = await Promise.all([
        r.run(definition, { path: 'd.pdf' }, { idempotencyKey: key }),
        r.run(definition, { path: 'd.pdf' }, { idempotencyKey: key }),
      ]);
      const c = await r.run(definition, { path: 'd.pdf' }, { idempotencyKey: key });
      expect(a).toEqual(b);
      expect(c).toEqual(a);
      expect(ledger).toEqual(['drive', 'rows', 'index']);
      // A second runner (another instance) also gets the stored outcome.
      expect(await runner().run(definition, { path: 'd.pdf' }, { idempotencyKey: key })).toEqual(a);
    });

    it('returns a failed first run as failed, and refuses the key for another input', async () => {
      const { definition, ledger, fail } = uploadSaga();
      fail.set('drive', new Error('drive full'));
      const r = runner();
      const first = await r.run(definition, { path: 'e.pdf' }, { idempotencyKey: 'k-e' });
      fail.delete('drive');
      expect(await r.run(definition, { path: 'e.pdf' }, { idempotencyKey: 'k-e' })).toEqual(first);
      expect(ledger).toEqual([]);
      await expect(r.run(definition, { path: 'other.pdf' }, { idempotencyKey: 'k-e' })).rejects.toSatisfy(
        (e) => e instanceof ValidationError && e.field === 'idempotencyKey',
      );
    });
  });

  describe('timeouts', () => {
    it('treats a step that timed out as possibly done: aborts it, compensates it without output, and ignores its late result', async () => {
      const { definition: base } = uploadSaga();
      void base;
      const late = deferred<{ id: string }>();
      const undone: unknown[] = [];
      let signal: AbortSignal | undefined;
      const definition = defineSaga<null>({ name: 'slow', version: 1 })
        .step('first', { action: async () => 'ok', compensate: async () => void undone.push('first') })
        .step('upload', {
          action: async (ctx) => {
            signal = ctx.signal;
            return late.promise;
          },
          compensate: async ({ output }) => void undone.push(output ?? 'no output'),
          timeoutMs: 5000,
          retry: { retries: 3, minDelayMs: 0 },
        });
      const running = runner().run(definition, null);
      await until(() => signal !== undefined);
      await clock.advance(4999);
      expect(undone).toEqual([]);
      await clock.advance(1);
      const outcome = await running;
      expect(signal!.aborted).toBe(true);
      expect(outcome).toMatchObject({ state: 'compensated', error: { code: 'DEADLINE_EXCEEDED', step: 'upload' } });
      expect(undone).toEqual(['no output', 'first']);
      // The action finishes after all: the log does not change, and nothing runs again.
      late.resolve({ id: 'late' });
      await flush();
      const saga = (await log.get(outcome.id))!;
      expect(saga.state).toBe('compensated');
      expect(saga.steps.find((s) => s.phase === 'action' && s.name === 'upload')).toMatchObject({ status: 'timed_out', attempts: 1, output: null });
      expect(undone).toEqual(['no output', 'first']);
    });

    it('retries a compensation that timed out', async () => {
      let calls = 0;
      const definition = defineSaga<null>({ name: 'slow_undo', version: 1 }).step('one', {
        action: async () => {
          throw new Error('fail');
        },
        retry: { retries: 0 },
      });
      const withUndo = defineSaga<null>({ name: 'slow_undo2', version: 1 })
        .step('one', {
          action: async () => 1,
          compensate: async () => {
            calls += 1;
            if (calls === 1) await new Promise(() => undefined);
          },
          compensationTimeoutMs: 100,
          compensationRetry: { retries: 1, minDelayMs: 0 },
        })
        .step('two', { action: async () => Promise.reject(new Error('no')), retry: { retries: 0 } });
      void definition;
      const running = runner().run(withUndo, null);
      await until(() => calls === 1);
      await clock.advance(100);
      expect(await running).toMatchObject({ state: 'compensated' });
      expect(calls).toBe(2);
    });
  });

  describe('compensation failures', () => {
    it('leaves the saga compensation_failed with a SagaCompensationError, logs it, reports it, and lists it', async () => {
      const { definition, fail } = uploadSaga();
      fail.set('index', new Error('search is down'));
      fail.set('undo drive', new Error('Failed to delete from Drive'));
      const { logger, lines } = recordingLogger();
      const reported: Error[] = [];
      const r = runner({ logger, onCompensationFailure: (e) => reported.push(e) });
      const outcome = await r.run(definition, { path: 'f.pdf' });
      expect(outcome.state).toBe('compensation_failed');
      if (outcome.state !== 'compensation_failed') throw new Error('unreachable');
      const error = outcome.compensationError;
      expect(error).toBeInstanceOf(SagaCompensationError);
      expect(error).toMatchObject({
        name: 'SagaCompensationError',
        message: 'Failed to delete from Drive',
        sagaId: outcome.id,
        sagaName: 'document_upload',
        step: 'drive',
        code: 'INTERNAL',
      });
      expect((error.cause as Error).message).toBe('Failed to delete from Drive');
      expect(reported).toEqual([error]);
      expect(lines.find((l) => l.level === 'error')).toMatchObject({ obj: { err: error, sagaId: outcome.id, step: 'drive' }, msg: 'saga compensation failed' });
      const listed = await r.list({ states: ['compensation_failed'], name: 'document_upload' });
      expect(listed.items.map((s) => s.id)).toContain(outcome.id);
      expect((await log.get(outcome.id))!.error).toMatchObject({ type: 'SagaCompensationError', message: 'Failed to delete from Drive', step: 'drive' });
      expect(r.stats()).toMatchObject({ compensationFailed: 1, started: 1 });
    });

    it('retries a failed saga with a fresh budget once the cause is fixed, and resolves it otherwise', async () => {
      const { definition, fail, ledger } = uploadSaga();
      fail.set('index', new Error('search is down'));
      fail.set('undo drive', new Error('Failed to delete from Drive'));
      const r = runner();
      const failed = await r.run(definition, { path: 'g.pdf' });
      fail.delete('undo drive');
      expect(await r.retry(failed.id)).toMatchObject({ id: failed.id, state: 'compensated' });
      expect(ledger.filter((l) => l.startsWith('undo'))).toEqual(['undo rows 7', 'undo drive']);
      await expect(r.retry(failed.id)).rejects.toSatisfy((e) => isAikbError(e, 'FAILED_PRECONDITION'));

      const again = await r.run(definition, { path: 'h.pdf' }, { idempotencyKey: 'k-h' });
      expect(again.state).toBe('compensated');
      fail.set('undo rows 7', new Error('db down'));
      const stuck = await r.run(definition, { path: 'i.pdf' });
      expect(stuck.state).toBe('compensation_failed');
      const resolved = await r.resolve(stuck.id, { by: 'ops@example.com', note: 'row deleted by hand' });
      expect(resolved).toMatchObject({ state: 'compensation_failed', resolvedBy: 'ops@example.com' });
      expect((await r.list({ states: ['compensation_failed'], resolved: false })).items.map((s) => s.id)).not.toContain(stuck.id);
      await expect(r.retry('00000000-0000-4000-8000-000000000000')).rejects.toSatisfy((e) => isAikbError(e, 'NOT_FOUND'));
    });
  });

  describe('cancel', () => {
    it('aborts the running step, runs no further action, compensates, and ends cancelled', async () => {
      const { definition, ledger, hooks } = uploadSaga();
      const gate = deferred();
      let inRows = false;
      hooks.set('rows', () => {
        inRows = true;
        return gate.promise;
      });
      const r = runner();
      const running = r.run(definition, { path: 'j.pdf' });
      await until(() => inRows);
      const [record] = (await log.list({ states: ['running'], name: 'document_upload' })).items;
      expect((await r.cancel(record!.id)).cancelRequested).toBe(true);
      const outcome = await running;
      expect(outcome.state).toBe('cancelled');
      // rows was interrupted mid-way: possibly done, so it is compensated (without output); index never ran.
      expect(ledger).toEqual(['drive', 'undo rows', 'undo drive']);
      await expect(r.cancel(outcome.id)).rejects.toSatisfy((e) => isAikbError(e, 'FAILED_PRECONDITION'));
      await expect(r.cancel('00000000-0000-4000-8000-000000000000')).rejects.toSatisfy((e) => isAikbError(e, 'NOT_FOUND'));
      gate.resolve();
    });
  });

  describe('recovery', () => {
    /** Starts a saga on runner `a` and leaves it hanging in `step` (a crash, as far as the log can tell). */
    async function interrupted(step: 'drive' | 'rows' | 'index', options: { recovery?: 'compensate' | 'resume'; version?: number } = {}) {
      const saga = uploadSaga(options.version ?? 1, options);
      saga.hooks.set(step, () => new Promise(() => undefined));
      // Its own clock, which never moves: its heartbeat never renews the lease, as after a crash.
      const a = runner({ owner: 'instance-a', clock: fakeClock(clock.now()) });
      void a.run(saga.definition, { path: 'k.pdf' });
      await until(
        async () =>
          (await log.list({ name: 'document_upload', states: ['running'] })).items.some((s) => s.leaseOwner === 'instance-a') &&
          (step === 'drive' || saga.ledger.length > 0),
      );
      await until(async () => {
        const [s] = (await log.list({ name: 'document_upload', states: ['running'] })).items;
        const full = s && (await log.get(s.id));
        return full !== undefined && full.steps.some((x) => x.name === step && x.status === 'running');
      });
      const [summary] = (await log.list({ name: 'document_upload', states: ['running'] })).items;
      saga.hooks.delete(step);
      return { ...saga, id: summary!.id };
    }

    it('compensates an interrupted saga by default, treating the step in flight as possibly done', async () => {
      const { id, ledger, definition } = await interrupted('index');
      const b = runner({ owner: 'instance-b', definitions: [definition] });
      expect(await b.recover()).toMatchObject({ claimed: 0 });
      await clock.advance(1001);
      const result = await b.recover();
      expect(result).toMatchObject({ claimed: 1, compensated: 1 });
      expect(ledger).toEqual(['drive', 'rows', 'undo rows 7', 'undo drive']);
      const saga = (await log.get(id))!;
      expect(saga).toMatchObject({ state: 'compensated', recoveries: 1, error: { type: 'SagaInterrupted' } });
      expect(saga.steps.find((s) => s.name === 'index' && s.phase === 'action')!.status).toBe('running');
      expect(b.stats()).toMatchObject({ recovered: 1 });
    });

    it('resumes forward a saga whose policy says so, with the retry budget spent before the crash', async () => {
      const { id, ledger, definition } = await interrupted('rows', { recovery: 'resume' });
      const b = runner({ owner: 'instance-b', definitions: [definition] });
      await clock.advance(1001);
      expect(await b.recover()).toMatchObject({ claimed: 1, completed: 1 });
      expect(ledger).toEqual(['drive', 'rows', 'index']);
      expect((await log.get(id))!.steps.find((s) => s.name === 'rows')).toMatchObject({ status: 'succeeded', attempts: 2 });
    });

    it('is done by exactly one of several instances recovering at once', async () => {
      const { id, ledger, definition } = await interrupted('rows');
      await clock.advance(1001);
      const others = [
        runner({ owner: 'b', definitions: [definition] }),
        runner({ owner: 'c', definitions: [definition] }),
        runner({ owner: 'd', definitions: [definition] }),
      ];
      const results = await Promise.all(others.map((r) => r.recover()));
      expect(results.map((r) => r.claimed).reduce((a, b) => a + b, 0)).toBe(1);
      expect(ledger.filter((l) => l === 'undo drive')).toHaveLength(1);
      expect((await log.get(id))!.state).toBe('compensated');
    });

    it('parks a saga whose version is not registered, keeps it listed, and finishes it once the definition is back', async () => {
      const { id, definition, ledger } = await interrupted('rows', { version: 3 });
      const newer = uploadSaga(4);
      const { logger, lines } = recordingLogger();
      const b = runner({ owner: 'b', definitions: [newer.definition], logger });
      await clock.advance(1001);
      expect(await b.recover()).toMatchObject({ claimed: 1, parked: 1 });
      expect(await log.get(id)).toMatchObject({ state: 'parked', parkReason: 'definition document_upload@3 is not registered', parkedFrom: 'running' });
      expect(lines.some((l) => l.level === 'warn' && l.obj.sagaId === id)).toBe(true);
      expect(newer.ledger).toEqual([]);
      expect((await b.list({ states: ['parked'] })).items.map((s) => s.id)).toContain(id);
      await expect(b.retry(id)).rejects.toSatisfy((e) => isAikbError(e, 'FAILED_PRECONDITION'));
      b.register(definition);
      expect(await b.retry(id)).toMatchObject({ state: 'compensated' });
      expect(ledger).toEqual(['drive', 'undo rows', 'undo drive']);
    });

    it('releases its leases on close, so another instance recovers at once', async () => {
      const { definition, hooks } = uploadSaga();
      hooks.set('rows', () => new Promise(() => undefined));
      const a = runner({ owner: 'closing' });
      const running = a.run(definition, { path: 'l.pdf' });
      await until(async () => (await log.list({ name: 'document_upload' })).items.length === 1 && a.stats().inFlight === 1);
      await until(async () => (await log.get((await log.list({ name: 'document_upload' })).items[0]!.id))!.steps.length === 2);
      await a.close({ drainMs: 0 });
      expect(await running).toMatchObject({ state: 'running' });
      const [saga] = (await log.list({ name: 'document_upload' })).items;
      expect(saga).toMatchObject({ state: 'running', leaseOwner: null });
      hooks.delete('rows');
      const b = runner({ owner: 'b', definitions: [definition] });
      expect(await b.recover()).toMatchObject({ claimed: 1, compensated: 1 });
      await expect(a.run(definition, { path: 'm.pdf' })).rejects.toSatisfy((e) => isAikbError(e, 'UNAVAILABLE'));
    });

    it('renews the leases of sagas in flight, so a long step is not recovered elsewhere', async () => {
      const { definition, hooks, ledger } = uploadSaga();
      const gate = deferred();
      hooks.set('rows', () => gate.promise);
      const a = runner({ owner: 'a' });
      const definitionSlow = definition;
      const running = a.run(definitionSlow, { path: 'n.pdf' });
      await until(() => ledger.includes('drive'));
      await until(async () => (await log.get((await log.list({ name: 'document_upload' })).items[0]!.id))!.steps.length === 2);
      const b = runner({ owner: 'b', definitions: [definition] });
      const { id } = (await log.list({ name: 'document_upload' })).items[0]!;
      for (let i = 0; i < 10; i++) {
        await clock.advance(400);
        await until(async () => (await log.get(id))!.leaseExpiresAtMs! > clock.now());
        expect(await b.recover()).toMatchObject({ claimed: 0 });
      }
      gate.resolve();
      expect(await running).toMatchObject({ state: 'completed' });
    });
  });

  describe('retention', () => {
    it('prunes finished sagas after the retention, keeping open failures', async () => {
      const { definition, fail } = uploadSaga();
      const r = runner({ retentionMs: 60_000 });
      const done = await r.run(definition, { path: 'o.pdf' });
      fail.set('index', new Error('x'));
      fail.set('undo drive', new Error('Failed to delete from Drive'));
      const failed = await r.run(definition, { path: 'p.pdf' });
      await clock.advance(59_000);
      expect(await r.prune()).toBe(0);
      await clock.advance(2000);
      expect(await r.prune()).toBe(1);
      expect(await r.get(done.id)).toBeUndefined();
      expect(await r.get(failed.id)).toBeDefined();
      expect(r.stats()).toMatchObject({ pruned: 1 });
    });
  });
}

describe('SagaRunner [memory]', () => {
  describeRunner(async () => createMemorySagaLog());
});

describeEachDatabase('SagaRunner', (db) => {
  describeRunner(async () => {
    await migrate(db().pool, sagaLogMigrations);
    await db().pool.query('DELETE FROM aikb_sagas');
    return createPostgresSagaLog({ pool: db().pool });
  });

  it('writes at most two round trips per step (a counting pool)', async () => {
    await migrate(db().pool, sagaLogMigrations);
    let queries = 0;
    const pool = db().pool;
    const counting = {
      query: ((...args: Parameters<typeof pool.query>) => {
        queries += 1;
        return (pool.query as (...a: unknown[]) => unknown)(...args);
      }) as typeof pool.query,
      connect: (async () => {
        queries += 1;
        return pool.connect();
      }) as typeof pool.connect,
    };
    const log = createPostgresSagaLog({ pool: counting });
    const r = createSagaRunner({ log, recoveryIntervalMs: 0 });
    try {
      const noop = defineSaga<null>({ name: 'noop3', version: 1 })
        .step('a', { action: async () => null, compensate: async () => undefined })
        .step('b', { action: async () => null, compensate: async () => undefined })
        .step('c', { action: async () => null });
      queries = 0;
      expect((await r.run(noop, null)).state).toBe('completed');
      expect(queries).toBeLessThanOrEqual(2 * 3);
      const failing = defineSaga<null>({ name: 'fail3', version: 1 })
        .step('a', { action: async () => null, compensate: async () => undefined })
        .step('b', { action: async () => null, compensate: async () => undefined })
        .step('c', { action: async () => Promise.reject(new Error('no')), retry: { retries: 0 } });
      queries = 0;
      expect((await r.run(failing, null)).state).toBe('compensated');
      // Three actions and two compensations: five steps.
      expect(queries).toBeLessThanOrEqual(2 * 5);
    } finally {
      await r.close();
    }
  });
});

describe('createSagaRunner', () => {
  it('checks its options at construction, naming the option', () => {
    const log = createMemorySagaLog();
    expect(() => createSagaRunner(undefined as never)).toThrow(/createSagaRunner: options must be an object/);
    expect(() => createSagaRunner({} as never)).toThrow(/createSagaRunner: log must be a SagaLog/);
    expect(() => createSagaRunner({ log, leaseMs: 0 })).toThrow(/leaseMs/);
    expect(() => createSagaRunner({ log, recoveryIntervalMs: -1 })).toThrow(/recoveryIntervalMs/);
    expect(() => createSagaRunner({ log, meter: {} as never })).toThrow(/meter/);
    expect(() => createSagaRunner({ log, definitions: {} as never })).toThrow(/definitions/);
  });

  it('refuses two different definitions with one name and version', () => {
    const r = createSagaRunner({ log: createMemorySagaLog(), recoveryIntervalMs: 0 });
    r.register(defineSaga({ name: 'x', version: 1 }));
    expect(() => r.register(defineSaga({ name: 'x', version: 1 }))).toThrow(/raise the version/);
    void r.close();
  });

  it('validates definitions as they are built', () => {
    expect(() => defineSaga({ name: 'bad name', version: 1 })).toThrow(/name must match/);
    expect(() => defineSaga({ name: 'x', version: 0 })).toThrow(/version/);
    const d = defineSaga({ name: 'x', version: 1 }).step('a', { action: async () => 1 });
    expect(() => (d as { step: (n: string, o: object) => unknown }).step('a', { action: async () => 1 })).toThrow(/already exists/);
    expect(() => d.step('b', { action: async () => 1, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => d.step('c', { action: async () => 1, retry: { retries: -1 } })).toThrow(/retries/);
  });

  it('reports started and every finished state from 0 once a saga name is registered, so the compensation rate exists before the first saga ends', async () => {
    const recording = createRecordingMeter();
    const r = createSagaRunner({ log: createMemorySagaLog(), recoveryIntervalMs: 0, meter: recording.meter });
    expect(await recording.points('aikb.saga.started')).toEqual([]);
    r.register(uploadSaga().definition);
    expect(await recording.points('aikb.saga.started')).toEqual([{ attributes: { 'aikb.saga.name': 'document_upload' }, value: 0 }]);
    const finished = await recording.points('aikb.saga.finished');
    expect(finished.map((p) => p.attributes['aikb.saga.state']).sort()).toEqual(['cancelled', 'compensated', 'compensation_failed', 'completed', 'parked']);
    expect(finished.every((p) => p.value === 0)).toBe(true);
    await r.close();
    await recording.shutdown();
  });

  it('records sagas and steps through an OpenTelemetry meter and as spans', async () => {
    const recording = createRecordingMeter();
    const ended: string[] = [];
    const provider = new BasicTracerProvider({
      spanProcessors: [{ onStart() {}, onEnd: (s) => void ended.push(s.name), forceFlush: async () => {}, shutdown: async () => {} }],
    });
    const r = createSagaRunner({ log: createMemorySagaLog(), recoveryIntervalMs: 0, meter: recording.meter, tracer: provider.getTracer('t') });
    const { definition, fail } = uploadSaga();
    await r.run(definition, { path: 'q.pdf' });
    fail.set('rows', new Error('no'));
    await r.run(definition, { path: 'r.pdf' });
    expect(await recording.total('aikb.saga.started')).toBe(2);
    expect(await recording.total('aikb.saga.finished', { 'aikb.saga.state': 'completed' })).toBe(1);
    expect(await recording.total('aikb.saga.finished', { 'aikb.saga.state': 'compensated' })).toBe(1);
    expect(await recording.total('aikb.saga.steps', { 'aikb.saga.step': 'rows', 'aikb.saga.phase': 'action', 'aikb.saga.step.status': 'failed' })).toBe(1);
    expect(
      await recording.total('aikb.saga.steps', { 'aikb.saga.step': 'drive', 'aikb.saga.phase': 'compensation', 'aikb.saga.step.status': 'succeeded' }),
    ).toBe(1);
    expect(await recording.total('aikb.saga.step.duration', { 'aikb.saga.step': 'drive', 'aikb.saga.phase': 'action' })).toBe(2);
    expect(r.stats()).toMatchObject({ started: 2, completed: 1, compensated: 1, compensationRate: 0.5, inFlight: 0 });
    expect(ended).toEqual(expect.arrayContaining(['saga document_upload', 'saga.action drive', 'saga.action rows', 'saga.compensation drive']));
    await r.close();
    await recording.shutdown();
    vi.restoreAllMocks();
  });
});
