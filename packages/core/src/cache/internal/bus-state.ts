import type { Logger } from '../../logger';
import type { InvalidationBusState, InvalidationMessage } from '../cache';

/** Subscribers and state listeners shared by every bus implementation. */
export class BusListeners {
  readonly #handlers = new Set<(message: InvalidationMessage) => void>();
  readonly #stateListeners = new Set<(state: InvalidationBusState) => void>();
  #state: InvalidationBusState;
  readonly #logger: Logger;

  constructor(initial: InvalidationBusState, logger: Logger) {
    this.#state = initial;
    this.#logger = logger;
  }

  get state(): InvalidationBusState {
    return this.#state;
  }

  setState(state: InvalidationBusState): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    for (const listener of [...this.#stateListeners]) {
      try {
        listener(state);
      } catch (error) {
        this.#logger.error({ err: error }, 'invalidation bus state listener threw');
      }
    }
  }

  deliver(message: InvalidationMessage): void {
    for (const handler of [...this.#handlers]) {
      try {
        handler(message);
      } catch (error) {
        this.#logger.error({ err: error, key: message.key }, 'invalidation handler threw');
      }
    }
  }

  subscribe(handler: (message: InvalidationMessage) => void): () => void {
    if (typeof handler !== 'function') throw new TypeError('InvalidationBus.subscribe: handler must be a function');
    this.#handlers.add(handler);
    return () => void this.#handlers.delete(handler);
  }

  onStateChange(listener: (state: InvalidationBusState) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('InvalidationBus.onStateChange: listener must be a function');
    this.#stateListeners.add(listener);
    return () => void this.#stateListeners.delete(listener);
  }

  clear(): void {
    this.#handlers.clear();
    this.#stateListeners.clear();
  }
}

/** Parses a message received from the wire; `undefined` for anything malformed. */
export function parseMessage(raw: string): InvalidationMessage | undefined {
  try {
    const parsed = JSON.parse(raw) as Partial<InvalidationMessage> | null;
    if (!parsed || typeof parsed.key !== 'string' || typeof parsed.version !== 'number') return undefined;
    return parsed as InvalidationMessage;
  } catch {
    return undefined;
  }
}

/** Checks a message before it is published. */
export function checkMessage(where: string, message: InvalidationMessage): string {
  if (!message || typeof message.key !== 'string' || message.key.length === 0) {
    throw new TypeError(`${where}: message.key must be a non-empty string`);
  }
  if (typeof message.version !== 'number' || !Number.isSafeInteger(message.version) || message.version < 0) {
    throw new TypeError(`${where}: message.version must be a non-negative integer`);
  }
  return JSON.stringify(message);
}
