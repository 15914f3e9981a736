import type { RequestHandler } from 'express';
import { parseTraceparent, recordError, startSpanScope, type SpanRecorder } from '@aikb/core/tracing';
import { SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { onResponseDone, requestPath, responseError, routeTemplate, setSpanScope } from './internal/request-state';
import { checkOptions } from '@aikb/core/options';

/** {@link tracing} options. */
export interface TracingOptions {
  /** @default the global tracer (`@aikb/core`) */
  tracer?: Tracer;
  /** Receives each request span when no OpenTelemetry SDK records it (e.g. a `SpanStore`). */
  recorder?: SpanRecorder;
  /**
   * The response header carrying the trace id.
   * @default 'X-Trace-ID'
   */
  header?: string;
}

/**
 * Runs each request in a server span and answers every response, errors and 404s included,
 * with its trace id in `X-Trace-ID`. An incoming W3C `traceparent` is honoured: the request joins
 * that trace (the same trace id comes back). Handlers propagate it downstream with
 * `currentTraceparent()`. The span is named `<METHOD> <route template>` when it ends, and marked
 * as an error for a 5xx answer.
 *
 * Mount it first, so that everything after it runs inside the span.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function tracing(options: TracingOptions = {}): RequestHandler {
  const check = checkOptions('tracing', options, true);
  check.object('tracer', 'an OpenTelemetry Tracer');
  check.object('recorder', 'a SpanRecorder');
  check.string('header');
  const header = options.header ?? 'X-Trace-ID';
  const spanOptions = {
    kind: SpanKind.SERVER,
    ...(options.tracer ? { tracer: options.tracer } : {}),
    ...(options.recorder ? { recorder: options.recorder } : {}),
  };
  return (req, res, next) => {
    const parent = parseTraceparent(req.headers.traceparent);
    // One span scope per request, entered synchronously and ended when the response is done: no
    // promise per request (the span used to live as long as an awaited one did).
    const scoped = startSpanScope(req.method, parent ? { ...spanOptions, parent } : spanOptions);
    const { span } = scoped;
    setSpanScope(req, scoped);
    res.setHeader(header, span.spanContext().traceId);
    onResponseDone(
      res,
      () => {
        const route = routeTemplate(req);
        if (route) span.updateName(`${req.method} ${route}`);
        span.setAttributes({
          'http.request.method': req.method,
          'url.path': requestPath(req) || '/',
          'http.response.status_code': res.statusCode,
          ...(route ? { 'http.route': route } : {}),
        });
        const error = responseError(res);
        if (error !== undefined && res.statusCode >= 500) recordError(span, error);
        else if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${res.statusCode}` });
        scoped.end();
      },
      { onAbort: true },
    );
    scoped.run(next as () => void);
  };
}
