import { context, SpanKind, SpanStatusCode, trace, type Context, type Span, type SpanContext, type Tracer, type TracerProvider } from '@opentelemetry/api';
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
  if (typeof fn !== 'function') throw new TypeError('withSpan: fn must be a function');
  const scoped = beginSpanScope(name, options, 'withSpan');
  try {
    return await scoped.run(fn, scoped.span);
  } catch (error) {
    recordError(scoped.span, error);
    throw error;
  } finally {
    scoped.end();
  }
}

/** A span begun by {@link startSpanScope}: code run with `run` is inside it; `end` ends it. */
export interface SpanScope {
  readonly span: Span;
  /**
   * Calls `fn(...args)` with the span active: {@link currentSpan}, {@link currentTraceId}, the
   * pool monitor's connection counts and the OpenTelemetry context see it there and in everything
   * `fn` starts (awaits, callbacks, timers), until those finish, even after `end`.
   */
  run<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R;
  /** Sets the pool monitor's attributes (`aikb.db.*`) and ends the span; once, later calls do nothing. */
  end(): void;
  /**
   * Attaches `value` under `key` to this span's scope: {@link scopeValue} finds it wherever the
   * span is active, in child spans too. A middleware that needs per-request state through every
   * await of its handlers can keep it here instead of in an `AsyncLocalStorage` of its own (each
   * one in use costs every promise the process creates).
   */
  set(key: symbol, value: unknown): void;
}

/** The value attached under `key` to the active span scope or the nearest one around it ({@link SpanScope.set}). */
export function scopeValue<T = unknown>(key: symbol): T | undefined {
  for (let scope = activeScope(); scope; scope = scope.parent) {
    if (scope.values?.has(key)) return scope.values.get(key) as T;
  }
  return undefined;
}

/**
 * {@link withSpan} for work that does not fit one function call: starts the span now, runs code
 * inside it with `run` (synchronously, as often as needed) and ends it with `end`. An HTTP
 * middleware runs `next` inside the request's span and ends the span when the response is done,
 * with no promise per request. The caller records errors (`recordError`) and must call `end`.
 *
 * @throws {TypeError} when `name` is not a non-empty string
 */
export function startSpanScope(name: string, options: WithSpanOptions = {}): SpanScope {
  return beginSpanScope(name, options, 'startSpanScope');
}

function beginSpanScope(name: string, options: WithSpanOptions, caller: string): SpanScope {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`${caller}: name must be a non-empty string`);
  const tracer = options.tracer ?? defaultTracer();
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
  return new ActiveSpanScope(span, scope, trace.setSpan(parentContext, span));
}

let defaultProvider: TracerProvider | undefined;
let cachedDefaultTracer: Tracer | undefined;
/**
 * The global tracer, got once per global provider: `trace.getTracer` makes a new proxy tracer on
 * every call while no SDK is registered (each request would pay for one). The API's provider is
 * a proxy that hands a registered SDK to the tracers it made, and a new one after `trace.disable()`.
 */
function defaultTracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (provider !== defaultProvider || cachedDefaultTracer === undefined) {
    defaultProvider = provider;
    cachedDefaultTracer = provider.getTracer(DEFAULT_TRACER_NAME);
  }
  return cachedDefaultTracer;
}

/** One object per span scope, its methods on the prototype: nothing else allocated per request. */
class ActiveSpanScope implements SpanScope {
  #ended = false;
  constructor(
    readonly span: Span,
    private readonly scope: RequestScope,
    private readonly active: Context,
  ) {}

  run<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R {
    return context.with(this.active, () => scopeStorage.run(this.scope, fn, ...args));
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.span.setAttribute(ATTR_CONNECTIONS_USED, this.scope.connectionsUsed);
    this.span.setAttribute(ATTR_LONGEST_HOLD_MS, Math.round(this.scope.longestHoldMs * 1000) / 1000);
    this.span.end();
  }

  set(key: symbol, value: unknown): void {
    (this.scope.values ??= new Map()).set(key, value);
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
