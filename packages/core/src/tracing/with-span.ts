import { context, SpanKind, SpanStatusCode, trace, type Span, type SpanContext } from '@opentelemetry/api';
import { activeScope, scopeStorage, type RequestScope } from '../internal/request-scope';
import { FallbackSpan } from './internal/fallback-span';
import { formatTraceparent, generateSpanId, generateTraceId, isValidTraceId } from './trace-context';
import { ATTR_CONNECTIONS_USED, ATTR_LONGEST_HOLD_MS, type WithSpanOptions } from './tracing';

const DEFAULT_TRACER_NAME = '@aikb/core';

/**
 * Runs `fn` inside a new span and ends the span when `fn` settles. An error `fn` throws is
 * recorded on the span with its type (`error.type`) and status `ERROR`, then rethrown.
 *
 * Without an OpenTelemetry SDK the span still gets real random ids (a new trace, or the trace of
 * `options.parent` / the enclosing span), is visible to {@link currentTraceId} inside `fn` and
 * everything it awaits, and is handed to `options.recorder` when it ends. When the span ends it
 * carries `aikb.db.connections_used` and `aikb.db.connection_longest_hold_ms`: what a monitored
 * pool (`@aikb/core/pool`) lent to `fn`, its nested spans included.
 *
 * @example
 * ```ts
 * const rows = await withSpan('documents.list', async (span) => {
 *   span.setAttribute('user.id', userId)
 *   return (await pool.query('SELECT ...')).rows
 * })
 * ```
 */
export async function withSpan<T>(name: string, fn: (span: Span) => T | Promise<T>, options: WithSpanOptions = {}): Promise<T> {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('withSpan: name must be a non-empty string');
  if (typeof fn !== 'function') throw new TypeError('withSpan: fn must be a function');
  const tracer = options.tracer ?? trace.getTracer(DEFAULT_TRACER_NAME);
  const kind = options.kind ?? SpanKind.INTERNAL;
  const outer = activeScope();
  let parentContext = context.active();
  if (options.parent) parentContext = trace.setSpanContext(parentContext, options.parent);
  // Without a context manager the API forgets the active span across awaits; the scope does not.
  else if (outer && !trace.getSpan(parentContext)) parentContext = trace.setSpan(parentContext, outer.span);

  let span = tracer.startSpan(name, { kind, ...(options.attributes ? { attributes: options.attributes } : {}) }, parentContext);
  if (!span.isRecording()) {
    // No SDK (or sampled out): the API span has all-zero ids or its parent's span id.
    const parent = trace.getSpanContext(parentContext);
    const traceId = parent && isValidTraceId(parent.traceId) ? parent.traceId : generateTraceId();
    span = new FallbackSpan(name, kind, { traceId, spanId: generateSpanId(), traceFlags: parent?.traceFlags ?? 0 }, options.recorder, options.attributes);
  }
  const { traceId, spanId } = span.spanContext();
  const scope: RequestScope = { traceId, spanId, parent: outer, span, connectionsUsed: 0, longestHoldMs: 0 };
  try {
    return await context.with(trace.setSpan(parentContext, span), () => scopeStorage.run(scope, fn, span));
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.setAttribute(ATTR_CONNECTIONS_USED, scope.connectionsUsed);
    span.setAttribute(ATTR_LONGEST_HOLD_MS, Math.round(scope.longestHoldMs * 1000) / 1000);
    span.end();
  }
}

/** The type name of a thrown value: the error's `name` (`SagaCompensationError`), or its `typeof`. */
export function errorType(error: unknown): string {
  if (error instanceof Error) return error.name || error.constructor?.name || 'Error';
  if (typeof error === 'object' && error !== null && typeof (error as { name?: unknown }).name === 'string') return (error as { name: string }).name;
  return typeof error;
}

/**
 * Records an error on a span (the active one by default): the exception, `error.type` (per the
 * OpenTelemetry semantic conventions) and status `ERROR` with the message.
 * @returns the error's type name
 */
export function recordError(span: Span | undefined, error: unknown): string {
  const type = errorType(error);
  const target = span ?? currentSpan();
  if (!target) return type;
  const message = error instanceof Error ? error.message : String(error);
  target.recordException(error instanceof Error ? error : { name: type, message });
  target.setAttribute('error.type', type);
  target.setStatus({ code: SpanStatusCode.ERROR, message });
  return type;
}

/** The active span: the OpenTelemetry context's, else the innermost {@link withSpan}'s. */
export function currentSpan(): Span | undefined {
  const active = trace.getActiveSpan();
  if (active && isValidTraceId(active.spanContext().traceId)) return active;
  return activeScope()?.span;
}

/** The active span's context, if there is a valid one. */
export function currentSpanContext(): SpanContext | undefined {
  return currentSpan()?.spanContext();
}

/** The active trace id (32 hex digits), or `undefined` outside any span. */
export function currentTraceId(): string | undefined {
  return currentSpanContext()?.traceId;
}

/** The W3C `traceparent` to send on an outgoing call so it joins the active trace. */
export function currentTraceparent(): string | undefined {
  const active = currentSpanContext();
  return active ? formatTraceparent(active) : undefined;
}
