/**
 * Reads what a primitive recorded through an OpenTelemetry `Meter`, with the real metrics SDK
 * (`@opentelemetry/sdk-metrics`): tests pass `meter` to a factory and read the figures back.
 */
import type { Meter } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { DataPointType } from '@opentelemetry/sdk-metrics';

/** One data point as a test reads it: the attributes and the value (a number, or a histogram). */
export interface RecordedPoint {
  attributes: Record<string, unknown>;
  /** Counter / gauge / up-down value, or for a histogram its count. */
  value: number;
  /** For a histogram: the sum of the recorded values. */
  sum?: number;
}

export interface RecordingMeter {
  meter: Meter;
  /** Collects now and returns the points of the instrument `name` (empty when nothing was recorded). */
  points(name: string): Promise<RecordedPoint[]>;
  /** The sum of the values of `name` over the points whose attributes include `attributes`. */
  total(name: string, attributes?: Record<string, unknown>): Promise<number>;
  /** Names of every instrument that has recorded something. */
  names(): Promise<string[]>;
  shutdown(): Promise<void>;
}

/** A meter backed by the real OpenTelemetry metrics SDK, with cumulative in-memory collection. */
export function createRecordingMeter(): RecordingMeter {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader: MetricReader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter('aikb-test');

  async function collect() {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
  }

  async function points(name: string): Promise<RecordedPoint[]> {
    const metric = (await collect()).find((m) => m.descriptor.name === name);
    if (!metric) return [];
    return metric.dataPoints.map((point) => {
      const attributes = { ...point.attributes };
      if (metric.dataPointType === DataPointType.HISTOGRAM || metric.dataPointType === DataPointType.EXPONENTIAL_HISTOGRAM) {
        const value = point.value as { count: number; sum?: number };
        return { attributes, value: value.count, sum: value.sum };
      }
      return { attributes, value: point.value as number };
    });
  }

  return {
    meter,
    points,
    async total(name, attributes = {}) {
      const matching = (await points(name)).filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
      return matching.reduce((sum, p) => sum + p.value, 0);
    },
    async names() {
      return (await collect()).map((m) => m.descriptor.name);
    },
    shutdown: () => provider.shutdown(),
  };
}
