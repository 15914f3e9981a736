/** A subsystem's self-description for operators: plain JSON (configuration in force, state, counters). */
export type SubsystemStatus = Readonly<Record<string, unknown>>;

/** Produces a subsystem's status now. It may throw: the registry reports the error instead. */
export type StatusProvider = () => SubsystemStatus | Promise<SubsystemStatus>;

/**
 * A set of named status providers: each subsystem (auth, flags, pool, ...) registers its own
 * (typically its primitives' `stats()`), so a system-status endpoint lists whatever is installed
 * without knowing it in advance.
 */
export interface StatusRegistry {
  /**
   * Adds a provider under `name`.
   * @returns a function that removes it
   * @throws {TypeError} when the name is taken or not a non-empty string
   */
  register(name: string, provider: StatusProvider): () => void;
  /**
   * Asks every provider now and gathers their statuses, by name, in registration order. Async
   * because a provider may be; never throws (a provider's error becomes `{ error }`).
   */
  collect(): Promise<Record<string, SubsystemStatus>>;
}

/**
 * Creates a {@link StatusRegistry}.
 *
 * @example
 * ```ts
 * const status = createStatusRegistry()
 * status.register('auth', () => ({ floorMs: 500, jitterMs: 20, constantTime: true }))
 * await status.collect()   // { auth: { floorMs: 500, jitterMs: 20, constantTime: true } }
 * ```
 */
export function createStatusRegistry(): StatusRegistry {
  const providers = new Map<string, StatusProvider>();
  return {
    register(name, provider) {
      if (typeof name !== 'string' || name.length === 0) throw new TypeError('StatusRegistry.register: name must be a non-empty string');
      if (typeof provider !== 'function') throw new TypeError(`StatusRegistry.register: provider for ${name} must be a function`);
      if (providers.has(name)) throw new TypeError(`StatusRegistry.register: a provider named ${name} is already registered`);
      providers.set(name, provider);
      return () => {
        if (providers.get(name) === provider) providers.delete(name);
      };
    },
    async collect() {
      const entries = [...providers];
      const results = await Promise.all(
        entries.map(async ([, provider]) => {
          try {
            return await provider();
          } catch (error) {
            return { error: (error as Error)?.message ?? String(error) };
          }
        }),
      );
      return Object.fromEntries(entries.map(([name], i) => [name, results[i]!]));
    },
  };
}
