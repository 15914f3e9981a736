import { describe, expect, it } from 'vitest';
import { startSubsystems, type Subsystem } from './lifecycle';

/** Subsystems that record their starts and closes in `events`; `failStart` / `failClose` name the ones that throw. */
function recorder(options: { failStart?: string; failClose?: readonly string[] } = {}) {
  const events: string[] = [];
  const logged: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = { error: (fields: object, message: string) => void logged.push({ fields: fields as Record<string, unknown>, message }) };
  const subsystem = <K extends string>(name: K): Subsystem<object, Record<K, string>> => ({
    name,
    async start(ctx) {
      events.push(`start ${name} (sees ${Object.keys(ctx).join(',')})`);
      if (options.failStart === name) throw new Error(`${name} cannot start`);
      return { [name]: `${name}-value` } as Record<K, string>;
    },
    async close(started, ctx) {
      events.push(`close ${name} (${started[name]}; started on ${Object.keys(ctx).join(',')})`);
      if (options.failClose?.includes(name)) throw new Error(`${name} cannot close`);
    },
  });
  const list = [subsystem('a'), subsystem('b'), subsystem('c')] as const;
  return { events, logged, logger, list };
}

describe('startSubsystems', () => {
  it('starts subsystems in list order, each on the context the ones before it provided', async () => {
    const { events, logger, list } = recorder();
    const started = await startSubsystems(list, { base: 1 }, { logger });
    expect(events).toEqual(['start a (sees base)', 'start b (sees base,a)', 'start c (sees base,a,b)']);
    expect(started.ctx).toEqual({ base: 1, a: 'a-value', b: 'b-value', c: 'c-value' });
  });

  it('closes them in reverse start order, each given what its start returned and the context it started on', async () => {
    const { events, logger, list } = recorder();
    const started = await startSubsystems(list, { base: 1 }, { logger });
    events.length = 0;
    await started.close();
    expect(events).toEqual(['close c (c-value; started on base,a,b)', 'close b (b-value; started on base,a)', 'close a (a-value; started on base)']);
  });

  it('closes only once when close is called again', async () => {
    const { events, logger, list } = recorder();
    const started = await startSubsystems(list, {}, { logger });
    events.length = 0;
    await Promise.all([started.close(), started.close()]);
    await started.close();
    expect(events).toHaveLength(3);
  });

  it('on a failed start, closes exactly those already started, in reverse, and rethrows the start error', async () => {
    const { events, logger, list } = recorder({ failStart: 'c' });
    await expect(startSubsystems(list, {}, { logger })).rejects.toThrow('c cannot start');
    expect(events).toEqual(['start a (sees )', 'start b (sees a)', 'start c (sees a,b)', 'close b (b-value; started on a)', 'close a (a-value; started on )']);
  });

  it('on a failed first start, closes nothing', async () => {
    const { events, logger, list } = recorder({ failStart: 'a' });
    await expect(startSubsystems(list, {}, { logger })).rejects.toThrow('a cannot start');
    expect(events).toEqual(['start a (sees )']);
  });

  it('on a failed start, still rethrows the start error when a close of the rollback throws (logged)', async () => {
    const { events, logged, logger, list } = recorder({ failStart: 'c', failClose: ['b'] });
    await expect(startSubsystems(list, {}, { logger })).rejects.toThrow('c cannot start');
    expect(events.slice(-2)).toEqual(['close b (b-value; started on a)', 'close a (a-value; started on )']);
    expect(logged).toEqual([{ fields: expect.objectContaining({ subsystem: 'b' }), message: 'b: close failed (b cannot close)' }]);
  });

  it('logs a close that throws, still closes the others, then rejects naming every failure', async () => {
    const { events, logged, logger, list } = recorder({ failClose: ['c', 'b'] });
    const started = await startSubsystems(list, {}, { logger });
    events.length = 0;
    const failure = await started.close().catch((error: unknown) => error);
    expect(events).toEqual(['close c (c-value; started on a,b)', 'close b (b-value; started on a)', 'close a (a-value; started on )']);
    expect(failure).toBeInstanceOf(AggregateError);
    expect((failure as AggregateError).message).toBe('failed to close: c, b');
    expect((failure as AggregateError).errors.map((e: Error) => e.message)).toEqual(['c cannot close', 'b cannot close']);
    expect(logged.map((l) => [l.fields.subsystem, (l.fields.err as Error).message, l.message])).toEqual([
      ['c', 'c cannot close', 'c: close failed (c cannot close)'],
      ['b', 'b cannot close', 'b: close failed (b cannot close)'],
    ]);
  });

  it('skips a subsystem without close when closing', async () => {
    const events: string[] = [];
    const opened: Subsystem<object, { x: number }> = { name: 'x', start: async () => ({ x: 1 }), close: async () => void events.push('close x') };
    const plain: Subsystem<{ x: number }, { y: number }> = { name: 'y', start: async ({ x }) => ({ y: x + 1 }) };
    const started = await startSubsystems([opened, plain], {}, { logger: { error: () => {} } });
    expect(started.ctx.y).toBe(2);
    await started.close();
    expect(events).toEqual(['close x']);
  });
});
