import type { Request, RequestHandler } from 'express';
import { ValidationError } from '@aikb/core';
import { readBody } from './read-body';

/** {@link jsonBody} options. */
export interface JsonBodyOptions {
  /**
   * Largest body accepted, in bytes.
   * @default 102400
   */
  limit?: number;
}

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * Parses the request body as JSON whatever its `Content-Type`, unless a body parser already did.
 *
 * The runbook's own commands (`curl -X POST ... -d '{"rolloutPercentage": 10}'` without
 * `-H "Content-Type: application/json"`) send JSON labelled `application/x-www-form-urlencoded`;
 * an operator in an emergency must not be told to fix a header. Anything that is not JSON is a 400
 * problem naming `body`.
 */
export function jsonBody(options: JsonBodyOptions = {}): RequestHandler {
  const limit = options.limit ?? 100 * 1024;
  return async (req, _res, next) => {
    if (req.body !== undefined || !hasBody(req) || req.readableEnded) {
      next();
      return;
    }
    const body = await readBody(req, limit, limit);
    if (body.kind === 'too-large') {
      next(new ValidationError('body', `the request body is larger than ${limit} bytes`));
      return;
    }
    if (body.kind === 'parsed') {
      next();
      return;
    }
    try {
      req.body = JSON.parse(body.text);
    } catch {
      const type = req.headers['content-type'] ?? 'no Content-Type';
      next(new ValidationError('body', `the request body is not valid JSON (it was sent as ${type})`));
      return;
    }
    next();
  };
}
