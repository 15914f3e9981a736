/**
 * `@aikb/openfeature`: an OpenFeature server provider over `@aikb/core` feature flags.
 */
export type { AikbProviderOptions } from './aikb-provider';
export { createAikbProvider } from './aikb-provider';
