import type { Attributes, HrTime, SpanContext, SpanKind, SpanStatus, Tracer } from '@opentelemetry/api';

/** Span attribute holding how many pool connections a span (and its children) acquired. */
export const ATTR_CONNECTIONS_USED = 'aikb.db.connections_used';
/** Span attribute holding the longest a span (or a child) held one connection, in milliseconds. */
export const ATTR_LONGEST_HOLD_MS = 'aikb.db.connection_longest_hold_ms';

/**
 * What a span store reads from a finished span: the subset of the OpenTelemetry SDK's
 * `ReadableSpan` aikb needs, so SDK spans and the helpers' own spans fit alike.
 */
export interface FinishedSpan {
  readonly name: string;
  readonly kind?: SpanKind;
  spanContext(): SpanContext;
  readonly startTime: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
}

/** Receives spans when they end: an OpenTelemetry span processor fits. */
export interface SpanRecorder {
  onEnd(span: FinishedSpan): void;
}

/** {@link withSpan} options. */
export interface WithSpanOptions {
  /**
   * The tracer to start the span with.
   * @default trace.getTracer('@aikb/core')
   */
  tracer?: Tracer;
  /** Attributes set when the span starts. */
  attributes?: Attributes;
  /** @default SpanKind.INTERNAL */
  kind?: SpanKind;
  /**
   * A remote parent, e.g. from an incoming W3C `traceparent` header ({@link parseTraceparent}):
   * the span joins its trace. Without it the span is a child of the active span, or a new root.
   */
  parent?: SpanContext;
  /**
   * Receives the span when it ends, but only when no OpenTelemetry SDK records it (the span is
   * then one the helper made itself). With an SDK registered, add the recorder to the SDK as a
   * span processor instead, so each span is recorded once.
   */
  recorder?: SpanRecorder;
}

/** A recent span as {@link SpanStore} keeps it. */
export interface SpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  readonly spanName: string;
  /** Connections acquired from a monitored pool during the span, children included. */
  readonly connectionsUsed: number;
  /** The longest one of them was held, in milliseconds. */
  readonly longestHoldMs: number;
  readonly durationMs: number;
  readonly status: 'ok' | 'error' | 'unset';
  /** ISO 8601. */
  readonly startTime: string;
}

/** {@link SpanStore.query} filters; all optional. */
export interface SpanQuery {
  /** Only spans that used at least this many connections. */
  minConnections?: number;
  /** Only spans that lasted at least this long, in milliseconds. */
  minDurationMs?: number;
  status?: SpanRecord['status'];
  /**
   * At most this many spans, newest first.
   * @default 100
   */
  limit?: number;
}

/** {@link createSpanStore} options. */
export interface SpanStoreOptions {
  /**
   * How many finished spans to keep; the oldest is dropped first.
   * @default 1000
   */
  capacity?: number;
}

/**
 * The most recent finished spans, in fixed memory (a ring buffer). It is an OpenTelemetry span
 * processor (`onStart`/`onEnd`/`forceFlush`/`shutdown`) and a {@link SpanRecorder}, so it works
 * with or without an SDK.
 */
/** {@link SpanStore.stats}. */
export interface SpanStoreStats {
  /** Spans held now (at most `capacity`). */
  readonly size: number;
  /** Spans ever recorded. */
  readonly recorded: number;
  /** The most spans held. */
  readonly capacity: number;
}

export interface SpanStore extends SpanRecorder {
  /** Matching spans, newest first. @throws {ValidationError} for a bad filter (names the field) */
  query(query?: SpanQuery): SpanRecord[];
  /** What the store holds: spans kept now, ever recorded, and at most. */
  stats(): SpanStoreStats;
  onStart(): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}
