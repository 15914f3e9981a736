import type { Request, RequestHandler } from 'express';
import { AikbError, ValidationError } from '@aikb/core';
import { checkOptions } from '@aikb/core/options';
import { isBodyParsed, markBodyParsed } from './internal/request-state';
import { readBody } from './read-body';
import { unstorableError, unstorableField } from './storable-input';

/** The default of {@link JsonBodyOptions.limit}: 100 KiB. */
export const DEFAULT_JSON_BODY_LIMIT = 100 * 1024;

/** {@link jsonBody} options. */
export interface JsonBodyOptions {
  /**
   * Largest body accepted, in bytes, both as received and once decoded (`Content-Encoding`).
   * @default 102400
   */
  limit?: number;
  /**
   * Whether a request must carry a body: without one (no body, or zero bytes once decoded) it is
   * a 400 naming `body`. When false, such a request goes on with `req.body` undefined.
   * @default false
   */
  required?: boolean;
  /**
   * Also takes a body labelled `application/x-www-form-urlencoded` — what curl sends for
   * `-d '{"rolloutPercentage": 10}'` without `-H 'Content-Type: application/json'`, as the
   * runbook's own commands do — and parses it as JSON. A cross-site page can send that type
   * without a CORS preflight, so allow it only behind a bearer-token guard (`adminGuard`,
   * `requireUser`: a browser never attaches one cross-site), never on cookie-authenticated routes;
   * `loginHandler` never allows it.
   * @default true
   */
  allowFormUrlencoded?: boolean;
}

/** The rule resolved: what {@link readJsonBody} checks. */
export interface JsonBodyRule {
  readonly limit: number;
  /** Largest body drained (unread) before answering a refusal; beyond it the connection is closed. */
  readonly drainLimit: number;
  readonly required: boolean;
  readonly allowFormUrlencoded: boolean;
}

/** What {@link readJsonBody} found: the parsed value (`undefined`: no body), or the error to answer with. */
export type JsonBodyResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: AikbError; readonly drained: boolean };

const JSON_TYPE = /^application\/(?:[\w.!#$&^-]+\+)?json$/;

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** The 415 for a body whose `Content-Type` the rule does not take; `undefined` when it does. */
function contentTypeRefusal(header: string | undefined, allowFormUrlencoded: boolean): AikbError | undefined {
  const [essence = '', ...parameters] = (header ?? '').split(';');
  const type = essence.trim().toLowerCase();
  const shown = header === undefined ? 'no Content-Type' : `Content-Type: ${header.slice(0, 100)}`;
  if (!JSON_TYPE.test(type) && !(allowFormUrlencoded && type === 'application/x-www-form-urlencoded')) {
    return new AikbError('UNSUPPORTED_MEDIA_TYPE', `the request body must be JSON sent with Content-Type: application/json (got ${shown})`, {
      details: { field: 'Content-Type' },
    });
  }
  for (const parameter of parameters) {
    const [name = '', value = ''] = parameter.split('=');
    if (name.trim().toLowerCase() !== 'charset') continue;
    if (
      value
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toLowerCase() !== 'utf-8'
    ) {
      return new AikbError('UNSUPPORTED_MEDIA_TYPE', `the request body must be UTF-8: leave out the charset or send charset=utf-8 (got ${shown})`, {
        details: { field: 'Content-Type' },
      });
    }
  }
  return undefined;
}

function noBody(rule: JsonBodyRule): JsonBodyResult {
  return rule.required ? { ok: false, drained: true, error: new ValidationError('body', 'this request needs a JSON body') } : { ok: true, value: undefined };
}

/**
 * Reads and parses a request body by the one rule of this package (see {@link jsonBody}); never
 * rejects. A body already read — by this package's parser (into `req.body`), or consumed by
 * another one such as `express.json()` (the stream was read) — is taken from `req.body`, after the
 * same `Content-Type` check, without reading the stream again; the limit is then the first
 * parser's.
 */
export async function readJsonBody(req: Request, rule: JsonBodyRule): Promise<JsonBodyResult> {
  if (!hasBody(req)) return noBody(rule);
  const contentType = req.headers['content-type'];
  const ours = isBodyParsed(req);
  if (ours || req.readableDidRead || req.readableEnded) {
    // Another parser would have made something else of curl's form-labelled JSON: JSON types only.
    const refusal = contentTypeRefusal(contentType, ours && rule.allowFormUrlencoded);
    if (refusal) return { ok: false, drained: true, error: refusal };
    if (req.body !== undefined) return { ok: true, value: req.body };
    if (ours) return noBody(rule);
    return { ok: false, drained: true, error: new AikbError('INTERNAL', 'the request body was read by a middleware that left no req.body') };
  }
  const body = await readBody(req, rule.limit, rule.drainLimit, contentTypeRefusal(contentType, rule.allowFormUrlencoded));
  if (body.kind !== 'text') return { ok: false, drained: body.drained, error: body.error };
  if (body.text === '') return noBody(rule);
  try {
    return { ok: true, value: JSON.parse(body.text) };
  } catch {
    return { ok: false, drained: true, error: new ValidationError('body', 'the request body is not valid JSON') };
  }
}

/**
 * Parses the request body as JSON into `req.body`: the one body rule of every router of this
 * package that takes a body (`loginHandler`, `featureFlagsRouter`, `cacheRouter`, `usersRouter`,
 * `leakHuntRouter`), each with its own limit. No `express.json()` is needed in front; with one
 * there, its `req.body` is used and the stream is not read twice.
 *
 * - `Content-Type` must be `application/json` or `application/<anything>+json`, with no charset
 *   or `charset=utf-8` — or `application/x-www-form-urlencoded`, curl's label for `-d`, on the
 *   bearer-guarded routers (see {@link JsonBodyOptions.allowFormUrlencoded}; never on login).
 *   Anything else (`text/plain`, none, `charset=latin1`) is a 415 naming `Content-Type`,
 *   answered without decoding the body.
 * - `Content-Encoding` identity, gzip, deflate or br (one coding); another is a 415 naming
 *   `Content-Encoding`; one that does not decode is a 400 naming `body`.
 * - Over `limit` bytes, received or once inflated, is a 413 (a decompression bomb stops there).
 * - Not JSON is a 400 naming `body`; no body where {@link JsonBodyOptions.required} is a 400
 *   naming `body`; a string PostgreSQL cannot store (NUL, an unpaired surrogate) is a 400 naming
 *   its field.
 *
 * Every refusal is a problem+json, and changes nothing. Mount it where the body is needed, after
 * authentication: nothing is read or inflated for a request the guard refuses.
 *
 * @throws {TypeError} at construction, naming the option, when one is invalid
 * @example
 * ```ts
 * router.post('/notes', jsonBody({ limit: 16 * 1024, required: true }), (req, res) => { ... })
 * ```
 */
export function jsonBody(options: JsonBodyOptions = {}): RequestHandler {
  const check = checkOptions('jsonBody', options, true);
  check.number('limit', { min: 1, integer: true });
  check.boolean('required');
  check.boolean('allowFormUrlencoded');
  const limit = options.limit ?? DEFAULT_JSON_BODY_LIMIT;
  const rule: JsonBodyRule = { limit, drainLimit: limit, required: options.required ?? false, allowFormUrlencoded: options.allowFormUrlencoded ?? true };
  return async (req, res, next) => {
    const parsed = isBodyParsed(req);
    const body = await readJsonBody(req, rule);
    if (!body.ok) {
      if (!body.drained) res.setHeader('Connection', 'close');
      next(body.error);
      return;
    }
    // Parsed here before (another router's parser on the way): checked then already.
    if (!parsed) {
      const field = unstorableField(body.value);
      if (field !== undefined) {
        next(unstorableError(field));
        return;
      }
      req.body = body.value;
      markBodyParsed(req);
    }
    next();
  };
}
