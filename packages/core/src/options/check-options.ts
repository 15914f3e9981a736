/**
 * The one options check every aikb factory runs at construction (core primitives, the Express
 * adapter, the Prometheus exporters, the OpenFeature provider), so a bad option throws a
 * `TypeError` naming the factory and the option when the app is wired, never on first use.
 */

/** A value as an error message shows it: a string quoted, an object by its kind (never `[object Object]`). */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'function':
      return 'a function';
    case 'object':
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
    default:
      return String(value);
  }
}

/** Checks on one factory's options; each `required` flag defaults to `false` (undefined is allowed). */
export interface OptionChecks {
  /** An object (a service such as a `FeatureFlagClient`), with `methods` when given. */
  object(name: string, what: string, required?: boolean, methods?: readonly string[]): void;
  function(name: string, required?: boolean): void;
  /** A string, non-empty unless `allowEmpty`. */
  string(name: string, required?: boolean, allowEmpty?: boolean): void;
  boolean(name: string): void;
  /** A finite number from `min` (excluded when `exclusiveMin`) to `max`, a whole one when `integer`. */
  number(name: string, range: { min: number; max?: number; integer?: boolean; exclusiveMin?: boolean }): void;
  /** A non-empty array of finite numbers. */
  numbers(name: string): void;
  /** A `Clock` (an object with `now`, `setTimeout` and `clearTimeout` methods), optional. */
  clock(name?: string): void;
  /** A `Logger` (an object with `debug`, `info`, `warn` and `error` methods), optional. */
  logger(name?: string): void;
}

/** The methods of a `Clock`, as {@link OptionChecks.clock} requires them. */
const CLOCK_METHODS = ['now', 'setTimeout', 'clearTimeout'] as const;
/** The methods of a `Logger`, as {@link OptionChecks.logger} requires them. */
const LOGGER_METHODS = ['debug', 'info', 'warn', 'error'] as const;

function fail(factory: string, name: string, expected: string, value: unknown): never {
  throw new TypeError(`${factory}: ${name} must be ${expected} (got ${describeValue(value)})`);
}

/**
 * Checks that a positional argument is an object (`what`), with `methods` when given.
 * @throws {TypeError} naming `name` otherwise
 */
export function checkObject(factory: string, name: string, value: unknown, what: string, methods: readonly string[] = []): void {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) fail(factory, name, what, value);
  const record = value as Record<string, unknown>;
  const missing = methods.find((method) => typeof record[method] !== 'function');
  if (missing !== undefined) fail(factory, name, `${what} (with a ${missing}() method)`, value);
}

/**
 * Checks that `options` is an object (or undefined when `optional`) and returns checks for its
 * members.
 * @throws {TypeError} naming `options` when it is not an object
 */
export function checkOptions(factory: string, options: unknown, optional = false): OptionChecks {
  if (options === undefined && optional) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) fail(factory, 'options', 'an object', options);
  const record = options as Record<string, unknown>;
  const checks: OptionChecks = {
    object(name, what, required = false, methods = []) {
      if (record[name] === undefined && !required) return;
      checkObject(factory, name, record[name], what, methods);
    },
    clock(name = 'clock') {
      checks.object(name, 'a Clock', false, CLOCK_METHODS);
    },
    logger(name = 'logger') {
      checks.object(name, 'a Logger', false, LOGGER_METHODS);
    },
    function(name, required = false) {
      const value = record[name];
      if ((value !== undefined || required) && typeof value !== 'function') fail(factory, name, 'a function', value);
    },
    string(name, required = false, allowEmpty = false) {
      const value = record[name];
      if ((value !== undefined || required) && (typeof value !== 'string' || (value === '' && !allowEmpty)))
        fail(factory, name, allowEmpty ? 'a string' : 'a non-empty string', value);
    },
    boolean(name) {
      const value = record[name];
      if (value !== undefined && typeof value !== 'boolean') fail(factory, name, 'a boolean', value);
    },
    number(name, { min, max = Number.MAX_SAFE_INTEGER, integer = false, exclusiveMin = false }) {
      const value = record[name];
      if (value === undefined) return;
      const ok =
        typeof value === 'number' &&
        Number.isFinite(value) &&
        (exclusiveMin ? value > min : value >= min) &&
        value <= max &&
        (!integer || Number.isInteger(value));
      if (!ok)
        fail(
          factory,
          name,
          `${integer ? 'a whole number' : 'a number'} ${exclusiveMin ? '>' : '≥'} ${min}${max < Number.MAX_SAFE_INTEGER ? ` and ≤ ${max}` : ''}`,
          value,
        );
    },
    numbers(name) {
      const value = record[name];
      if (value === undefined) return;
      if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === 'number' && Number.isFinite(item)))
        fail(factory, name, 'a non-empty array of finite numbers', value);
    },
  };
  return checks;
}
