import { systemClock, type Clock } from '../clock';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors';
import { createErrorMetrics } from './index';

const MINUTE = 60_000;
const saga = { type: 'SagaCompensationError', message: 'Failed to delete from Drive' };

/** A clock reading `now()`; the metrics set no timers. */
const at = (now: () => number): Clock => ({ ...systemClock, now });

describe('createErrorMetrics', () => {
  it("reports an endpoint's error count, rate and top error types as the runbook shows them", () => {
    const metrics = createErrorMetrics({ clock: at(() => 1_000_000) });
    for (let i = 0; i < 40; i++) metrics.record({ endpoint: '/api/documents/upload', error: saga });
    for (let i = 0; i < 5; i++) metrics.record({ endpoint: '/api/documents/upload', error: { type: 'UnavailableError', message: 'drive down' } });
    for (let i = 0; i < 330; i++) metrics.record({ endpoint: '/api/documents/upload' });
    metrics.record({ endpoint: '/api/health' });
    expect(metrics.report('1h')).toEqual({
      window: '1h',
      errors: [
        {
          endpoint: '/api/documents/upload',
          requestCount: 375,
          errorCount: 45,
          errorRate: 0.12,
          topErrors: [
            { type: 'SagaCompensationError', count: 40, message: 'Failed to delete from Drive' },
            { type: 'UnavailableError', count: 5, message: 'drive down' },
          ],
          clientErrorCount: 0,
          clientErrorRate: 0,
          topClientErrors: [],
        },
      ],
    });
  });

  it('counts client errors (4xx) apart: they never raise the error rate, and an endpoint with only those is listed', () => {
    const metrics = createErrorMetrics({ clock: at(() => 0) });
    for (let i = 0; i < 6; i++) metrics.record({ endpoint: '/api/documents/:id', clientError: { type: 'NotFoundError', message: 'no document with this id' } });
    metrics.record({ endpoint: '/api/documents/:id', clientError: { type: 'ValidationError', message: 'id is malformed' } });
    metrics.record({ endpoint: '/api/documents/:id' });
    metrics.record({ endpoint: '/api/documents/upload', error: saga });
    // Both given: the service failed, a server error.
    metrics.record({ endpoint: '/api/documents/upload', error: saga, clientError: { type: 'ValidationError' } });
    expect(metrics.report('5m').errors).toEqual([
      {
        endpoint: '/api/documents/upload',
        requestCount: 2,
        errorCount: 2,
        errorRate: 1,
        topErrors: [{ type: 'SagaCompensationError', count: 2, message: 'Failed to delete from Drive' }],
        clientErrorCount: 0,
        clientErrorRate: 0,
        topClientErrors: [],
      },
      {
        endpoint: '/api/documents/:id',
        requestCount: 8,
        errorCount: 0,
        errorRate: 0,
        topErrors: [],
        clientErrorCount: 7,
        clientErrorRate: 0.875,
        topClientErrors: [
          { type: 'NotFoundError', count: 6, message: 'no document with this id' },
          { type: 'ValidationError', count: 1, message: 'id is malformed' },
        ],
      },
    ]);
  });

  it('keeps client-error types bounded like server-error types', () => {
    const metrics = createErrorMetrics({ clock: at(() => 0), maxErrorTypes: 1 });
    metrics.record({ endpoint: '/a', clientError: { type: 'A' } });
    metrics.record({ endpoint: '/a', clientError: { type: 'B' } });
    const top = metrics.endpoints('5m')[0]!.topClientErrors;
    expect(top).toHaveLength(2);
    expect(top).toEqual(
      expect.arrayContaining([
        { type: 'A', count: 1, message: '' },
        { type: '(other)', count: 1, message: '' },
      ]),
    );
  });

  it('lets errors roll out of the 5m, then the 1h, then the 24h window', () => {
    let now = Date.UTC(2026, 1, 1, 12, 0, 0);
    const metrics = createErrorMetrics({ clock: at(() => now) });
    metrics.record({ endpoint: '/api/documents/:id', error: saga });
    const count = (window: '5m' | '1h' | '24h') => metrics.report(window).errors[0]?.errorCount ?? 0;
    expect([count('5m'), count('1h'), count('24h')]).toEqual([1, 1, 1]);
    now += 4 * MINUTE;
    expect(count('5m')).toBe(1);
    now += 1 * MINUTE + 10_000;
    expect([count('5m'), count('1h'), count('24h')]).toEqual([0, 1, 1]);
    now += 55 * MINUTE + MINUTE;
    expect([count('5m'), count('1h'), count('24h')]).toEqual([0, 0, 1]);
    now += 23 * 60 * MINUTE + 15 * MINUTE;
    expect([count('5m'), count('1h'), count('24h')]).toEqual([0, 0, 0]);
  });

  it('reuses a slot for new events after its old ones expired', () => {
    let now = 0;
    const metrics = createErrorMetrics({ clock: at(() => now) });
    metrics.record({ endpoint: '/a', error: saga });
    now += 5 * MINUTE; // the same slot index of the 5m ring, one lap later
    metrics.record({ endpoint: '/a' });
    expect(metrics.endpoints('5m')).toEqual([
      { endpoint: '/a', requestCount: 1, errorCount: 0, errorRate: 0, topErrors: [], clientErrorCount: 0, clientErrorRate: 0, topClientErrors: [] },
    ]);
    expect(metrics.endpoints('1h')[0]).toMatchObject({ requestCount: 2, errorCount: 1 });
  });

  it('keeps memory fixed: extra endpoints and error types are counted as (other)', () => {
    const metrics = createErrorMetrics({ clock: at(() => 0), maxEndpoints: 2, maxErrorTypes: 1 });
    metrics.record({ endpoint: '/a', error: { type: 'A' } });
    metrics.record({ endpoint: '/a', error: { type: 'B' } });
    metrics.record({ endpoint: '/b' });
    metrics.record({ endpoint: '/c', error: { type: 'C' } });
    const names = metrics.endpoints('5m').map((e) => e.endpoint);
    expect(names).toEqual(['/a', '/b', '(other)']);
    expect(metrics.report('5m').errors[0]).toMatchObject({
      endpoint: '/a',
      topErrors: expect.arrayContaining([
        { type: 'A', count: 1, message: '' },
        { type: '(other)', count: 1, message: '' },
      ]),
    });
  });

  it('rejects an unknown window with a ValidationError naming it, and bad options naming the option', () => {
    const metrics = createErrorMetrics();
    expect(() => metrics.report('2h' as never)).toThrow(ValidationError);
    expect(() => metrics.report('2h' as never)).toThrow(/window must be one of 5m, 1h, 24h/);
    expect(() => createErrorMetrics({ maxEndpoints: 0 })).toThrow(/^createErrorMetrics: maxEndpoints must be a whole number ≥ 1 \(got 0\)$/);
  });

  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])(
    'rejects the window %j, a member of every object, as an unknown window',
    (window) => {
      const metrics = createErrorMetrics();
      metrics.record({ endpoint: '/a', error: saga });
      expect(() => metrics.report(window as never)).toThrow(ValidationError);
      expect(() => metrics.endpoints(window as never)).toThrow(ValidationError);
    },
  );
});
