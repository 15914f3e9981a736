import type { HealthCheck, HealthRegistry, HealthRegistryOptions, HealthReport, MeasuredComponentHealth } from './health';

/**
 * Creates a {@link HealthRegistry}.
 *
 * @throws {TypeError} when `timeoutMs` is not a positive number
 *
 * @example
 * ```ts
 * const health = createHealthRegistry()
 * health.register('database', async () => checkDatabase(db.pool))
 * const report = await health.check()   // { status: 'ok', components: { database: { status: 'ok', latencyMs: 0.4 } } }
 * ```
 */
export function createHealthRegistry(options: HealthRegistryOptions = {}): HealthRegistry {
  const timeoutMs = options.timeoutMs ?? 2000;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) {
    throw new TypeError(`createHealthRegistry: timeoutMs must be a positive number (got ${String(timeoutMs)})`);
  }
  const checks = new Map<string, HealthCheck>();

  async function measure(check: HealthCheck): Promise<MeasuredComponentHealth> {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        Promise.resolve().then(check),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`check did not answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { ...result, latencyMs: elapsed() };
    } catch (error) {
      return { status: 'down', error: (error as Error)?.message ?? String(error), latencyMs: elapsed() };
    } finally {
      clearTimeout(timer);
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
      const measured = await Promise.all(entries.map(([, check]) => measure(check)));
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
