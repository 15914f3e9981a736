import {
  diag,
  type Attributes,
  type BatchObservableCallback,
  type BatchObservableResult,
  type Counter as OtelCounter,
  type Gauge as OtelGauge,
  type Histogram as OtelHistogram,
  type Meter,
  type MeterProvider,
  type MetricOptions,
  type Observable,
  type ObservableCallback,
  type ObservableResult,
  type UpDownCounter as OtelUpDownCounter,
} from '@opentelemetry/api';
import { Counter, type Registry } from 'prom-client';
import { checkOptions } from '@aikb/core/options';
import { Family, type DropReason } from './internal/family';
import { prometheusName, type PrometheusKind } from './internal/names';

/** The OpenTelemetry SDK's default histogram boundaries, used when an instrument gives no `advice`. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]);

/** The counter of measurements the bridge did not keep, by metric and reason. */
export const DROPPED_MEASUREMENTS_METRIC = 'aikb_prometheus_dropped_measurements_total';

/** {@link createPrometheusMeterProvider} options. */
export interface PrometheusMeterProviderOptions {
  /** The prom-client registry every instrument's metric is registered on (serve it with {@link createMetricsHandler}). */
  registry: Registry;
  /**
   * The most label sets one metric keeps. A measurement with a new label set beyond it is dropped
   * and counted in `aikb_prometheus_dropped_measurements_total{metric, reason="cardinality"}`.
   * @default 2000
   */
  maxSeriesPerMetric?: number;
  /**
   * Histogram bucket bounds for instruments created without `advice.explicitBucketBoundaries`.
   * @default DEFAULT_BUCKETS (the OpenTelemetry SDK's: 0, 5, 10, 25, … 10000)
   */
  defaultBuckets?: number[];
  /**
   * How long a scrape waits for observable callbacks (an async one that takes longer is not
   * waited for; what the others observed is served), in milliseconds.
   * @default 10000
   */
  collectTimeoutMs?: number;
}

/** An OpenTelemetry `MeterProvider` whose instruments are Prometheus metrics of one prom-client registry. */
export interface PrometheusMeterProvider extends MeterProvider {
  readonly registry: Registry;
}

const INSTRUMENT_NAME = /^[A-Za-z][A-Za-z0-9_./-]{0,254}$/;

type Kind = 'counter' | 'upDownCounter' | 'gauge' | 'histogram' | 'observableCounter' | 'observableUpDownCounter' | 'observableGauge';

const PROMETHEUS_KIND: Readonly<Record<Kind, PrometheusKind>> = {
  counter: 'counter',
  upDownCounter: 'gauge',
  gauge: 'gauge',
  histogram: 'histogram',
  observableCounter: 'counter',
  observableUpDownCounter: 'gauge',
  observableGauge: 'gauge',
};

/** An observable instrument: its callbacks run once per collection. */
class ObservableInstrument implements Observable {
  readonly callbacks = new Set<ObservableCallback>();
  constructor(
    readonly family: Family | undefined,
    private readonly state: BridgeState,
  ) {}
  addCallback(callback: ObservableCallback): void {
    if (typeof callback !== 'function') return;
    this.callbacks.add(callback);
    this.state.observables.add(this);
  }
  removeCallback(callback: ObservableCallback): void {
    this.callbacks.delete(callback);
    if (this.callbacks.size === 0) this.state.observables.delete(this);
  }
  /** Records one observation of the current collection. */
  accept(value: number, attributes: Attributes | undefined): void {
    if (!this.family) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || (this.family.kind === 'counter' && value < 0)) {
      this.state.drop(this.family.name, 'invalid_value');
      return;
    }
    this.family.set(value, attributes);
  }
}

/** What every meter of one registry shares: the families by Prometheus name and the observable callbacks. */
class BridgeState {
  readonly families = new Map<string, Family>();
  readonly observables = new Set<ObservableInstrument>();
  readonly batches: Array<{ callback: BatchObservableCallback; observables: Set<ObservableInstrument> }> = [];
  #round: Promise<void> | undefined;
  readonly #dropped: Counter;

  constructor(
    readonly registry: Registry,
    readonly maxSeries: number,
    readonly defaultBuckets: readonly number[],
    readonly collectTimeoutMs: number,
  ) {
    const existing = registry.getSingleMetric(DROPPED_MEASUREMENTS_METRIC);
    this.#dropped =
      existing instanceof Counter
        ? existing
        : new Counter({
            name: DROPPED_MEASUREMENTS_METRIC,
            help: 'Measurements the OpenTelemetry-to-Prometheus bridge did not keep, by metric and reason (cardinality, conflict, invalid_value).',
            labelNames: ['metric', 'reason'],
            registers: [registry],
          });
  }

  drop(metric: string, reason: DropReason): void {
    this.#dropped.inc({ metric, reason });
  }

  /**
   * The family an instrument records into: an existing one of the same name and type, or a new
   * one registered on the registry. `undefined` (measurements dropped as `conflict`) when the name
   * is taken by a metric of another type or one registered outside the bridge.
   */
  family(kind: Kind, name: string, options: MetricOptions | undefined): { family: Family | undefined; promName: string } {
    const type = PROMETHEUS_KIND[kind];
    const observable = kind.startsWith('observable');
    const promName = prometheusName(name, options?.unit, type);
    const buckets = type === 'histogram' ? this.#buckets(name, options) : [];
    const existing = this.families.get(promName);
    if (existing) {
      if (existing.kind !== type || existing.observable !== observable) {
        diag.warn(
          `@aikb/prometheus: instrument ${name} maps to ${promName}, already a ${existing.observable ? 'observable ' : ''}${existing.kind}; its measurements are dropped`,
        );
        return { family: undefined, promName };
      }
      if (existing.buckets.join() !== buckets.join())
        diag.warn(`@aikb/prometheus: instrument ${name} asks for other buckets than ${promName} has; it records into the existing ones`);
      return { family: existing, promName };
    }
    const help = options?.description?.trim() || 'description missing';
    const family = new Family(
      promName,
      help,
      type,
      observable,
      buckets,
      this.maxSeries,
      (metric, reason) => this.drop(metric, reason),
      () => this.collect(),
    );
    try {
      family.register(this.registry);
    } catch (error) {
      diag.warn(`@aikb/prometheus: cannot register ${promName} for instrument ${name} (${(error as Error).message}); its measurements are dropped`);
      return { family: undefined, promName };
    }
    this.families.set(promName, family);
    return { family, promName };
  }

  #buckets(name: string, options: MetricOptions | undefined): readonly number[] {
    const advice = options?.advice?.explicitBucketBoundaries;
    if (advice === undefined) return this.defaultBuckets;
    if (Array.isArray(advice) && advice.every((b, i) => typeof b === 'number' && Number.isFinite(b) && (i === 0 || b > advice[i - 1]!))) return [...advice];
    diag.warn(`@aikb/prometheus: instrument ${name} gives explicitBucketBoundaries that are not increasing finite numbers; using the default buckets`);
    return this.defaultBuckets;
  }

  /**
   * Runs every observable callback once and refills the observable families. Concurrent callers
   * (each family of one scrape asks) share one run.
   */
  collect(): Promise<void> {
    this.#round ??= this.#run().finally(() => {
      this.#round = undefined;
    });
    return this.#round;
  }

  async #run(): Promise<void> {
    for (const family of this.families.values()) if (family.observable) family.clear();
    let open = true;
    const tasks: Array<Promise<void>> = [];
    for (const instrument of this.observables) {
      const result: ObservableResult = {
        observe: (value, attributes) => {
          if (open) instrument.accept(value, attributes);
        },
      };
      for (const callback of instrument.callbacks) tasks.push(this.#call(() => callback(result)));
    }
    for (const { callback, observables } of this.batches) {
      const result: BatchObservableResult = {
        observe: (observable, value, attributes) => {
          if (open && observable instanceof ObservableInstrument && observables.has(observable)) observable.accept(value, attributes);
        },
      };
      tasks.push(this.#call(() => callback(result)));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        diag.warn(`@aikb/prometheus: observable callbacks did not finish within ${this.collectTimeoutMs} ms; serving what was observed`);
        resolve();
      }, this.collectTimeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([Promise.all(tasks), timeout]);
    } finally {
      clearTimeout(timer);
      open = false;
    }
  }

  /** A callback that throws or rejects is reported; the others still count. */
  async #call(run: () => void | Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      diag.error('@aikb/prometheus: an observable callback failed', error);
    }
  }
}

function invalid(state: BridgeState, family: Family | undefined, promName: string, value: unknown, allowNegative: boolean): boolean {
  if (typeof value === 'number' && Number.isFinite(value) && (allowNegative || value >= 0)) {
    if (family) return false;
    state.drop(promName, 'conflict');
    return true;
  }
  state.drop(promName, 'invalid_value');
  return true;
}

class PrometheusMeter implements Meter {
  constructor(private readonly state: BridgeState) {}

  #checkName(name: unknown): name is string {
    if (typeof name === 'string' && INSTRUMENT_NAME.test(name)) return true;
    diag.warn(`@aikb/prometheus: invalid instrument name ${JSON.stringify(name)}; it records nothing`);
    return false;
  }

  /** A synchronous instrument's measuring function: checks the value, then writes into the family. */
  #sync(
    kind: Kind,
    name: string,
    options: MetricOptions | undefined,
    allowNegative: boolean,
    write: (family: Family, value: number, attributes: Attributes | undefined) => void,
  ) {
    if (!this.#checkName(name)) return () => {};
    const { family, promName } = this.state.family(kind, name, options);
    return (value: number, attributes?: Attributes) => {
      if (!invalid(this.state, family, promName, value, allowNegative)) write(family!, value, attributes);
    };
  }

  createCounter(name: string, options?: MetricOptions): OtelCounter {
    return { add: this.#sync('counter', name, options, false, (family, value, attributes) => family.add(value, attributes)) };
  }

  createUpDownCounter(name: string, options?: MetricOptions): OtelUpDownCounter {
    return { add: this.#sync('upDownCounter', name, options, true, (family, value, attributes) => family.add(value, attributes)) };
  }

  createGauge(name: string, options?: MetricOptions): OtelGauge {
    return { record: this.#sync('gauge', name, options, true, (family, value, attributes) => family.set(value, attributes)) };
  }

  /** Negative values are dropped, as the OpenTelemetry SDK does: a Prometheus histogram's sum only grows. */
  createHistogram(name: string, options?: MetricOptions): OtelHistogram {
    return { record: this.#sync('histogram', name, options, false, (family, value, attributes) => family.observe(value, attributes)) };
  }

  #observable(kind: Kind, name: string, options: MetricOptions | undefined): ObservableInstrument {
    const family = this.#checkName(name) ? this.state.family(kind, name, options).family : undefined;
    return new ObservableInstrument(family, this.state);
  }

  createObservableCounter(name: string, options?: MetricOptions): Observable {
    return this.#observable('observableCounter', name, options);
  }

  createObservableUpDownCounter(name: string, options?: MetricOptions): Observable {
    return this.#observable('observableUpDownCounter', name, options);
  }

  createObservableGauge(name: string, options?: MetricOptions): Observable {
    return this.#observable('observableGauge', name, options);
  }

  addBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    if (typeof callback !== 'function' || !Array.isArray(observables)) return;
    const own = new Set(observables.filter((o): o is ObservableInstrument => o instanceof ObservableInstrument));
    if (this.state.batches.some((b) => b.callback === callback && sameSet(b.observables, own))) return;
    this.state.batches.push({ callback, observables: own });
  }

  removeBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    if (!Array.isArray(observables)) return;
    const own = new Set(observables.filter((o): o is ObservableInstrument => o instanceof ObservableInstrument));
    const index = this.state.batches.findIndex((b) => b.callback === callback && sameSet(b.observables, own));
    if (index >= 0) this.state.batches.splice(index, 1);
  }
}

const sameSet = <T>(a: Set<T>, b: Set<T>) => a.size === b.size && [...a].every((x) => b.has(x));

// Every provider over one registry shares its families: a registry cannot hold two metrics of one name.
const states = new WeakMap<Registry, BridgeState>();

/**
 * Creates an OpenTelemetry `MeterProvider` whose meters record into a prom-client `registry`, so
 * that what `@aikb/core` (and any OpenTelemetry instrumentation) measures is scraped from your
 * `/metrics` with no OpenTelemetry SDK.
 *
 * - Counter, ObservableCounter → Prometheus counter (`_total`); UpDownCounter, Gauge and their
 *   observable forms → gauge; Histogram → histogram with `advice.explicitBucketBoundaries` (else
 *   `defaultBuckets`). Observable callbacks (batch ones too) run at scrape time, once per scrape.
 * - Names as the OpenTelemetry Collector's Prometheus translator makes them: words joined by `_`,
 *   the unit as a suffix (`s` → `_seconds`, `ms` → `_milliseconds`, `By` → `_bytes`, `1` →
 *   `_ratio` on gauges, `{annotations}` dropped), `_total` on counters. Attribute keys become
 *   label names (invalid characters → `_`); description → HELP. The meter's name and version are
 *   not exported.
 * - Bounded: at most `maxSeriesPerMetric` label sets per metric, label values cut at 1024
 *   characters. Measurements not kept (beyond the cap, negative counter increments, NaN, a name
 *   already taken by another type) are counted in `aikb_prometheus_dropped_measurements_total`.
 *   A metric with no measurement yet shows only its HELP and TYPE lines.
 *
 * Providers created over one registry share its metrics (a registry holds one metric per name);
 * the first one's options apply.
 *
 * Failure policy: never throws once created; problems are reported through OpenTelemetry's `diag`.
 *
 * @throws {TypeError} at construction, naming the option, when an option is invalid
 * @example
 * ```ts
 * const registry = new Registry()
 * const meter = createPrometheusMeterProvider({ registry }).getMeter('my-service')
 * const flags = createFeatureFlagClient({ store, meter })
 * app.get('/metrics', createMetricsHandler({ registry }))
 * ```
 */
export function createPrometheusMeterProvider(options: PrometheusMeterProviderOptions): PrometheusMeterProvider {
  const check = checkOptions('createPrometheusMeterProvider', options);
  check.object('registry', 'a prom-client Registry', true, ['registerMetric', 'getSingleMetric', 'metrics']);
  check.number('maxSeriesPerMetric', { min: 1, integer: true });
  check.numbers('defaultBuckets');
  check.number('collectTimeoutMs', { min: 1, max: 600_000 });
  const defaultBuckets = options.defaultBuckets ?? DEFAULT_BUCKETS;
  if (!defaultBuckets.every((b, i) => i === 0 || b > defaultBuckets[i - 1]!)) {
    throw new TypeError('createPrometheusMeterProvider: defaultBuckets must be increasing');
  }
  const { registry } = options;
  let state = states.get(registry);
  if (!state) {
    state = new BridgeState(registry, options.maxSeriesPerMetric ?? 2000, [...defaultBuckets], options.collectTimeoutMs ?? 10_000);
    states.set(registry, state);
  }
  const meter = new PrometheusMeter(state);
  return {
    registry,
    getMeter: () => meter,
  };
}
