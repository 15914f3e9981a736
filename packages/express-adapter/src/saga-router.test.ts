import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySagaLog, createSagaRunner, defineSaga, type SagaRunner } from '@aikb/core/saga';
import { errorHandler } from './error-handler';
import { sagaRouter } from './saga-router';

const runners: SagaRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close({ drainMs: 0 })));
});

/** An upload whose drive deletion fails while `broken.drive` is set. No global body parser. */
function app() {
  const runner = createSagaRunner({ log: createMemorySagaLog(), recoveryIntervalMs: 0 });
  runners.push(runner);
  const broken = { drive: true, index: true };
  let gate: Promise<void> = Promise.resolve();
  const upload = defineSaga<{ path: string }>({ name: 'document_upload', version: 1 })
    .step('drive', {
      action: async () => ({ fileId: 'f1' }),
      compensate: async () => {
        if (broken.drive) throw new Error('Failed to delete from Drive');
      },
      compensationRetry: { retries: 0 },
    })
    .step('index', {
      action: async () => {
        await gate;
        if (broken.index) throw new Error('search is down');
        return null;
      },
      retry: { retries: 0 },
    });
  const server = express()
    .use('/sagas', sagaRouter({ runner, actor: (req) => req.get('x-actor') ?? 'admin-token' }))
    .use(errorHandler());
  return { server, runner, upload, broken, hold: (p: Promise<void>) => (gate = p) };
}

describe('sagaRouter', () => {
  it('lists a failed saga, shows it with its steps, retries it once fixed', async () => {
    const { server, runner, upload, broken } = app();
    const failed = await runner.run(upload, { path: 'a.pdf' });
    expect(failed.state).toBe('compensation_failed');
    const listed = await request(server).get('/sagas?state=compensation_failed,parked&name=document_upload&resolved=false');
    expect(listed.status).toBe(200);
    expect(listed.body.sagas.map((s: { id: string }) => s.id)).toEqual([failed.id]);
    expect(listed.body.sagas[0]).toMatchObject({
      state: 'compensation_failed',
      error: { type: 'SagaCompensationError', message: 'Failed to delete from Drive', step: 'drive' },
    });
    expect(listed.body.sagas[0].steps).toBeUndefined();

    const one = await request(server).get(`/sagas/${failed.id}`);
    expect(one.status).toBe(200);
    expect(one.body.input).toEqual({ path: 'a.pdf' });
    expect(one.body.steps.map((s: { phase: string; name: string; status: string; attempts: number }) => [s.phase, s.name, s.status, s.attempts])).toEqual([
      ['action', 'drive', 'succeeded', 1],
      ['action', 'index', 'failed', 1],
      ['compensation', 'drive', 'failed', 1],
    ]);
    expect(one.body.steps[1]).toMatchObject({ error: { message: 'search is down' }, durationMs: expect.any(Number), startedAt: expect.stringMatching(/Z$/) });

    broken.drive = false;
    const retried = await request(server).post(`/sagas/${failed.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ id: failed.id, state: 'compensated' });
    const again = await request(server).post(`/sagas/${failed.id}/retry`);
    expect(again.status).toBe(409);
    expect(again.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('resolves a failed saga by the acting operator, with a note', async () => {
    const { server, runner, upload } = app();
    const failed = await runner.run(upload, { path: 'b.pdf' });
    const resolved = await request(server).post(`/sagas/${failed.id}/resolve`).set('x-actor', 'ops@example.com').send({ note: 'deleted by hand' });
    expect(resolved.status).toBe(200);
    expect(resolved.body).toMatchObject({ resolvedBy: 'ops@example.com', resolutionNote: 'deleted by hand', state: 'compensation_failed' });
    expect((await request(server).get('/sagas?resolved=false')).body.sagas).toEqual([]);
    const bad = await request(server).post(`/sagas/${failed.id}/resolve`).send({ note: 1, extra: true });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('extra');
    expect((await request(server).post(`/sagas/${failed.id}/resolve`).send({ note: 5 })).body.field).toBe('note');
  });

  it('cancels a running saga: 202, and it ends cancelled', async () => {
    const { server, runner, upload, broken, hold } = app();
    broken.drive = false;
    let open!: () => void;
    void hold(new Promise<void>((resolve) => (open = resolve)));
    const running = runner.run(upload, { path: 'c.pdf' });
    let id: string | undefined;
    for (let i = 0; i < 1000 && id === undefined; i++) {
      id = (await runner.list({ states: ['running'] })).items[0]?.id;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const cancelled = await request(server).post(`/sagas/${id}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(cancelled.body).toMatchObject({ id, cancelRequested: true });
    expect((await running).state).toBe('cancelled');
    open();
    expect((await request(server).post(`/sagas/${id}/cancel`)).status).toBe(409);
  });

  it('pages by keyset and refuses bad filters with a 400 naming them', async () => {
    const { server, runner, upload } = app();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await runner.run(upload, { path: `${i}.pdf` })).id);
    const seen: string[] = [];
    let url = '/sagas?limit=2';
    for (let page = 0; page < 5; page++) {
      const res = await request(server).get(url);
      seen.push(...res.body.sagas.map((s: { id: string }) => s.id));
      if (!res.body.next) break;
      url = `/sagas?limit=2&after=${encodeURIComponent(res.body.next)}`;
    }
    expect(new Set(seen)).toEqual(ids);
    expect(seen).toHaveLength(5);
    for (const [query, field] of [
      ['state=bogus', 'state'],
      ['limit=0', 'limit'],
      ['limit=abc', 'limit'],
      ['after=forged', 'after'],
      ['from=yesterday', 'from'],
      ['resolved=maybe', 'resolved'],
      ['state=running&state=parked', 'state'],
      ['colour=red', 'colour'],
    ] as const) {
      const res = await request(server).get(`/sagas?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.field, query).toBe(field);
    }
    expect((await request(server).get(`/sagas?from=${new Date(Date.now() + 60_000).toISOString()}`)).body.sagas).toEqual([]);
  });

  it('answers 404 for an unknown or malformed id', async () => {
    const { server } = app();
    for (const path of [
      '/sagas/00000000-0000-4000-8000-000000000000',
      '/sagas/not-a-uuid',
      '/sagas/%E0%A4%A',
      '/sagas/00000000-0000-4000-8000-000000000000/retry',
    ]) {
      const res = path.endsWith('retry') ? await request(server).post(path) : await request(server).get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
  });

  it('checks its options at construction', () => {
    expect(() => sagaRouter({} as never)).toThrow(/sagaRouter: runner must be a SagaRunner/);
    expect(() => sagaRouter({ runner: createSagaRunner({ log: createMemorySagaLog(), recoveryIntervalMs: 0 }), maxBodyBytes: 0 })).toThrow(/maxBodyBytes/);
  });
});
