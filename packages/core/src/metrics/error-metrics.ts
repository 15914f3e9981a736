/** The sliding windows error metrics are reported over. */
export type ErrorWindow = '5m' | '1h' | '24h';

/** One outcome to count: the endpoint's route template, and the error when the request failed. */
export interface RequestOutcome {
  /** A route template (`/api/documents/:id`), never a raw URL: each distinct value costs memory. */
  readonly endpoint: string;
  /** Present when the request failed. */
  readonly error?: { readonly type: string; readonly message?: string };
}

/** An error type seen on an endpoint, with the latest message as a sample. */
export interface ErrorTypeCount {
  readonly type: string;
  readonly count: number;
  readonly message: string;
}

/** One endpoint's figures over a window. */
export interface EndpointErrors {
  readonly endpoint: string;
  readonly requestCount: number;
  readonly errorCount: number;
  /** `errorCount / requestCount`, from 0 to 1. */
  readonly errorRate: number;
  /** The most frequent error types, most frequent first. */
  readonly topErrors: readonly ErrorTypeCount[];
}

/** Every endpoint that had errors in the window, most errors first (the runbook's response). */
export interface ErrorReport {
  readonly window: ErrorWindow;
  readonly errors: readonly EndpointErrors[];
}

/** {@link createErrorMetrics} options. */
export interface ErrorMetricsOptions {
  /**
   * Wall-clock time in milliseconds.
   * @default Date.now
   */
  clock?: () => number;
  /**
   * Distinct endpoints tracked; further ones are counted together under `(other)`.
   * @default 200
   */
  maxEndpoints?: number;
  /**
   * Distinct error types kept per endpoint and time slot; further ones count as `(other)`.
   * @default 10
   */
  maxErrorTypes?: number;
  /**
   * How many error types a report lists per endpoint.
   * @default 5
   */
  topErrors?: number;
}

/**
 * Request and error counts per endpoint over sliding windows of 5 minutes, 1 hour and 24 hours,
 * in fixed memory: each window is a ring of time slots (30 × 10 s, 60 × 1 min, 96 × 15 min), so
 * an event leaves a window between the window's length and one slot later.
 */
export interface ErrorMetrics {
  /** Counts one request. */
  record(outcome: RequestOutcome): void;
  /**
   * The window's figures now.
   * @throws {ValidationError} (field `window`) when the window is not one of {@link ErrorMetrics.windows}
   */
  report(window: ErrorWindow): ErrorReport;
  /** Every endpoint's figures (with or without errors) over a window. */
  endpoints(window: ErrorWindow): EndpointErrors[];
  readonly windows: readonly ErrorWindow[];
}
