import type { Response } from 'express';
import { AikbError, type AikbErrorCode } from '@aikb/core';

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
  readonly [extension: string]: unknown;
}

const STATUS: Record<AikbErrorCode, { status: number; title: string }> = {
  INVALID_ARGUMENT: { status: 400, title: 'Invalid request' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  PERMISSION_DENIED: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  ALREADY_EXISTS: { status: 409, title: 'Already exists' },
  FAILED_PRECONDITION: { status: 409, title: 'Conflict' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  RESOURCE_EXHAUSTED: { status: 503, title: 'Overloaded' },
  UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  DEADLINE_EXCEEDED: { status: 504, title: 'Timed out' },
  INTERNAL: { status: 500, title: 'Internal error' },
};

/** The HTTP status an {@link AikbErrorCode} maps to. */
export function statusForCode(code: AikbErrorCode): number {
  return STATUS[code]?.status ?? 500;
}

function typeFor(slug: string): string {
  return `urn:aikb:problem:${slug}`;
}

/** Errors thrown by Express's own body parsers carry a `type` and a `status`. */
interface HttpParserError {
  type?: string;
  status?: number;
  expose?: boolean;
  message?: string;
}

/**
 * Turns any thrown value into a problem. {@link AikbError}s keep their code, message and details;
 * body-parser errors become 400/413/415; anything else is a 500 whose detail hides the internal
 * message.
 */
export function problemFromError(error: unknown, instance?: string): Problem {
  if (error instanceof AikbError) {
    const { status, title } = STATUS[error.code] ?? STATUS.INTERNAL;
    return {
      ...error.details,
      type: typeFor(error.code.toLowerCase().replaceAll('_', '-')),
      title,
      status,
      detail: error.message,
      ...(instance ? { instance } : {}),
    };
  }
  const parser = error as HttpParserError;
  if (parser && typeof parser.type === 'string' && typeof parser.status === 'number' && parser.status < 500) {
    const detail =
      parser.type === 'entity.parse.failed'
        ? 'the request body is not valid JSON'
        : parser.type === 'entity.too.large'
          ? 'the request body is too large'
          : parser.type === 'encoding.unsupported' || parser.type === 'charset.unsupported'
            ? 'the request body has an unsupported encoding'
            : (parser.message ?? 'the request body could not be read');
    return {
      type: typeFor(parser.type.replaceAll('.', '-')),
      title: parser.status === 413 ? 'Payload too large' : 'Invalid request',
      status: parser.status,
      detail,
      field: 'body',
      ...(instance ? { instance } : {}),
    };
  }
  return {
    type: typeFor('internal'),
    title: 'Internal error',
    status: 500,
    detail: 'an unexpected error occurred; the server log has the details',
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
