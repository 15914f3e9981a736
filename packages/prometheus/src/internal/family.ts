import type { Attributes } from '@opentelemetry/api';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { labelName, type PrometheusKind } from './names';

/** Label values longer than this are cut: a label is an identifier, not a payload. */
export const MAX_LABEL_VALUE_LENGTH = 1024;

/** Why a measurement was not kept (the `reason` label of the dropped-measurements counter). */
export type DropReason = 'cardinality' | 'conflict' | 'invalid_value';

type Labels = Record<string, string>;

interface Point {
  readonly labels: Labels;
  value: number;
}

interface HistogramPoint {
  readonly labels: Labels;
  /** Per bucket (not cumulative); the last slot counts values above every bound. */
  readonly counts: number[];
  sum: number;
  count: number;
}

function labelValue(value: unknown): string | undefined {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (Array.isArray(value)) text = JSON.stringify(value);
  else return undefined;
  return text.length > MAX_LABEL_VALUE_LENGTH ? text.slice(0, MAX_LABEL_VALUE_LENGTH) : text;
}

/** Label names by attribute key: the keys come from code, so few; past the bound they are not kept. */
const labelNames = new Map<string, string | null>();
const MAX_CACHED_LABEL_NAMES = 4096;

function cachedLabelName(key: string): string | undefined {
  let name = labelNames.get(key);
  if (name === undefined) {
    name = labelName(key) ?? null;
    if (labelNames.size < MAX_CACHED_LABEL_NAMES) labelNames.set(key, name);
  }
  return name ?? undefined;
}

/**
 * Labels of a measurement, in the attributes' order, and a key identifying the set whatever that
 * order. Two keys that sanitize to the same label name have their values joined with `;`.
 * The key lists `name NUL length NUL value` per label in name order: names are `[a-zA-Z0-9_]`
 * and each value carries its length, so two different label sets never share a key. It runs on
 * every measurement (every HTTP request), so it avoids the intermediate arrays and JSON.
 */
function toLabels(attributes: Attributes | undefined, kind: PrometheusKind): { labels: Labels; key: string } {
  const labels: Labels = {};
  let count = 0;
  let sorted = true;
  let previous = '';
  if (attributes !== null && typeof attributes === 'object') {
    for (const key in attributes) {
      if (!Object.hasOwn(attributes, key)) continue;
      let name = cachedLabelName(key);
      const value = labelValue(attributes[key]);
      if (name === undefined || value === undefined) continue;
      if (kind === 'histogram' && name === 'le') name = 'key_le';
      if (Object.hasOwn(labels, name)) {
        labels[name] = `${labels[name]};${value}`;
        continue;
      }
      labels[name] = value;
      if (count > 0 && name < previous) sorted = false;
      previous = name;
      count++;
    }
  }
  if (count === 0) return { labels, key: '' };
  let key = '';
  for (const name of sorted ? Object.keys(labels) : Object.keys(labels).sort()) {
    const value = labels[name]!;
    key += `${name}\u0000${value.length}\u0000${value}`;
  }
  return { labels, key };
}

/**
 * One Prometheus metric family: the points of every instrument that maps to its name, at most
 * `maxSeries` label sets. Synchronous instruments write into it as they measure; observable ones
 * are cleared and refilled at every collection.
 */
export class Family {
  readonly #points = new Map<string, Point | HistogramPoint>();
  readonly metric: Counter | Gauge | Histogram;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: PrometheusKind,
    readonly observable: boolean,
    readonly buckets: readonly number[],
    private readonly maxSeries: number,
    private readonly drop: (family: string, reason: DropReason) => void,
    /** Resolves once observable instruments have reported (a no-op for synchronous ones). */
    private readonly collect: () => Promise<void>,
  ) {
    this.metric = bridgedMetric(this);
  }

  /** Registers the family's prom-client metric; throws when the registry has one of that name. */
  register(registry: Registry): void {
    registry.registerMetric(this.metric);
  }

  #point(attributes: Attributes | undefined): Point | HistogramPoint | undefined {
    const { labels, key } = toLabels(attributes, this.kind);
    let point = this.#points.get(key);
    if (point === undefined) {
      if (this.#points.size >= this.maxSeries) {
        this.drop(this.name, 'cardinality');
        return undefined;
      }
      point = this.kind === 'histogram' ? { labels, counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 } : { labels, value: 0 };
      this.#points.set(key, point);
    }
    return point;
  }

  /** Counter and up-down counter measurements. */
  add(value: number, attributes: Attributes | undefined): void {
    const point = this.#point(attributes) as Point | undefined;
    if (point) point.value += value;
  }

  /** Gauge measurements and observations. */
  set(value: number, attributes: Attributes | undefined): void {
    const point = this.#point(attributes) as Point | undefined;
    if (point) point.value = value;
  }

  observe(value: number, attributes: Attributes | undefined): void {
    const point = this.#point(attributes) as HistogramPoint | undefined;
    if (!point) return;
    let bucket = 0;
    while (bucket < this.buckets.length && value > this.buckets[bucket]!) bucket++;
    point.counts[bucket]!++;
    point.sum += value;
    point.count++;
  }

  clear(): void {
    this.#points.clear();
  }

  /** The family in prom-client's value format, after observable instruments have reported. */
  async values(): Promise<Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>> {
    if (this.observable) await this.collect();
    const out: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> = [];
    for (const point of this.#points.values()) {
      if (!('counts' in point)) {
        out.push({ labels: point.labels, value: point.value });
        continue;
      }
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += point.counts[i]!;
        out.push({ labels: { le: bound, ...point.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      out.push({ labels: { le: '+Inf', ...point.labels }, value: point.count, metricName: `${this.name}_bucket` });
      out.push({ labels: point.labels, value: point.sum, metricName: `${this.name}_sum` });
      out.push({ labels: point.labels, value: point.count, metricName: `${this.name}_count` });
    }
    return out;
  }
}

type Exported<M extends { get(): Promise<unknown> }> = Awaited<ReturnType<M['get']>>;

/**
 * A real prom-client metric of the family's type whose values are the family's: prom-client asks
 * every metric for its values (`get()`) when the registry is scraped. Its own `inc`/`set`/`observe`
 * are not used: measurements arrive through OpenTelemetry instruments.
 */
function bridgedMetric(family: Family): Counter | Gauge | Histogram {
  const config = { name: family.name, help: family.help, registers: [] };
  // prom-client's types declare `type` a numeric enum; at run time (and in its own metrics) it is the string.
  const exported = async () => ({
    name: family.name,
    help: family.help,
    type: family.kind,
    aggregator: 'sum' as const,
    collect: () => {},
    values: await family.values(),
  });
  switch (family.kind) {
    case 'counter':
      return new (class extends Counter {
        override async get() {
          return (await exported()) as unknown as Exported<Counter>;
        }
        override reset() {
          super.reset();
          family.clear();
        }
      })(config);
    case 'gauge':
      return new (class extends Gauge {
        override async get() {
          return (await exported()) as unknown as Exported<Gauge>;
        }
        override reset() {
          super.reset();
          family.clear();
        }
      })(config);
    case 'histogram':
      return new (class extends Histogram {
        override async get() {
          return (await exported()) as unknown as Exported<Histogram>;
        }
        /** What the registry reads for the text format (prom-client prefers it to `get`). */
        getForPromString() {
          return this.get();
        }
        override reset() {
          super.reset();
          family.clear();
        }
      })({ ...config, buckets: [...family.buckets] });
  }
}
