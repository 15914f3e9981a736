import { SpanStatusCode } from '@opentelemetry/api';
import { ValidationError } from '../errors';
import { checkOptions } from '../options';
import { hrTimeToMs } from './internal/fallback-span';
import { ATTR_CONNECTIONS_USED, ATTR_LONGEST_HOLD_MS, type FinishedSpan, type SpanRecord, type SpanStore, type SpanStoreOptions } from './tracing';
import { describeValue } from '../options/check-options';

const STATUSES: ReadonlyArray<SpanRecord['status']> = ['ok', 'error', 'unset'];

function nonNegativeNumber(field: string, value: unknown, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new ValidationError(field, `${field} must be a ${integer ? 'whole number' : 'number'} ≥ 0 (got ${describeValue(value)})`);
  }
  return value;
}

function numberAttribute(span: FinishedSpan, key: string): number {
  const value = span.attributes[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** What the ring holds: the record with its start as epoch ms, made ISO only when a query returns it. */
type Kept = Omit<SpanRecord, 'startTime'> & { readonly startMs: number };

function toRecord(span: FinishedSpan): Kept {
  const { traceId, spanId } = span.spanContext();
  const code = span.status?.code;
  return {
    traceId,
    spanId,
    spanName: span.name,
    connectionsUsed: numberAttribute(span, ATTR_CONNECTIONS_USED),
    longestHoldMs: numberAttribute(span, ATTR_LONGEST_HOLD_MS),
    durationMs: Math.round(hrTimeToMs(span.duration) * 1000) / 1000,
    status: code === SpanStatusCode.ERROR ? 'error' : code === SpanStatusCode.OK ? 'ok' : 'unset',
    startMs: hrTimeToMs(span.startTime),
  };
}

function published({ startMs, ...record }: Kept): SpanRecord {
  return { ...record, startTime: new Date(startMs).toISOString() };
}

/**
 * Creates a {@link SpanStore}: the last `capacity` finished spans, newest first.
 *
 * @throws {TypeError} when `capacity` is not a positive integer
 *
 * @example
 * ```ts
 * const spans = createSpanStore({ capacity: 500 })
 * await withSpan('GET /api/documents', handler, { recorder: spans })   // no SDK
 * // or: new BasicTracerProvider({ spanProcessors: [spans] })          // with the SDK
 * spans.query({ minConnections: 5, limit: 20 })
 * ```
 */
export function createSpanStore(options: SpanStoreOptions = {}): SpanStore {
  checkOptions('createSpanStore', options, true).number('capacity', { min: 1, integer: true });
  const capacity = options.capacity ?? 1000;
  const ring = new Array<Kept | undefined>(capacity);
  let next = 0;
  let recorded = 0;

  return {
    stats: () => ({ size: Math.min(recorded, capacity), recorded, capacity }),
    onEnd(span) {
      ring[next] = toRecord(span);
      next = (next + 1) % capacity;
      recorded++;
    },
    query(query = {}) {
      const minConnections = nonNegativeNumber('minConnections', query.minConnections, true) ?? 0;
      const minDurationMs = nonNegativeNumber('minDurationMs', query.minDurationMs, false) ?? 0;
      const limit = nonNegativeNumber('limit', query.limit, true) ?? 100;
      if (query.status !== undefined && !STATUSES.includes(query.status)) {
        throw new ValidationError('status', `status must be one of ${STATUSES.join(', ')} (got ${String(query.status)})`);
      }
      const found: SpanRecord[] = [];
      const held = Math.min(recorded, capacity);
      for (let i = 1; i <= held && found.length < limit; i++) {
        const record = ring[(next - i + capacity) % capacity]!;
        if (record.connectionsUsed < minConnections || record.durationMs < minDurationMs) continue;
        if (query.status !== undefined && record.status !== query.status) continue;
        found.push(published(record));
      }
      return found;
    },
    onStart() {},
    async forceFlush() {},
    async shutdown() {},
  };
}
