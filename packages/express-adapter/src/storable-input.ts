import type { RequestHandler } from 'express';
import { ValidationError } from '@aikb/core';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * True for a string PostgreSQL cannot store as text: it holds a NUL character (rejected by the
 * server) or an unpaired surrogate (not UTF-8: the driver would silently replace it).
 */
export function isUnstorable(value: string): boolean {
  return value.includes('\u0000') || LONE_SURROGATE.test(value);
}

function pathOf(parent: string | undefined, key: string | number): string {
  if (typeof key === 'number') return `${parent ?? 'body'}[${key}]`;
  return parent === undefined ? key : `${parent}.${key}`;
}

/**
 * The first field of a parsed JSON body (`email`, `keys[2]`, `a.b`; `body` for the root) holding a
 * string PostgreSQL cannot store, key or value; `undefined` when there is none. Walks without
 * recursion, so a deeply nested body cannot overflow the stack.
 */
export function unstorableField(value: unknown): string | undefined {
  const pending: Array<[unknown, string | undefined]> = [[value, undefined]];
  while (pending.length > 0) {
    const [item, path] = pending.pop()!;
    if (typeof item === 'string') {
      if (isUnstorable(item)) return path ?? 'body';
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) pending.push([item[i], pathOf(path, i)]);
    } else if (item !== null && typeof item === 'object') {
      const keys = Object.keys(item);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        if (isUnstorable(key)) return pathOf(path, key.replaceAll('\u0000', '\\u0000').replace(new RegExp(LONE_SURROGATE, 'g'), '\uFFFD').slice(0, 64));
        pending.push([(item as Record<string, unknown>)[key], pathOf(path, key)]);
      }
    }
  }
  return undefined;
}

/** The error for a field holding a string the database cannot store. */
export function unstorableError(field: string): ValidationError {
  return new ValidationError(field, `${field} must not contain NUL characters (\\u0000) or unpaired surrogates`);
}

const NUL = /%00/i;

/**
 * Answers 400 (naming `path`, or the query parameter) for a URL whose path or query holds a
 * percent-encoded NUL (`%00`): no route parameter or query value can carry a character that
 * PostgreSQL cannot store down to a store. Mount it before the routers.
 */
export function rejectNulInUrl(): RequestHandler {
  return (req, _res, next) => {
    const url = req.originalUrl ?? req.url ?? '';
    if (!NUL.test(url)) {
      next();
      return;
    }
    const at = url.indexOf('?');
    const path = at < 0 ? url : url.slice(0, at);
    if (NUL.test(path)) {
      next(new ValidationError('path', 'the URL path must not contain NUL characters (%00)'));
      return;
    }
    const parameter = url
      .slice(at + 1)
      .split('&')
      .find((pair) => NUL.test(pair));
    let name = (parameter ?? '').split('=')[0] ?? '';
    try {
      name = decodeURIComponent(name.replaceAll('+', ' '));
    } catch {
      // Keep the raw name.
    }
    name = name.replaceAll('\u0000', '').slice(0, 64);
    next(new ValidationError(name || 'query', `${name ? `the query parameter ${name}` : 'the query'} must not contain NUL characters (%00)`));
  };
}
