import { monotonicClock } from '../clock';
import { withTimeout } from '../internal/timeout';
import { checkOptions } from '../options';
import type { HealthCheck, HealthRegistry, HealthRegistryOptions, HealthReport, MeasuredComponentHealth } from './health';

/**
 * Creates a {@link HealthRegistry}.
 *
 * @throws {TypeError} when `timeoutMs` is not a positive number or `clock` not a Clock
 *
 * @example
 * ```ts
 * const health = createHealthRegistry()
 * health.register('database', async () => checkDatabase(db.pool))
 * const report = await health.check()   // { status: 'ok', components: { database: { status: 'ok', latencyMs: 0.4 } } }
 * ```
 */
export function createHealthRegistry(options: HealthRegistryOptions = {}): HealthRegistry {
  const check = checkOptions('createHealthRegistry', options, true);
  check.number('timeoutMs', { min: 0, exclusiveMin: true });
  check.clock();
  const timeoutMs = options.timeoutMs ?? 2000;
  const clock = options.clock ?? monotonicClock;
  const checks = new Map<string, HealthCheck>();

  async function measure(probe: HealthCheck): Promise<MeasuredComponentHealth> {
    const started = clock.now();
    const elapsed = () => Math.round((clock.now() - started) * 100) / 100;
    try {
      const result = await withTimeout(clock, Promise.resolve().then(probe), timeoutMs, `check did not answer within ${timeoutMs} ms`);
      return { ...result, latencyMs: elapsed() };
    } catch (error) {
      return { status: 'down', error: (error as Error)?.message ?? String(error), latencyMs: elapsed() };
    }
  }

  return {
    register(name, check) {
      if (typeof name !== 'string' || name.length === 0) throw new TypeError('HealthRegistry.register: name must be a non-empty string');
      if (typeof check !== 'function') throw new TypeError(`HealthRegistry.register: check for ${name} must be a function`);
      if (checks.has(name)) throw new TypeError(`HealthRegistry.register: a check named ${name} is already registered`);
      checks.set(name, check);
      return () => {
        if (checks.get(name) === check) checks.delete(name);
      };
    },
    async check(): Promise<HealthReport> {
      const entries = [...checks];
      const measured = await Promise.all(entries.map(([, probe]) => measure(probe)));
      const components: Record<string, MeasuredComponentHealth> = {};
      let healthy = true;
      entries.forEach(([name], i) => {
        const component = measured[i]!;
        components[name] = component;
        if (component.status !== 'ok' && component.status !== 'disabled') healthy = false;
      });
      return { status: healthy ? 'ok' : 'degraded', components };
    },
  };
}
