import { AsyncLocalStorage } from 'node:async_hooks';
import type { Request, Response } from 'express';
import type { Logger } from '@aikb/core';

// Per-request state shared by the middleware of this package, kept off `req`/`res` themselves.
const errors = new WeakMap<Response, unknown>();
const loggers = new WeakMap<Response, { logger: Logger; requestId: string }>();
const templates = new WeakMap<Request, string>();
const loggedElsewhere = new WeakSet<Response>();

/** Remembers the error a request failed with (the error handler calls this). */
export function setResponseError(res: Response, error: unknown): void {
  errors.set(res, error);
}

/** The error the request failed with, if the error handler saw one. */
export function responseError(res: Response): unknown {
  return errors.get(res);
}

/**
 * Marks a response whose outcome its handler has already accounted for in the logs (a login
 * refused as busy: the authenticator logs those as one rate-limited line), so the per-request line
 * is written at `debug` instead of `error`: a flood must not become a flood of error lines.
 */
export function setLoggedElsewhere(res: Response): void {
  loggedElsewhere.add(res);
}

export function isLoggedElsewhere(res: Response): boolean {
  return loggedElsewhere.has(res);
}

/** The request being handled, through every await of its handlers. */
export const requestContext = new AsyncLocalStorage<{ logger: Logger; requestId: string }>();

export function setRequestLogger(res: Response, logger: Logger, requestId: string): void {
  loggers.set(res, { logger, requestId });
}

export function requestLoggerEntry(res: Response): { logger: Logger; requestId: string } | undefined {
  return loggers.get(res);
}

/**
 * Makes the matched route template (`/api/documents/:id`, router prefixes included) readable
 * after the response: Express sets `req.route` when a route matches, while `req.baseUrl` still
 * holds the routers' prefix, and resets `baseUrl` when an error leaves the router.
 */
export function trackRoute(req: Request): void {
  if (Object.getOwnPropertyDescriptor(req, 'route')?.set) return;
  let route: unknown = (req as { route?: unknown }).route;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set(value: { path?: unknown } | undefined) {
      route = value;
      if (value && typeof value.path === 'string') {
        const template = `${req.baseUrl}${value.path}`;
        templates.set(req, template.length > 1 && template.endsWith('/') ? template.slice(0, -1) : template);
      }
    },
  });
}

/** The route template the request matched, or `undefined` when no route did (a 404). */
export function routeTemplate(req: Request): string | undefined {
  return templates.get(req);
}
