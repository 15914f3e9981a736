import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createSpanStore, currentTraceId, currentTraceparent, isValidTraceId, parseTraceparent, scopeValue, startSpanScope, withSpan } from './index';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('withSpan without an OpenTelemetry SDK', () => {
  it('gives the span a real random trace id, visible through nested awaits', async () => {
    expect(currentTraceId()).toBeUndefined();
    const seen: Array<string | undefined> = [];
    const id = await withSpan('outer', async (span) => {
      seen.push(currentTraceId());
      await tick();
      await Promise.all(
        [1, 2].map(async () => {
          await tick();
          seen.push(currentTraceId());
        }),
      );
      return span.spanContext().traceId;
    });
    expect(isValidTraceId(id)).toBe(true);
    expect(id).not.toBe('0'.repeat(32));
    expect(seen).toEqual([id, id, id]);
    expect(currentTraceId()).toBeUndefined();
  });

  it('starts a new trace per root span and keeps the trace for a child', async () => {
    const a = await withSpan('a', () => currentTraceId());
    const b = await withSpan('b', () => currentTraceId());
    expect(a).not.toBe(b);
    const [outer, inner] = await withSpan('outer', async (o) => [o.spanContext(), await withSpan('inner', (i) => i.spanContext())]);
    expect(inner.traceId).toBe(outer.traceId);
    expect(inner.spanId).not.toBe(outer.spanId);
  });

  it('joins the trace of a remote parent from a traceparent header', async () => {
    const parent = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')!;
    const traceparent = await withSpan('child', () => currentTraceparent(), { parent });
    expect(traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(traceparent).not.toContain('00f067aa0ba902b7');
  });

  it('hands the finished span to the recorder, with an error recorded by type', async () => {
    const store = createSpanStore();
    class SagaCompensationError extends Error {
      override name = 'SagaCompensationError';
    }
    await expect(
      withSpan(
        'upload',
        () => {
          throw new SagaCompensationError('Failed to delete from Drive');
        },
        { recorder: store },
      ),
    ).rejects.toThrow('Failed to delete');
    expect(store.query()).toEqual([expect.objectContaining({ spanName: 'upload', status: 'error', connectionsUsed: 0 })]);
  });
});

describe('startSpanScope', () => {
  it('runs code inside the span, through its awaits, until end records it once', async () => {
    const store = createSpanStore();
    const scoped = startSpanScope('GET', { recorder: store });
    const { traceId } = scoped.span.spanContext();
    expect(currentTraceId()).toBeUndefined();
    const later = scoped.run(async (n: number) => {
      await tick();
      return [currentTraceId(), n] as const;
    }, 7);
    expect(await later).toEqual([traceId, 7]);
    await expect(scoped.run(() => withSpan('child', (child) => child.spanContext().traceId))).resolves.toBe(traceId);
    expect(store.query()).toEqual([]);
    scoped.end();
    scoped.end();
    expect(store.query()).toEqual([expect.objectContaining({ spanName: 'GET', traceId, connectionsUsed: 0 })]);
    expect(currentTraceId()).toBeUndefined();
  });

  it('names the problem for a missing name', () => {
    expect(() => startSpanScope('')).toThrow('startSpanScope: name must be a non-empty string');
  });

  it('carries values set on a scope to code inside it and its child spans, and nowhere else', async () => {
    const key = Symbol('request');
    const other = Symbol('other');
    const a = startSpanScope('a');
    const b = startSpanScope('b');
    a.set(key, 'A');
    b.set(key, 'B');
    expect(scopeValue(key)).toBeUndefined();
    const seen = await a.run(async () => {
      await tick();
      const inChild = await withSpan('child', async () => {
        await tick();
        return scopeValue(key);
      });
      return [scopeValue(key), inChild, scopeValue(other)];
    });
    expect(seen).toEqual(['A', 'A', undefined]);
    expect(b.run(() => scopeValue(key))).toBe('B');
    a.end();
    b.end();
  });
});

describe('withSpan with the OpenTelemetry SDK', () => {
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  afterEach(() => store.forceFlush());
  const store = createSpanStore({ capacity: 10 });
  const provider = new BasicTracerProvider({ spanProcessors: [store] });
  const tracer = provider.getTracer('test');

  it('uses the SDK span, and the store receives it once as a span processor', async () => {
    const id = await withSpan(
      'sdk-span',
      async () => {
        await tick();
        expect(trace.getActiveSpan()?.isRecording()).toBe(true);
        return currentTraceId();
      },
      { tracer, recorder: store },
    );
    expect(isValidTraceId(id)).toBe(true);
    const spans = store.query();
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ traceId: id, spanName: 'sdk-span', status: 'unset' });
  });

  it('marks a failing SDK span as an error with its type', async () => {
    const ended: Array<{ status: number; type: unknown }> = [];
    const watching = new BasicTracerProvider({
      spanProcessors: [
        {
          onStart() {},
          onEnd: (s) => ended.push({ status: s.status.code, type: s.attributes['error.type'] }),
          forceFlush: async () => {},
          shutdown: async () => {},
        },
      ],
    });
    await expect(withSpan('x', () => Promise.reject(new TypeError('bad')), { tracer: watching.getTracer('t') })).rejects.toThrow();
    expect(ended).toEqual([{ status: SpanStatusCode.ERROR, type: 'TypeError' }]);
  });
});

describe('withSpan with a globally registered SDK and no tracer option', () => {
  afterEach(() => trace.disable());

  it('records into an SDK registered after earlier spans, and stops after trace.disable()', async () => {
    const ended: string[] = [];
    const recording = () =>
      new BasicTracerProvider({
        spanProcessors: [{ onStart() {}, onEnd: (s) => ended.push(s.name), forceFlush: async () => {}, shutdown: async () => {} }],
      });
    await withSpan('before any SDK', () => undefined);
    trace.setGlobalTracerProvider(recording());
    await withSpan('first SDK', () => undefined);
    trace.disable();
    await withSpan('after disable', () => undefined);
    trace.setGlobalTracerProvider(recording());
    await withSpan('second SDK', () => undefined);
    expect(ended).toEqual(['first SDK', 'second SDK']);
  });
});

describe('parseTraceparent', () => {
  it.each([
    ['00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'],
    ['garbage'],
  ])('rejects %s', (header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });
});
