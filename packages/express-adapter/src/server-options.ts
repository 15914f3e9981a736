import { IncomingMessage, ServerResponse, type ServerOptions } from 'node:http';
import type { Express } from 'express';

/** What {@link expressServerOptions} returns: the two classes of `node:http`'s `ServerOptions`. */
export type ExpressServerOptions = Required<Pick<ServerOptions, 'IncomingMessage' | 'ServerResponse'>>;

/**
 * `IncomingMessage` and `ServerResponse` classes for `node:http`'s `createServer` whose objects are
 * born with `app`'s request and response prototypes (`app.request`, `app.response`), so that each
 * request skips the prototype swap Express does on entry.
 *
 * Why it matters: Express gives every request and response its own prototype with
 * `Object.setPrototypeOf`. After that, V8 builds a new hidden class for that one object at each
 * property it gains (Express's `res.locals`, `req.baseUrl`, `req.params`, `req.route`, a
 * middleware's own), copying its property table each time, and every access to those objects
 * misses the inline caches. On the machine of `npm run bench:http` that was about half of bare
 * Express's CPU per request for a cheap handler. When the objects already have the prototype,
 * Express's `setPrototypeOf` changes nothing and the objects keep shared hidden classes.
 *
 * Behaviour is unchanged: `req` and `res` are the objects Express would have made (same
 * prototypes, `instanceof IncomingMessage` / `ServerResponse` still true). Only requests handled
 * first by `app` benefit; a sub-app mounted under it re-prototypes its requests as usual.
 *
 * @throws {TypeError} when `app` is not an Express application (no `request` / `response` prototypes)
 * @example
 * ```ts
 * const app = express()
 * const server = http.createServer({ ...expressServerOptions(app), requestTimeout: 30_000 }, app)
 * server.listen(3000)
 * ```
 */
export function expressServerOptions(app: Express): ExpressServerOptions {
  const request: unknown = (app as { request?: unknown } | undefined)?.request;
  const response: unknown = (app as { response?: unknown } | undefined)?.response;
  if (!(request instanceof IncomingMessage) || !(response instanceof ServerResponse)) {
    throw new TypeError('expressServerOptions: app must be an Express application (express()), with its request and response prototypes');
  }
  return {
    IncomingMessage: bornWith(IncomingMessage, request) as unknown as typeof IncomingMessage,
    ServerResponse: bornWith(ServerResponse, response) as unknown as typeof ServerResponse,
  };
}

/**
 * A constructor whose objects `base` makes and whose prototype is `prototype`. A function, not a
 * class: a class's `prototype` cannot be replaced. The way to run `base` is chosen here, once: a
 * plain function constructor (Node's own, today) runs on the new object with `call`, as Node's
 * subclasses do; a class cannot be called, so it is constructed with `Reflect.construct` and this
 * function as `new.target`, which measured twice as slow per object. Two arguments at most
 * (`IncomingMessage(socket)`, `ServerResponse(req, options)`), so no array per call on the first path.
 *
 * @internal exported for its tests
 */
export function bornWith<T extends object>(base: abstract new (...args: never[]) => T, prototype: T): new (...args: never[]) => T {
  let born: (this: T, a?: unknown, b?: unknown) => T | void;
  if (isClass(base)) {
    born = function (a?: unknown, b?: unknown) {
      return Reflect.construct(base, [a, b], born) as T;
    };
  } else {
    const run = base as unknown as (this: T, a?: unknown, b?: unknown) => void;
    born = function (this: T, a?: unknown, b?: unknown) {
      run.call(this, a, b);
    };
  }
  born.prototype = prototype;
  return born as unknown as new (...args: never[]) => T;
}

const isClass = (fn: unknown) => typeof fn === 'function' && /^class\b/.test(Function.prototype.toString.call(fn));
