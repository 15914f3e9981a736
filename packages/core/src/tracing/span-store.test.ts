import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors';
import { ATTR_CONNECTIONS_USED, createSpanStore, type FinishedSpan } from './index';

let n = 0;
function span(name: string, connections: number, durationMs: number, code = 0): FinishedSpan {
  const id = (++n).toString(16).padStart(16, '0');
  return {
    name,
    spanContext: () => ({ traceId: id.repeat(2), spanId: id, traceFlags: 1 }),
    startTime: [1_700_000_000, 0],
    duration: [Math.floor(durationMs / 1000), (durationMs % 1000) * 1e6],
    status: { code },
    attributes: { [ATTR_CONNECTIONS_USED]: connections },
  };
}

describe('createSpanStore', () => {
  it('keeps only the newest spans up to its capacity, newest first', () => {
    const store = createSpanStore({ capacity: 3 });
    for (let i = 1; i <= 5; i++) store.onEnd(span(`s${i}`, i, 10));
    expect(store.query().map((s) => s.spanName)).toEqual(['s5', 's4', 's3']);
    expect(store.stats()).toEqual({ size: 3, recorded: 5, capacity: 3 });
  });

  it('filters by connections, duration, status and limit', () => {
    const store = createSpanStore();
    store.onEnd(span('few', 1, 5));
    store.onEnd(span('many-slow', 6, 900, 2));
    store.onEnd(span('many-fast', 7, 3));
    expect(store.query({ minConnections: 5 }).map((s) => s.spanName)).toEqual(['many-fast', 'many-slow']);
    expect(store.query({ minConnections: 5, limit: 1 }).map((s) => s.spanName)).toEqual(['many-fast']);
    expect(store.query({ minDurationMs: 100 }).map((s) => s.spanName)).toEqual(['many-slow']);
    expect(store.query({ status: 'error' })[0]).toMatchObject({
      spanName: 'many-slow',
      connectionsUsed: 6,
      durationMs: 900,
      startTime: '2023-11-14T22:13:20.000Z',
    });
  });

  it('rejects a bad filter naming the field, and a bad capacity naming the option', () => {
    const store = createSpanStore();
    expect(() => store.query({ minConnections: -1 })).toThrow(ValidationError);
    expect(() => store.query({ limit: 1.5 })).toThrow(/limit must be a whole number/);
    expect(() => store.query({ status: 'bad' as never })).toThrow(/status must be one of/);
    expect(() => createSpanStore({ capacity: 0 })).toThrow(/^createSpanStore: capacity must be a whole number ≥ 1 \(got 0\)$/);
  });
});
