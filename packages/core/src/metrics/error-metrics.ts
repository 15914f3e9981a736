import type { Clock } from '../clock';

/** The sliding windows error metrics are reported over. */
export type ErrorWindow = '5m' | '1h' | '24h';

/** The error of a failed request, as counted: its type name and a sample message. */
export interface OutcomeError {
  /** The error's type (`SagaCompensationError`, `ValidationError`, `HTTP 404`, ...). */
  readonly type: string;
  /** A client-safe sample; the latest one per type is kept, cut at 200 characters. */
  readonly message?: string;
}

/**
 * One outcome to count: the endpoint's route template, and how the request failed, if it did.
 * A request is a server error (`error`: HTTP 5xx, the service failed), a client error
 * (`clientError`: HTTP 4xx, the request was refused as asked) or a success (neither). When both
 * are given, it counts as a server error.
 */
export interface RequestOutcome {
  /** A route template (`/api/documents/:id`), never a raw URL: each distinct value costs memory. */
  readonly endpoint: string;
  /** Present when the service failed the request (HTTP 5xx): counts in `errorCount` and `errorRate`. */
  readonly error?: OutcomeError;
  /** Present when the request was refused (HTTP 4xx): counts in `clientErrorCount`, never in `errorRate`. */
  readonly clientError?: OutcomeError;
}

/** An error type seen on an endpoint, with the latest message as a sample. */
export interface ErrorTypeCount {
  readonly type: string;
  readonly count: number;
  readonly message: string;
}

/**
 * One endpoint's figures over a window. Server errors (5xx) and client errors (4xx) are counted
 * apart: `errorCount` / `errorRate` are the runbook's error rate (the service failing), which a
 * burst of bad requests or unknown ids must not raise; `clientErrorCount` / `clientErrorRate`
 * show those refusals (a client sending bad input, a scan for unknown ids, throttled logins).
 */
export interface EndpointErrors {
  readonly endpoint: string;
  /** Every request counted, successes and both kinds of error. */
  readonly requestCount: number;
  /** Server errors (HTTP 5xx). */
  readonly errorCount: number;
  /** `errorCount / requestCount`, from 0 to 1 (4 decimals). */
  readonly errorRate: number;
  /** The most frequent server-error types, most frequent first. */
  readonly topErrors: readonly ErrorTypeCount[];
  /** Client errors (HTTP 4xx). */
  readonly clientErrorCount: number;
  /** `clientErrorCount / requestCount`, from 0 to 1 (4 decimals). */
  readonly clientErrorRate: number;
  /** The most frequent client-error types, most frequent first. */
  readonly topClientErrors: readonly ErrorTypeCount[];
}

/**
 * Every endpoint that had server or client errors in the window, most server errors first, then
 * most client errors (the runbook's response, with the client-error members added).
 */
export interface ErrorReport {
  readonly window: ErrorWindow;
  readonly errors: readonly EndpointErrors[];
}

/** {@link createErrorMetrics} options. */
export interface ErrorMetricsOptions {
  /**
   * Places events in time slots (wall-clock epoch milliseconds: slots line up with the clock's
   * minutes). Only `now` is read; no timers are set.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Distinct endpoints tracked; further ones are counted together under `(other)`.
   * @default 200
   */
  maxEndpoints?: number;
  /**
   * Distinct error types kept per endpoint and time slot, for server and for client errors each;
   * further ones count as `(other)`.
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
  /** Counts one request: a success, a server error (`error`) or a client error (`clientError`). */
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
