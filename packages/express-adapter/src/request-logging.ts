import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import type { RequestHandler, Response } from 'express';
import { noopLogger, type Logger } from '@aikb/core';
import { currentTraceId, errorType, scopeValue } from '@aikb/core/tracing';
import {
  isLoggedElsewhere,
  onResponseDone,
  requestContext,
  requestEntryOf,
  requestPath,
  responseError,
  routeTemplate,
  setRequestEntry,
  spanScopeOf,
  type RequestEntry,
} from './internal/request-state';
import { checkOptions } from '@aikb/core/options';

/** A logger that can make children carrying fixed fields (pino's `child` fits). */
export type ChildLoggerFactory = (bindings: Record<string, unknown>) => Logger;

/** {@link requestLogging} options. */
export interface RequestLoggingOptions {
  /** The parent logger. */
  logger?: Logger;
  /**
   * Makes the per-request logger.
   * @default `logger.child(bindings)` when the logger has `child`, else a wrapper adding the bindings to every line
   */
  child?: ChildLoggerFactory;
  /**
   * Request header whose value (1–128 characters of `A–Z a–z 0–9 . _ : -`) is reused as the request id.
   * @default 'X-Request-ID'
   */
  header?: string;
}

const SAFE_ID = /^[\w.:-]{1,128}$/;
/** Where the request's entry rides on its span scope (`tracing`). */
const REQUEST = Symbol('@aikb/express request');

/** A request's id and its child logger, made the first time a handler asks for it. */
class LazyRequestEntry implements RequestEntry {
  #logger: Logger | undefined;
  constructor(
    readonly requestId: string,
    readonly traceId: string | undefined,
    readonly make: ChildLoggerFactory,
  ) {}
  get logger(): Logger {
    return (this.#logger ??= this.make(this.traceId === undefined ? { requestId: this.requestId } : { requestId: this.requestId, traceId: this.traceId }));
  }
  /** The child if one was made, else `undefined`. */
  get made(): Logger | undefined {
    return this.#logger;
  }
}

function bindingLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  const withBindings = (level: keyof Logger) => (obj: object, msg?: string) => logger[level]({ ...bindings, ...obj }, msg);
  return { debug: withBindings('debug'), info: withBindings('info'), warn: withBindings('warn'), error: withBindings('error') };
}

/**
 * Gives every request an id (`X-Request-ID`, echoed back) and a child logger whose every line
 * carries `requestId` and `traceId` ({@link requestLogger}); logs one line per finished request
 * (`info`, `warn` for 4xx, `error` for 5xx naming the endpoint, error type and message; `debug`
 * for a response its handler accounts for in the logs itself, such as a login refused as busy),
 * carrying `requestId` and `traceId` too. Mount it after {@link tracing} so the trace id exists.
 *
 * The child logger is made the first time a handler asks for it: a request whose handlers never
 * log costs no child (making one serialises its bindings). Its own line is then written by the
 * parent logger with the same two fields.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 */
export function requestLogging(options: RequestLoggingOptions = {}): RequestHandler {
  const check = checkOptions('requestLogging', options, true);
  check.object('logger', 'a Logger', false, ['info', 'warn', 'error']);
  check.function('child');
  check.string('header');
  const parent = options.logger ?? noopLogger;
  const parentChild = (parent as Logger & { child?: ChildLoggerFactory }).child;
  const child: ChildLoggerFactory = options.child ?? (typeof parentChild === 'function' ? (b) => parentChild.call(parent, b) : (b) => bindingLogger(parent, b));
  const header = options.header ?? 'X-Request-ID';
  const headerKey = header.toLowerCase();
  return (req, res, next) => {
    const started = performance.now();
    const incoming = req.headers[headerKey];
    const requestId = typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : `req-${randomUUID()}`;
    res.setHeader(header, requestId);
    const entry = new LazyRequestEntry(requestId, currentTraceId(), child);
    setRequestEntry(res, entry);
    onResponseDone(res, () => {
      const status = res.statusCode;
      // A template, or the raw path cut short: a client picks the path, not the size of our log lines.
      const endpoint = routeTemplate(req) ?? requestPath(req);
      const durationMs = Math.round((performance.now() - started) * 100) / 100;
      // Through the child when a handler made one (it carries the ids), else the parent with them.
      const logger = entry.made ?? parent;
      const line: Record<string, unknown> =
        logger === parent
          ? { requestId, traceId: entry.traceId, method: req.method, endpoint, status, durationMs }
          : { method: req.method, endpoint, status, durationMs };
      if (isLoggedElsewhere(res)) {
        logger.debug(line, `${req.method} ${endpoint} ${status}`);
      } else if (status >= 500) {
        const error = responseError(res);
        const type = error === undefined ? `HTTP ${status}` : errorType(error);
        const message = messageOf(error);
        line.errorType = type;
        line.errorMessage = message;
        logger.error(line, `${req.method} ${endpoint} ${status}: ${type}${message ? `: ${message}` : ''}`);
      } else {
        logger[status >= 400 ? 'warn' : 'info'](line, `${req.method} ${endpoint} ${status}`);
      }
    });
    const scope = spanScopeOf(req);
    if (scope) {
      scope.set(REQUEST, entry);
      next();
    } else {
      requestContext.run(entry, next);
    }
  };
}

/**
 * The request being handled where this is called (through every await of its handlers), for a
 * logger mixin that stamps lines written by code that only holds the application's logger:
 * `{ requestId, logger }`, or `undefined` outside a request.
 */
export function currentRequest(): { readonly requestId: string; readonly logger: Logger } | undefined {
  return scopeValue<RequestEntry>(REQUEST) ?? requestContext.getStore();
}

/** The request's logger (with `requestId` and `traceId`), or `fallback` outside {@link requestLogging}. */
export function requestLogger(res: Response, fallback: Logger = noopLogger): Logger {
  return requestEntryOf(res)?.logger ?? fallback;
}

/** The request's id, as sent back in `X-Request-ID`. */
export function requestId(res: Response): string | undefined {
  return requestEntryOf(res)?.requestId;
}

/** A thrown value's message for the log line: an Error's own, anything else as `util.inspect` shows it (not `[object Object]`). */
function messageOf(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : inspect(error, { depth: 2, breakLength: Infinity });
}
