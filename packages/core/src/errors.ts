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

/**
 * The one error base of aikb. Every error a primitive throws on purpose is an `AikbError`
 * with a string-literal {@link AikbErrorCode}; subclasses exist only where callers need
 * `instanceof`.
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
  /** Client-safe structured details. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: AikbErrorCode, message: string, options: AikbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
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

/** A dependency (database, Redis, ...) could not be reached; the operation changed nothing. */
export class UnavailableError extends AikbError {
  constructor(message: string, options: AikbErrorOptions = {}) {
    super('UNAVAILABLE', message, options);
  }
}

/** True when `error` is an {@link AikbError}, optionally with the given code. */
export function isAikbError(error: unknown, code?: AikbErrorCode): error is AikbError {
  return error instanceof AikbError && (code === undefined || error.code === code);
}
