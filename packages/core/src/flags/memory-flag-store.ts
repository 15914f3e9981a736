import { systemClock, type Clock } from '../clock';
import { checkOptions } from '../options';
import type { Flag, FlagChange, FlagDefinition, FlagPatch, FlagState, FlagStore } from './flags';

/** {@link createMemoryFlagStore} options. */
export interface MemoryFlagStoreOptions {
  /**
   * Dates `lastUpdated` and audit records (epoch milliseconds).
   * @default systemClock
   */
  clock?: Clock;
}

function state(flag: Flag): FlagState {
  return { enabled: flag.enabled, rolloutPercentage: flag.rolloutPercentage, description: flag.description };
}

/**
 * A {@link FlagStore} in memory: for tests and single-process tools. Flags and history are lost
 * when the process exits.
 *
 * @throws {TypeError} when `clock` is not a Clock
 * @example
 * ```ts
 * const flags = createFeatureFlagClient({ store: createMemoryFlagStore() })
 * ```
 */
export function createMemoryFlagStore(options: MemoryFlagStoreOptions = {}): FlagStore {
  checkOptions('createMemoryFlagStore', options).clock();
  const clock = options.clock ?? systemClock;
  const flags = new Map<string, Flag>();
  const changes: FlagChange[] = [];
  let version = 0;

  function write(name: string, before: Flag | undefined, next: FlagState, actor: string): Flag {
    const at = new Date(clock.now()).toISOString();
    const flag: Flag = { name, ...next, lastUpdated: at, version: ++version };
    flags.set(name, flag);
    changes.push({ name, version: flag.version, before: before && state(before), after: state(flag), actor, at });
    return flag;
  }

  return {
    async get(name) {
      return flags.get(name);
    },
    async list() {
      return [...flags.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async put(name, definition: FlagDefinition, actor) {
      const before = flags.get(name);
      const flag = write(
        name,
        before,
        { enabled: definition.enabled, rolloutPercentage: definition.rolloutPercentage, description: definition.description ?? '' },
        actor,
      );
      return { flag, created: before === undefined };
    },
    async update(name, patch: FlagPatch, actor) {
      const before = flags.get(name);
      if (!before) return undefined;
      return write(name, before, { ...state(before), ...definedOnly(patch) }, actor);
    },
    async updateMany(names, patch: FlagPatch, actor) {
      const changed: FlagChange[] = [];
      for (const name of [...new Set(names)].sort()) {
        const before = flags.get(name);
        if (!before) continue;
        const next = { ...state(before), ...definedOnly(patch) };
        if (next.enabled === before.enabled && next.rolloutPercentage === before.rolloutPercentage && next.description === before.description) continue;
        write(name, before, next, actor);
        changed.push(changes.at(-1)!);
      }
      return changed;
    },
    async ensure(name, definition, actor) {
      const existing = flags.get(name);
      if (existing) return existing;
      return write(
        name,
        undefined,
        { enabled: definition.enabled, rolloutPercentage: definition.rolloutPercentage, description: definition.description ?? '' },
        actor,
      );
    },
    async history(name, { limit = 100 } = {}) {
      return changes
        .filter((change) => change.name === name)
        .reverse()
        .slice(0, limit);
    },
    async changeMarker() {
      // Writes are synchronous here, so the version counter is already in commit order.
      return version;
    },
  };
}

function definedOnly(patch: FlagPatch): FlagPatch {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined));
}
