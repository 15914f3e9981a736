/**
 * The logging surface aikb primitives write to: the subset of pino's API they use, so a pino
 * logger (or a child of one) can be passed as is. Objects come first, the message second.
 *
 * Primitives never log secrets (passwords, tokens, emails).
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything: the default of every `logger` option. */
export const noopLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
