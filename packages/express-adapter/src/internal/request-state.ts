import { AsyncLocalStorage } from 'node:async_hooks';
import type { Request, Response } from 'express';
import type { Logger } from '@aikb/core';
import type { VerifiedSession } from '@aikb/core/auth';
import type { SpanScope } from '@aikb/core/tracing';

// Per-request state shared by the middleware of this package: one object per request, in a
// WeakMap keyed by the request (a response finds it through `res.req`, which Node sets). Not a
// property of `req` or `res`: Express re-prototypes both on every request
// (`Object.setPrototypeOf`), after which each property added to one of them makes V8 build a new
// hidden class for that one object, about 2 µs a property on the machine of bench:http; a WeakMap
// insertion costs a tenth of that.
const states = new WeakMap<object, RequestState & ResponseState>();

interface RequestState {
  identity?: Identity;
  bodyParsed?: boolean;
  /** The route template once the response is done; `null`: none. */
  template?: string | null;
  /** The request's span scope, when `tracing` runs it in one. */
  scope?: SpanScope;
}

interface ResponseState {
  error?: unknown;
  loggedElsewhere?: boolean;
  logger?: RequestEntry;
  done?: DoneHook[];
}

function stateOf(key: object): RequestState & ResponseState {
  let state = states.get(key);
  if (state === undefined) {
    state = {};
    states.set(key, state);
  }
  return state;
}

function stateOfRequest(req: Request): RequestState {
  return stateOf(req);
}

/** The request's state; a response without its request (`res.req`, set by Node) keeps its own. */
function stateOfResponse(res: Response): ResponseState {
  return stateOf((res as { req?: object }).req ?? res);
}

/**
 * Who a guard let in: the credential it accepted, and for a user token the verified session (its
 * claims with the user's current roles, and the `Principal` they make).
 */
export type Identity = { readonly credential: 'admin-token' } | { readonly credential: 'user-token'; readonly session: VerifiedSession };

/** Records who a guard let in (`adminGuard`, `requireUser`); read with {@link identityOf}. */
export function setIdentity(req: Request, identity: Identity): void {
  stateOfRequest(req).identity = identity;
}

/** Who a guard let in, `undefined` before one ran. */
export function identityOf(req: Request): Identity | undefined {
  return stateOfRequest(req).identity;
}

/** Marks a request whose body this package's parser has read and checked (into `req.body`). */
export function markBodyParsed(req: Request): void {
  stateOfRequest(req).bodyParsed = true;
}

/** Whether this package's parser already read and checked the request's body. */
export function isBodyParsed(req: Request): boolean {
  return stateOfRequest(req).bodyParsed === true;
}

/** Remembers the error a request failed with (the error handler calls this). */
export function setResponseError(res: Response, error: unknown): void {
  stateOfResponse(res).error = error;
}

/** The error the request failed with, if the error handler saw one. */
export function responseError(res: Response): unknown {
  return stateOfResponse(res).error;
}

/**
 * Marks a response whose outcome its handler has already accounted for in the logs (a login
 * refused as busy: the authenticator logs those as one rate-limited line), so the per-request line
 * is written at `debug` instead of `error`: a flood must not become a flood of error lines.
 */
export function setLoggedElsewhere(res: Response): void {
  stateOfResponse(res).loggedElsewhere = true;
}

export function isLoggedElsewhere(res: Response): boolean {
  return stateOfResponse(res).loggedElsewhere === true;
}

/** Records the span scope `tracing` runs the request in. */
export function setSpanScope(req: Request, scope: SpanScope): void {
  stateOfRequest(req).scope = scope;
}

/** The span scope `tracing` runs the request in, if it does. */
export function spanScopeOf(req: Request): SpanScope | undefined {
  return stateOfRequest(req).scope;
}

/** What `requestLogging` knows of a request: its id, and its logger (made when first asked for). */
export interface RequestEntry {
  readonly requestId: string;
  readonly logger: Logger;
}

/**
 * The request being handled, through every await of its handlers, for requests `tracing` does not
 * run in a span scope (which carries it otherwise: one AsyncLocalStorage fewer in use, and each one
 * costs every promise the process creates).
 */
export const requestContext = new AsyncLocalStorage<RequestEntry>();

export function setRequestEntry(res: Response, entry: RequestEntry): void {
  stateOfResponse(res).logger = entry;
}

export function requestEntryOf(res: Response): RequestEntry | undefined {
  return stateOfResponse(res).logger;
}

/** The most characters of a raw request path written to a log line or a problem. */
export const MAX_LOGGED_PATH = 200;

/**
 * The request's path (no query) for logs and problems, cut at {@link MAX_LOGGED_PATH} characters:
 * a client chooses it, so it must not choose how big our log lines are.
 */
export function requestPath(req: Request): string {
  const url = req.originalUrl ?? req.url ?? '';
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  return path.length > MAX_LOGGED_PATH ? `${path.slice(0, MAX_LOGGED_PATH)}…` : path;
}

interface DoneHook {
  readonly fn: () => void;
  readonly onAbort: boolean;
}

/**
 * Runs `fn` once the response is done: handed to the connection, or, with `onAbort`, also when
 * the connection closed before that. The middleware of this package (tracing, request logs, HTTP
 * metrics) each register here, in order, so a response gets one listener whatever their number:
 * listener bookkeeping showed up on every request in bench:http. The listener is `close`, which a
 * response emits once in either case (just after `finish` when it was sent), and
 * `writableFinished` tells the two apart.
 */
export function onResponseDone(res: Response, fn: () => void, options: { onAbort?: boolean } = {}): void {
  const hook = { fn, onAbort: options.onAbort === true };
  const state = stateOfResponse(res);
  if (state.done) {
    state.done.push(hook);
    return;
  }
  const list = [hook];
  state.done = list;
  res.on('close', () => {
    const aborted = !res.writableFinished;
    for (const { fn: run, onAbort } of list) if (!aborted || onAbort) run();
  });
}

// The router's own structures (router 2.x, express 5), as far as they are read here.
interface Match {
  readonly path: string;
  readonly pattern?: unknown;
}
interface Layer {
  readonly handle?: unknown;
  readonly route?: { readonly path?: unknown };
  readonly rawPath?: unknown;
  match(path: string): Match | false;
}
type Chain = readonly Layer[];
interface App {
  readonly router?: { readonly stack?: unknown };
  readonly mountpath?: unknown;
  readonly parent?: App;
}

/** Per app: every chain of layers (mounts, then the route's own layer) that ends at each Route object. */
const indexes = new WeakMap<object, Map<object, Chain[]>>();
/** Routes a fresh walk of their app already failed to find (e.g. inside a mounted sub-app): walk once. */
const unreachable = new WeakSet<object>();
const MAX_DEPTH = 32;

function stackOf(value: unknown): Layer[] | undefined {
  const stack = (value as { stack?: unknown } | null | undefined)?.stack;
  return Array.isArray(stack) ? (stack as Layer[]) : undefined;
}

function index(app: App): Map<object, Chain[]> {
  const routes = new Map<object, Chain[]>();
  const walk = (stack: Layer[], prefix: Chain, depth: number) => {
    for (const layer of stack) {
      if (layer.route && typeof layer.route === 'object') {
        const chains = routes.get(layer.route) ?? [];
        chains.push([...prefix, layer]);
        routes.set(layer.route, chains);
        continue;
      }
      const inner = typeof layer.handle === 'function' ? stackOf(layer.handle) : undefined;
      if (inner && depth < MAX_DEPTH) walk(inner, [...prefix, layer], depth + 1);
    }
  };
  walk(stackOf(app.router) ?? [], [], 0);
  indexes.set(app, routes);
  return routes;
}

function piece(pattern: unknown): string {
  const first: unknown = Array.isArray(pattern) ? pattern[0] : pattern;
  return typeof first === 'string' ? first : String(first);
}

function join(pieces: readonly string[]): string {
  const template = pieces.map((p) => (p.endsWith('/') ? p.slice(0, -1) : p)).join('');
  return template === '' ? '/' : template;
}

/** The template the chain matches `path` with, piece by piece as the router matched it; undefined when it does not. */
function matchChain(chain: Chain, path: string): string | undefined {
  const pieces: string[] = [];
  let rest = path;
  for (const layer of chain) {
    let match: Match | false;
    try {
      match = layer.match(rest);
    } catch {
      return undefined;
    }
    // Anything but router 2.x's { path, pattern } (another router): fall back to the declared paths.
    if (!match || typeof match !== 'object' || typeof match.path !== 'string') return undefined;
    pieces.push(piece(match.pattern ?? layer.rawPath));
    rest = rest.slice(match.path.length);
    if (!rest.startsWith('/')) rest = `/${rest}`;
  }
  return join(pieces);
}

function mountPrefix(app: App): string {
  let prefix = '';
  for (let at: App | undefined = app, depth = 0; at?.parent && depth < MAX_DEPTH; at = at.parent, depth++) {
    prefix = join([piece(at.mountpath), prefix]);
  }
  return prefix === '/' ? '' : prefix;
}

const fixedTemplates = new WeakMap<Chain, string>();

function fixedTemplate(prefix: string, chain: Chain): string {
  let template = fixedTemplates.get(chain);
  if (template === undefined) {
    template = join(chain.map((layer) => piece(layer.route ? layer.route.path : layer.rawPath)));
    fixedTemplates.set(chain, template);
  }
  return prefix ? join([prefix, template]) : template;
}

function computeTemplate(req: Request): string | undefined {
  const route = (req as { route?: unknown }).route as { path?: unknown } | undefined;
  if (!route || typeof route !== 'object') return undefined;
  const app = (req as { app?: App }).app;
  let chains: Chain[] | undefined;
  if (app) {
    chains = indexes.get(app)?.get(route);
    if (!chains && !unreachable.has(route)) {
      chains = index(app).get(route);
      if (!chains) unreachable.add(route);
    }
  }
  const prefix = app ? mountPrefix(app) : '';
  if (chains && chains.length > 0) {
    // One way to the route, with no alternative paths on it: its template is fixed, so no
    // matching per request.
    if (chains.length === 1 && !chains[0]!.some((layer) => Array.isArray(layer.rawPath))) return fixedTemplate(prefix, chains[0]!);
    if (!prefix) {
      const path = (req.originalUrl ?? req.url ?? '/').split('?')[0] ?? '/';
      for (const chain of chains) {
        const template = matchChain(chain, path);
        if (template !== undefined) return template;
      }
    }
    return join([prefix, ...chains[0]!.map((layer) => piece(layer.route ? layer.route.path : layer.rawPath))]);
  }
  // A route the walk cannot see: its own template, without the (unknown) mount path.
  return join([prefix, piece(route.path)]);
}

/**
 * The route template the request matched (`/api/documents/:id`, router prefixes included), or
 * `undefined` when no route did (a 404).
 *
 * Built only from what the application declared, never from the URL: the mount paths and the
 * route's path as written in the code, found by walking the app's router from the matched Route
 * object (a finite set), and picked piece by piece with the router's own matchers when one Route
 * is reachable through several mounts. However a client cases, slashes or encodes the URL, the
 * result is one of the app's templates, so metric labels stay bounded by construction.
 */
export function routeTemplate(req: Request): string | undefined {
  const known = stateOfRequest(req).template;
  if (known !== undefined) return known ?? undefined;
  let template: string | undefined;
  try {
    template = computeTemplate(req);
  } catch {
    // Read in 'finish' listeners, where a throw would end the process: unmatched rather than that.
    template = undefined;
  }
  // Computed once the response is done: later middleware cannot change what was matched.
  if (req.res?.headersSent || req.res?.writableEnded) stateOfRequest(req).template = template ?? null;
  return template;
}
