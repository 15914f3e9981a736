/**
 * The codes an {@link AikbError} can carry. Callers branch on `code`, never on the message.
 *
 * HTTP adapters map them to status codes (`INVALID_ARGUMENT` → 400, `NOT_FOUND` → 404,
 * `PAYLOAD_TOO_LARGE` → 413, `UNAVAILABLE` → 503, ...); core itself knows nothing about HTTP.
 */
export type AikbErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'RATE_LIMITED'
  /** The input is larger than the operation accepts (HTTP 413). */
  | 'PAYLOAD_TOO_LARGE'
  /** The input's format or encoding is not one the operation reads (HTTP 415). */
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** The input is well-formed and of an accepted type, but its content cannot be used (HTTP 422): a PDF without a text layer. */
  | 'UNPROCESSABLE_CONTENT'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'FAILED_PRECONDITION'
  | 'INTERNAL';

/** Options accepted by every {@link AikbError} constructor. */
export interface AikbErrorOptions {
  /** The underlying error, kept for logs; never shown to HTTP clients. */
  cause?: unknown;
  /** Structured, client-safe details (for example the offending `field`). */
  details?: Readonly<Record<string, unknown>>;
}

/** The brand key: `Symbol.for`, so every copy of core shares it. */
const BRAND = Symbol.for('@aikb/core.AikbError');

/** The class names from `target` up to `AikbError`, frozen. */
function classNames(target: abstract new (...args: never[]) => unknown): readonly string[] {
  const names: string[] = [];
  for (let c: unknown = target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) names.push((c as { name: string }).name);
  return Object.freeze(names);
}

/**
 * The one error base of aikb. Every error a primitive throws on purpose is an `AikbError`
 * with a string-literal {@link AikbErrorCode}; subclasses exist only where callers need
 * `instanceof` or typed fields ({@link ValidationError}, {@link NotFoundError},
 * {@link RateLimitedError}, {@link UnavailableError}).
 *
 * ## Adding a typed error (for example `SagaCompensationError`, `VectorValidationError`)
 * 1. Subclass `AikbError` here, passing the code to `super` (reuse an {@link AikbErrorCode}; add
 *    one only for a new HTTP status, and map it in the Express adapter's `problem.ts`).
 * 2. Give it `readonly` typed fields for what a caller branches on or a client may see, set in
 *    the constructor from an `XErrorOptions extends AikbErrorOptions` type. Also pass the
 *    client-safe ones as `details` so code that reads the untyped bag keeps working.
 * 3. Export it (and its options type) from `index.ts`; if it has client-visible fields, add a
 *    branch to `problemFromError` that reads the typed fields (no casts).
 *
 * `this.name` is the subclass name, which is what logs, spans and the error metrics show.
 * `instanceof` works across copies of core (its ESM and CJS builds loaded side by side, or two
 * installed versions): every instance is branded with its class names under a `Symbol.for` key,
 * which `instanceof` also accepts, so subclass names must stay unique.
 *
 * @example
 * ```ts
 * try { await store.update(name, patch) }
 * catch (err) { if (err instanceof AikbError && err.code === 'NOT_FOUND') ... }
 * ```
 */
export class AikbError extends Error {
  /** Machine-readable code. */
  readonly code: AikbErrorCode;
  /**
   * Client-safe structured details. Subclasses copy their client-safe typed fields here too;
   * read the typed fields where there are some.
   */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: AikbErrorCode, message: string, options: AikbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
    Object.defineProperty(this, BRAND, { value: classNames(new.target) });
  }

  /** `instanceof` by prototype, or by brand for an error from another copy of core (ESM beside CJS). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (typeof value !== 'object' || value === null) return false;
    const names: unknown = (value as { [BRAND]?: unknown })[BRAND];
    return Array.isArray(names) && names.includes(this.name);
  }
}

/**
 * Input that fails validation. `field` names the offending field (a JSON-pointer-like path
 * such as `rolloutPercentage` or `keys[2]`) so an HTTP adapter can say exactly what is wrong.
 */
export class ValidationError extends AikbError {
  /** The field that failed validation. */
  readonly field: string;

  constructor(field: string, message: string, options: AikbErrorOptions = {}) {
    super('INVALID_ARGUMENT', message, { ...options, details: { field, ...options.details } });
    this.field = field;
  }
}

/** What a {@link VectorValidationError} found wrong with a search input. */
export type VectorProblem =
  /** Not an array of numbers at all. */
  | 'not_an_array'
  /** The array's length is not the configured dimension D. */
  | 'wrong_dimension'
  /** An element is not a number (a string, `null`, a nested array, ...). */
  | 'not_a_number'
  /** An element is NaN, ±Infinity (`1e999` in JSON) or too large for pgvector's float32. */
  | 'not_finite'
  /** Every element is zero: cosine distance to it is NaN, so any order would be returned. */
  | 'zero_vector'
  /** `k` is not a whole number in the allowed range. */
  | 'bad_k'
  /** The query text is missing where needed, not a string or too long. */
  | 'bad_query'
  /** Another request member (mode, principal, ...) is invalid. */
  | 'bad_request';

/** {@link VectorValidationError} options. */
export interface VectorValidationErrorOptions extends AikbErrorOptions {
  /** What is wrong (also in `details.problem`). */
  problem: VectorProblem;
}

/**
 * A search input that must not reach SQL (`INVALID_ARGUMENT`, HTTP 400): a query vector of the
 * wrong dimension, with a non-finite or non-numeric element, all zeros, or a `k` / query text out
 * of bounds. {@link VectorValidationError.problem} says which, {@link ValidationError.field} where
 * (`vector[3]`, `k`, `query`).
 */
export class VectorValidationError extends ValidationError {
  /** What is wrong. */
  readonly problem: VectorProblem;

  constructor(field: string, message: string, options: VectorValidationErrorOptions) {
    const { problem, ...rest } = options;
    super(field, message, { ...rest, details: { problem, ...rest.details } });
    this.problem = problem;
  }
}

/** A dependency (database, Redis, ...) could not be reached; the operation changed nothing. */
export class UnavailableError extends AikbError {
  constructor(message: string, options: AikbErrorOptions = {}) {
    super('UNAVAILABLE', message, options);
  }
}

/** {@link NotFoundError} options. */
export interface NotFoundErrorOptions extends AikbErrorOptions {
  /** The name or id looked up, when it may be shown to the client (HTTP: the `name` member). */
  key?: string;
  /** Existing names close to {@link key} (see {@link similarNames}); HTTP: the `similar` member. */
  similar?: readonly string[];
}

/**
 * The thing asked for does not exist (`NOT_FOUND`, HTTP 404). When it was looked up by name,
 * {@link NotFoundError.key} is that name and {@link NotFoundError.similar} the existing names that
 * start with it ("did you mean"), built with {@link NotFoundError.named}.
 */
export class NotFoundError extends AikbError {
  /** The name or id looked up, when the client may see it. */
  readonly key: string | undefined;
  /** Existing names close to `key`; `undefined` when none were looked for. */
  readonly similar: readonly string[] | undefined;

  constructor(message: string, options: NotFoundErrorOptions = {}) {
    const { key, similar, ...rest } = options;
    super('NOT_FOUND', message, {
      ...rest,
      details: { ...(key !== undefined ? { name: key } : {}), ...(similar !== undefined ? { similar: [...similar] } : {}), ...rest.details },
    });
    this.key = key;
    this.similar = similar === undefined ? undefined : Object.freeze([...similar]);
  }

  /**
   * The "no X named N, did you mean" error, the one wording every primitive uses: `similar` is
   * {@link similarNames} of `name` among `candidates`.
   *
   * @param kind what was looked up, singular (`flag`)
   * @param hint appended to the message (`nothing was changed`)
   * @example
   * ```ts
   * throw NotFoundError.named('flag', 'priority_2', (await store.list()).map((f) => f.name))
   * // message: no flag named priority_2; flags starting with "priority_2": priority_2_1_saga_pattern
   * ```
   */
  static named(kind: string, name: string, candidates: Iterable<string>, options: SimilarNamesOptions & { hint?: string } = {}): NotFoundError {
    const { hint, ...similarOptions } = options;
    const similar = similarNames(name, candidates, similarOptions);
    const message =
      similar.length === 0
        ? `no ${kind} named ${name}, and no ${kind} name starts with "${name}"`
        : `no ${kind} named ${name}; ${kind}s starting with "${name}": ${similar.join(', ')}`;
    return new NotFoundError(hint === undefined ? message : `${message}; ${hint}`, { key: name, similar });
  }
}

/** {@link RateLimitedError} options: the figures a client needs to back off. */
export interface RateLimitedErrorOptions extends AikbErrorOptions {
  /**
   * Seconds until a retry can succeed (HTTP: `Retry-After` and the `retryAfterSeconds` member).
   * Seconds, not milliseconds, because HTTP's `Retry-After` and `RateLimit-Reset` count whole seconds.
   */
  retryAfterSeconds: number;
  /** Attempts allowed per window (HTTP: `RateLimit-Limit`). */
  limit?: number;
  /** Attempts left in the window (HTTP: `RateLimit-Remaining`). */
  remaining?: number;
  /** Seconds until the window resets (HTTP: `RateLimit-Reset`). */
  resetSeconds?: number;
}

/** Too many attempts (`RATE_LIMITED`, HTTP 429); the fields say when to come back. */
export class RateLimitedError extends AikbError {
  /** Seconds until a retry can succeed. */
  readonly retryAfterSeconds: number;
  /** Attempts allowed per window, when known. */
  readonly limit: number | undefined;
  /** Attempts left in the window, when known. */
  readonly remaining: number | undefined;
  /** Seconds until the window resets, when known. */
  readonly resetSeconds: number | undefined;

  constructor(message: string, options: RateLimitedErrorOptions) {
    const { retryAfterSeconds, limit, remaining, resetSeconds, ...rest } = options;
    super('RATE_LIMITED', message, {
      ...rest,
      details: {
        retryAfterSeconds,
        ...(limit !== undefined ? { limit } : {}),
        ...(remaining !== undefined ? { remaining } : {}),
        ...(resetSeconds !== undefined ? { resetSeconds } : {}),
        ...rest.details,
      },
    });
    this.retryAfterSeconds = retryAfterSeconds;
    this.limit = limit;
    this.remaining = remaining;
    this.resetSeconds = resetSeconds;
  }

  /**
   * The typed view of a `RATE_LIMITED` error: `error` itself when it is a `RateLimitedError`,
   * else one read from the `details` of a generic `AikbError('RATE_LIMITED', …)` (as a
   * hand-written limiter may throw), its numeric members only; `retryAfterSeconds` defaults to 1.
   */
  static from(error: AikbError): RateLimitedError {
    if (error instanceof RateLimitedError) return error;
    const number = (key: string): number | undefined => {
      const value = error.details[key];
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    };
    const limit = number('limit');
    const remaining = number('remaining');
    const resetSeconds = number('resetSeconds');
    return new RateLimitedError(error.message, {
      retryAfterSeconds: number('retryAfterSeconds') ?? 1,
      ...(limit !== undefined ? { limit } : {}),
      ...(remaining !== undefined ? { remaining } : {}),
      ...(resetSeconds !== undefined ? { resetSeconds } : {}),
      details: error.details,
      cause: error,
    });
  }
}

/** {@link SagaCompensationError} options. */
export interface SagaCompensationErrorOptions extends AikbErrorOptions {
  /** The saga whose compensation failed. */
  sagaId: string;
  /** Its definition's name (`document_upload`). */
  sagaName: string;
  /** The step whose compensation failed (`drive`). */
  step: string;
}

/**
 * A saga's compensation still failed after its retries (`INTERNAL`): the saga is left
 * `compensation_failed`, listed for an operator to retry or resolve. The message is the
 * compensation's own (`Failed to delete from Drive`), which is what the error metrics and the log
 * line show beside the type; the typed fields say which saga and step, `cause` the original error.
 */
export class SagaCompensationError extends AikbError {
  /** The saga whose compensation failed. */
  readonly sagaId: string;
  /** Its definition's name. */
  readonly sagaName: string;
  /** The step whose compensation failed. */
  readonly step: string;

  constructor(message: string, options: SagaCompensationErrorOptions) {
    const { sagaId, sagaName, step, ...rest } = options;
    super('INTERNAL', message, { ...rest, details: { sagaId, sagaName, step, ...rest.details } });
    this.sagaId = sagaId;
    this.sagaName = sagaName;
    this.step = step;
  }
}

/** {@link similarNames} options. */
export interface SimilarNamesOptions {
  /**
   * At most this many names are returned (a store may hold thousands).
   * @default 10
   */
  limit?: number;
}

/**
 * The "did you mean" list of a lookup that found nothing: the `candidates` that start with
 * `name`, in their order, at most `limit` of them, without duplicates. An empty `name` matches
 * nothing.
 *
 * @throws {TypeError} when `limit` is not a positive integer
 * @example
 * ```ts
 * similarNames('priority_2', ['priority_2_1_saga_pattern', 'other']) // ['priority_2_1_saga_pattern']
 * ```
 */
export function similarNames(name: string, candidates: Iterable<string>, options: SimilarNamesOptions = {}): string[] {
  const limit = options.limit ?? 10;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
    throw new TypeError(`similarNames: limit must be a positive integer (got ${String(limit)})`);
  }
  const found = new Set<string>();
  if (name.length === 0) return [];
  for (const candidate of candidates) {
    if (candidate.startsWith(name)) found.add(candidate);
    if (found.size >= limit) break;
  }
  return [...found];
}

/** True when `error` is an {@link AikbError}, optionally with the given code. */
export function isAikbError(error: unknown, code?: AikbErrorCode): error is AikbError {
  return error instanceof AikbError && (code === undefined || error.code === code);
}
