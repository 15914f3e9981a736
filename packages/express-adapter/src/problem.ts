import type { Response } from 'express';
import { AikbError, NotFoundError, RateLimitedError, ValidationError, VectorValidationError, type AikbErrorCode } from '@aikb/core';

/** An RFC 9457 problem details object, with aikb's extension members. */
export interface Problem {
  /** A URN naming the problem type, e.g. `urn:aikb:problem:invalid-argument`. */
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  /** The request path the problem occurred on. */
  readonly instance?: string;
  /** The offending field, for validation problems. */
  readonly field?: string;
  /** Seconds until a retry can succeed (429, some 503s); also sent as `Retry-After`. */
  readonly retryAfterSeconds?: number;
  readonly [extension: string]: unknown;
}

const STATUS: Record<AikbErrorCode, { status: number; title: string }> = {
  INVALID_ARGUMENT: { status: 400, title: 'Invalid request' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  PERMISSION_DENIED: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  ALREADY_EXISTS: { status: 409, title: 'Already exists' },
  FAILED_PRECONDITION: { status: 409, title: 'Conflict' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  UNPROCESSABLE_CONTENT: { status: 422, title: 'Unprocessable content' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  RESOURCE_EXHAUSTED: { status: 503, title: 'Overloaded' },
  UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  DEADLINE_EXCEEDED: { status: 504, title: 'Timed out' },
  INTERNAL: { status: 500, title: 'Internal error' },
};

/** The mapping of a code; an unknown one (from untyped code: `constructor`, ...) maps like `INTERNAL`. */
function entryFor(code: string): { status: number; title: string } {
  return Object.hasOwn(STATUS, code) ? STATUS[code as AikbErrorCode] : STATUS.INTERNAL;
}

/** The HTTP status an {@link AikbErrorCode} maps to. */
export function statusForCode(code: AikbErrorCode): number {
  return entryFor(code).status;
}

function typeFor(slug: string): string {
  return `urn:aikb:problem:${slug}`;
}

/**
 * What a 5xx problem says instead of its error's message when the error wraps a cause (a
 * dependency's failure, whose text the message may quote): a database or driver message
 * (`invalid byte sequence…`, a host name, a query) stays in the server log.
 */
const SERVER_DETAIL: Partial<Record<AikbErrorCode, string>> = {
  UNAVAILABLE: 'a service this request needs is unavailable; try again later',
  RESOURCE_EXHAUSTED: 'the server is overloaded; try again later',
  DEADLINE_EXCEEDED: 'the request took too long to complete',
};
const INTERNAL_DETAIL = 'an unexpected error occurred; the server log has the details';

/**
 * Errors from Express, its body parsers and the router carry a 4xx `status` (or `statusCode`):
 * a URIError for a malformed `%` escape in a path parameter, `entity.parse.failed`, ...
 */
interface HttpStatusError {
  type?: unknown;
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
}

const CLIENT_TITLE: Readonly<Record<number, string>> = {
  404: 'Not found',
  405: 'Method not allowed',
  413: 'Payload too large',
  415: 'Unsupported media type',
  431: 'Request header fields too large',
};
const PARSER_DETAIL: Readonly<Record<string, string>> = {
  'entity.parse.failed': 'the request body is not valid JSON',
  'entity.too.large': 'the request body is too large',
  'encoding.unsupported': 'the request body has an unsupported encoding',
  'charset.unsupported': 'the request body has an unsupported encoding',
};

function clientStatus(error: HttpStatusError): number | undefined {
  const status = typeof error.status === 'number' ? error.status : error.statusCode;
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status < 500 ? status : undefined;
}

/**
 * The extension members of a typed error, read from its typed fields: they win over `details`,
 * which only generic `AikbError`s (`ALREADY_EXISTS` with `field`, ...) rely on.
 */
function typedMembers(error: AikbError): Record<string, unknown> {
  if (error instanceof VectorValidationError) return { field: error.field, problem: error.problem };
  if (error instanceof ValidationError) return { field: error.field };
  if (error instanceof NotFoundError) {
    return { ...(error.key !== undefined ? { name: error.key } : {}), ...(error.similar !== undefined ? { similar: error.similar } : {}) };
  }
  if (error instanceof RateLimitedError) {
    const { retryAfterSeconds, limit, remaining, resetSeconds } = error;
    return {
      retryAfterSeconds,
      ...(limit !== undefined ? { limit } : {}),
      ...(remaining !== undefined ? { remaining } : {}),
      ...(resetSeconds !== undefined ? { resetSeconds } : {}),
    };
  }
  return {};
}

/**
 * Turns any thrown value into a problem. {@link AikbError}s keep their code, message and details
 * (a 5xx that wraps a cause gets a fixed detail instead: only words aikb wrote reach a client); any error carrying a 4xx
 * `status` or `statusCode` (body parsers, the router's URIError for `%ZZ` in a path) keeps that
 * status with a fixed detail; anything else is a 500 whose detail hides the internal message.
 */
export function problemFromError(error: unknown, instance?: string): Problem {
  if (error instanceof AikbError) {
    const { status, title } = entryFor(error.code);
    return {
      ...error.details,
      ...typedMembers(error),
      type: typeFor(error.code.toLowerCase().replaceAll('_', '-')),
      title,
      status,
      detail:
        status >= 500 && error.cause !== undefined
          ? ((Object.hasOwn(SERVER_DETAIL, error.code) ? SERVER_DETAIL[error.code] : undefined) ?? INTERNAL_DETAIL)
          : error.message,
      ...(instance ? { instance } : {}),
    };
  }
  const http = (typeof error === 'object' && error !== null ? error : {}) as HttpStatusError;
  const status = clientStatus(http);
  if (status !== undefined) {
    const parserType = typeof http.type === 'string' && Object.hasOwn(PARSER_DETAIL, http.type) ? http.type : undefined;
    const malformedUrl = error instanceof URIError;
    const detail = parserType
      ? PARSER_DETAIL[parserType]!
      : malformedUrl
        ? 'the URL contains a malformed percent-encoded sequence'
        : http.expose === true && typeof http.message === 'string'
          ? http.message
          : `the request could not be processed (HTTP ${status})`;
    const field = parserType || typeof http.type === 'string' ? 'body' : malformedUrl ? 'path' : undefined;
    return {
      type: typeFor(
        typeof http.type === 'string' && /^[\w.-]{1,64}$/.test(http.type) ? http.type.replaceAll('.', '-') : malformedUrl ? 'malformed-url' : `http-${status}`,
      ),
      title: CLIENT_TITLE[status] ?? 'Invalid request',
      status,
      detail,
      ...(field ? { field } : {}),
      ...(instance ? { instance } : {}),
    };
  }
  return {
    type: typeFor('internal'),
    title: 'Internal error',
    status: 500,
    detail: INTERNAL_DETAIL,
    ...(instance ? { instance } : {}),
  };
}

/** Sends a problem as `application/problem+json`, with `Retry-After` when it carries `retryAfterSeconds`. */
export function sendProblem(res: Response, problem: Problem): void {
  const retryAfter = problem.retryAfterSeconds;
  if (typeof retryAfter === 'number' && Number.isFinite(retryAfter)) {
    res.setHeader('Retry-After', String(Math.max(0, Math.ceil(retryAfter))));
  }
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}
