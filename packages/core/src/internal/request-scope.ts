import { AsyncLocalStorage } from 'node:async_hooks';
import type { Span } from '@opentelemetry/api';

/**
 * The unit of work a span stands for, as the pool monitor sees it: what it acquired and how long
 * it held connections. Nested spans form a chain, so a connection acquired in a child span counts
 * for every span above it (a request's total includes its sub-operations).
 */
export interface RequestScope {
  readonly traceId: string;
  readonly spanId: string;
  readonly parent: RequestScope | undefined;
  /** The span this scope belongs to (an SDK span, or the helpers' own when no SDK is registered). */
  readonly span: Span;
  connectionsUsed: number;
  longestHoldMs: number;
  /** Values attached with `SpanScope.set`, found by `scopeValue` here and in child scopes. */
  values?: Map<symbol, unknown>;
}

// One store per process even if two copies of core are loaded (ESM and CJS builds side by side):
// the pool monitor of one copy must see the spans of the other.
const KEY = Symbol.for('aikb.core.request-scope');
const holder = globalThis as typeof globalThis & { [KEY]?: AsyncLocalStorage<RequestScope> };
export const scopeStorage: AsyncLocalStorage<RequestScope> = (holder[KEY] ??= new AsyncLocalStorage<RequestScope>());

/** The innermost active scope, if any. */
export function activeScope(): RequestScope | undefined {
  return scopeStorage.getStore();
}
