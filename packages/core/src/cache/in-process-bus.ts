import { UnavailableError } from '../errors';
import { noopLogger, type Logger } from '../logger';
import { checkOptions } from '../options';
import type { InvalidationBus, InvalidationMessage } from './cache';
import { BusListeners, checkMessage } from './internal/bus-state';

/** {@link createInProcessInvalidationBus} options. */
export interface InProcessInvalidationBusOptions {
  /** @default noopLogger */
  logger?: Logger;
}

/**
 * An {@link InvalidationBus} within one process: every client given the same bus sees every
 * message. Messages are delivered asynchronously (on a microtask), like the networked buses.
 * It is always `connected` until closed. Use it for a single instance or embedded PGlite.
 *
 * @example
 * ```ts
 * const bus = createInProcessInvalidationBus()
 * const a = createFeatureFlagClient({ store, bus })
 * const b = createFeatureFlagClient({ store, bus })   // sees a's changes at once
 * ```
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 */
export function createInProcessInvalidationBus(options: InProcessInvalidationBusOptions = {}): InvalidationBus {
  checkOptions('createInProcessInvalidationBus', options).logger();
  const listeners = new BusListeners('connected', options.logger ?? noopLogger);
  return {
    kind: 'in-process',
    get state() {
      return listeners.state;
    },
    async publish(message) {
      const encoded = checkMessage('InProcessInvalidationBus.publish', message);
      if (listeners.state === 'closed') throw new UnavailableError('the invalidation bus is closed');
      // A copy per delivery, as a networked bus would make: no subscriber can mutate another's message.
      queueMicrotask(() => listeners.deliver(JSON.parse(encoded) as InvalidationMessage));
    },
    subscribe: (handler) => listeners.subscribe(handler),
    onStateChange: (listener) => listeners.onStateChange(listener),
    async close() {
      listeners.setState('closed');
      listeners.clear();
    },
  };
}
