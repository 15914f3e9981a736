import type { Request, RequestHandler } from 'express';
import { ValidationError } from '@aikb/core';
import { readBody } from './read-body';
import { unstorableError, unstorableField } from './storable-input';
import { checkOptions } from '@aikb/core/options';

/** {@link jsonBody} options. */
export interface JsonBodyOptions {
  /**
   * Largest body accepted, in bytes, both as received and once decoded (`Content-Encoding`).
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
 * an operator in an emergency must not be told to fix a header. Every refusal is a problem+json:
 * 413 for a body over `limit` (received, or once inflated: a decompression bomb stops there),
 * 415 for a `Content-Encoding` other than identity, gzip, deflate or br, and 400 naming `body` for
 * one that does not decode or is not JSON, or naming the field whose string holds a character
 * PostgreSQL cannot store (NUL, an unpaired surrogate).
 *
 * Mount it where the body is needed, after authentication: nothing is read or inflated for a
 * request the guard refuses.
 *
 * @throws {TypeError} when `limit` is not a positive integer
 */
export function jsonBody(options: JsonBodyOptions = {}): RequestHandler {
  checkOptions('jsonBody', options, true);
  const limit = options.limit ?? 100 * 1024;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError(`jsonBody: limit must be a positive integer (got ${String(limit)})`);
  return async (req, res, next) => {
    if (req.body === undefined && hasBody(req) && !req.readableEnded) {
      const body = await readBody(req, limit, limit);
      if (body.kind === 'too-large' || body.kind === 'invalid') {
        if (!body.drained) res.setHeader('Connection', 'close');
        next(body.error);
        return;
      }
      if (body.kind === 'text') {
        try {
          req.body = JSON.parse(body.text) as unknown;
        } catch {
          const type = String(req.headers['content-type'] ?? 'no Content-Type').slice(0, 100);
          next(new ValidationError('body', `the request body is not valid JSON (it was sent as ${type})`));
          return;
        }
      }
    }
    const field = unstorableField(req.body);
    if (field !== undefined) {
      next(unstorableError(field));
      return;
    }
    next();
  };
}
