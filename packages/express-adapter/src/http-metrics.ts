import type { RequestHandler } from 'express';
import { metrics, type Meter } from '@opentelemetry/api';
import type { ErrorMetrics } from '@aikb/core/metrics';
import { errorType } from '@aikb/core/tracing';
import { onResponseDone, responseError, routeTemplate } from './internal/request-state';
import { checkOptions } from '@aikb/core/options';

/** {@link httpMetrics} options. */
export interface HttpMetricsOptions {
  /**
   * Where `http.server.request.duration` (seconds) is recorded.
   * @default metrics.getMeter('@aikb/express') from @opentelemetry/api (a no-op without an SDK)
   */
  meter?: Meter;
  /**
   * Also counts every request per route template: a 5xx as a server error, a 4xx as a client
   * error (each with its error's type and message), anything else as a success.
   */
  errorMetrics?: ErrorMetrics;
  /**
   * Histogram buckets in seconds.
   * @default the OpenTelemetry HTTP semantic conventions' buckets, 5 ms to 10 s
   */
  buckets?: number[];
}

/** The route label of a request no route matched: raw URLs would make unbounded label sets. */
export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * Measures every request with the OpenTelemetry instrument `http.server.request.duration` (seconds;
 * attributes `http.request.method`, `http.route`, `http.response.status_code`), by route template,
 * never by raw URL. Through `@aikb/prometheus` it is `http_server_request_duration_seconds{http_request_method,
 * http_route, http_response_status_code}`.
 *
 * @throws {TypeError} at construction, naming the option, when one is invalid
 */
export function httpMetrics(options: HttpMetricsOptions = {}): RequestHandler {
  const check = checkOptions('httpMetrics', options, true);
  check.object('meter', 'an OpenTelemetry Meter', false, ['createHistogram']);
  check.object('errorMetrics', 'an ErrorMetrics', false, ['record']);
  check.numbers('buckets');
  const meter = options.meter ?? metrics.getMeter('@aikb/express');
  const histogram = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Duration of HTTP server requests, by route template and status.',
    advice: { explicitBucketBoundaries: options.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] },
  });
  return (req, res, next) => {
    const started = performance.now();
    onResponseDone(res, () => {
      const route = routeTemplate(req) ?? UNMATCHED_ROUTE;
      const status = res.statusCode;
      histogram.record((performance.now() - started) / 1000, { 'http.request.method': req.method, 'http.route': route, 'http.response.status_code': status });
      if (!options.errorMetrics) return;
      if (status < 400) {
        options.errorMetrics.record({ endpoint: route });
        return;
      }
      const error = responseError(res);
      const counted = { type: error === undefined ? `HTTP ${status}` : errorType(error), message: error instanceof Error ? error.message : `HTTP ${status}` };
      options.errorMetrics.record(status >= 500 ? { endpoint: route, error: counted } : { endpoint: route, clientError: counted });
    });
    next();
  };
}
