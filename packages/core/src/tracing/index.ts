/**
 * `@aikb/core/tracing`: span helpers on `@opentelemetry/api` only (no SDK needed: without one,
 * spans still get real random ids), W3C `traceparent` handling, and a bounded store of recent
 * finished spans for an admin endpoint.
 */
export type { SpanScope } from './with-span';
export type { FinishedSpan, SpanQuery, SpanRecord, SpanRecorder, SpanStore, SpanStoreOptions, SpanStoreStats, WithSpanOptions } from './tracing';
export { ATTR_CONNECTIONS_USED, ATTR_LONGEST_HOLD_MS } from './tracing';
export { currentSpan, currentSpanContext, currentTraceId, currentTraceparent, errorType, recordError, scopeValue, startSpanScope, withSpan } from './with-span';
export { formatTraceparent, generateSpanId, generateTraceId, isValidSpanId, isValidTraceId, parseTraceparent } from './trace-context';
export { createSpanStore } from './span-store';
