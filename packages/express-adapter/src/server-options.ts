import { IncomingMessage, ServerResponse, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
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
  // Function constructors, not classes: a class's `prototype` cannot be replaced. Node's own
  // constructors are plain functions, run on the new object with `call` (as Node's subclasses do);
  // `Reflect.construct` would do the same for a class, but it measured twice as slow per request.
  const callable = !isClass(IncomingMessage) && !isClass(ServerResponse);
  function AppRequest(this: IncomingMessage, socket: Socket): IncomingMessage | void {
    if (!callable) return Reflect.construct(IncomingMessage, [socket], AppRequest) as IncomingMessage;
    (IncomingMessage as unknown as (this: IncomingMessage, socket: Socket) => void).call(this, socket);
  }
  AppRequest.prototype = request;
  function AppResponse(this: ServerResponse, req: IncomingMessage, options?: unknown): ServerResponse | void {
    if (!callable) return Reflect.construct(ServerResponse, [req, options], AppResponse) as ServerResponse;
    (ServerResponse as unknown as (this: ServerResponse, req: IncomingMessage, options?: unknown) => void).call(this, req, options);
  }
  AppResponse.prototype = response;
  return {
    IncomingMessage: AppRequest as unknown as typeof IncomingMessage,
    ServerResponse: AppResponse as unknown as typeof ServerResponse,
  };
}

const isClass = (fn: unknown) => typeof fn === 'function' && /^class\b/.test(Function.prototype.toString.call(fn));
