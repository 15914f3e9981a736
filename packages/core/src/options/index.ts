/**
 * `@aikb/core/options`: the options check every aikb factory runs at construction. Exported for
 * aikb's own adapter packages and for anyone writing an adapter in the same shape; it has no
 * dependencies.
 *
 * @example
 * ```ts
 * const check = checkOptions('createThing', options);
 * check.number('timeoutMs', { min: 1, integer: true });
 * check.object('pool', 'a pg.Pool', true, ['query']);
 * ```
 */
export type { OptionChecks } from './check-options';
export { checkObject, checkOptions } from './check-options';
