/**
 * `@aikb/core/metrics`: per-endpoint request, server-error (5xx) and client-error (4xx) counts over sliding windows (5 minutes,
 * 1 hour, 24 hours) in fixed memory, for an operator's "which endpoint is failing" question.
 */
export type {
  EndpointErrors,
  ErrorMetrics,
  ErrorMetricsOptions,
  ErrorReport,
  ErrorTypeCount,
  ErrorWindow,
  OutcomeError,
  RequestOutcome,
} from './error-metrics';
export { createErrorMetrics } from './create-error-metrics';
