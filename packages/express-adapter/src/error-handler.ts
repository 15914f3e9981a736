import type { ErrorRequestHandler, RequestHandler } from 'express';
import { NotFoundError, noopLogger, type Logger } from '@aikb/core';
import { errorType } from '@aikb/core/tracing';
import { isLoggedElsewhere, requestEntryOf, requestPath, routeTemplate, setResponseError } from './internal/request-state';
import { problemFromError, sendProblem } from './problem';
import { checkOptions } from '@aikb/core/options';

/** {@link errorHandler} options. */
export interface ErrorHandlerOptions {
  /**
   * Where unexpected (5xx) errors are logged with their stack, when the request has no logger
   * of its own from `requestLogging()` (whose lines carry `requestId` and `traceId`).
   * @default noopLogger
   */
  logger?: Logger;
}

/**
 * The last middleware of an app: answers every error as `application/problem+json` (RFC 9457).
 * 5xx errors are logged with their cause; their internal messages never reach the client.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function errorHandler(options: ErrorHandlerOptions = {}): ErrorRequestHandler {
  checkOptions('errorHandler', options, true).object('logger', 'a Logger', false, ['error']);
  const logger = options.logger ?? noopLogger;
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    setResponseError(res, error);
    const problem = problemFromError(error, requestPath(req));
    // A handler that marked the response logged elsewhere (login's busy refusals, which the
    // authenticator reports as one rate-limited WARN line) gets no error line per request.
    if (problem.status >= 500 && !isLoggedElsewhere(res)) {
      (requestEntryOf(res)?.logger ?? logger).error(
        {
          err: error,
          endpoint: routeTemplate(req) ?? requestPath(req),
          errorType: errorType(error),
        },
        error instanceof Error ? error.message : 'request failed',
      );
    }
    sendProblem(res, problem);
  };
}

/** Answers any request no route matched with a 404 problem. Mount it after every router. */
export function notFound(): RequestHandler {
  return (req, _res, next) => {
    next(new NotFoundError(`no route for ${req.method} ${requestPath(req)}`));
  };
}
