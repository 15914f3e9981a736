import { spawnSync } from 'node:child_process';
import { metrics, type Attributes } from '@opentelemetry/api';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createPrometheusMeterProvider, DEFAULT_BUCKETS, DROPPED_MEASUREMENTS_METRIC } from './index';

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

function setup(options: { maxSeriesPerMetric?: number; collectTimeoutMs?: number } = {}) {
  const registry = new Registry();
  const provider = createPrometheusMeterProvider({ registry, ...options });
  return { registry, provider, meter: provider.getMeter('test') };
}

async function families(registry: Registry) {
  return Object.fromEntries(parsePrometheusTextFormat(await registry.metrics()).map((f) => [f.name, f]));
}

async function dropped(registry: Registry, metric: string, reason: string): Promise<number> {
  const found = (await registry.getSingleMetric(DROPPED_MEASUREMENTS_METRIC)!.get()).values.find(
    (v) => v.labels.metric === metric && v.labels.reason === reason,
  );
  return found?.value ?? 0;
}

describe('createPrometheusMeterProvider', () => {
  afterEach(() => {
    metrics.disable();
  });

  it('makes a Counter a Prometheus counter named with _total, its description the HELP, its attributes labels', async () => {
    const { registry, meter } = setup();
    const counter = meter.createCounter('aikb.cache.requests', { unit: '{request}', description: 'Cache lookups, by cache and result.' });
    counter.add(2, { cache: 'feature_flags', result: 'hit' });
    counter.add(1, { result: 'hit', cache: 'feature_flags' });
    counter.add(1, { cache: 'feature_flags', result: 'miss' });
    const text = await registry.metrics();
    expect(text).toContain('# HELP aikb_cache_requests_total Cache lookups, by cache and result.\n# TYPE aikb_cache_requests_total counter\n');
    expect(text).toContain('aikb_cache_requests_total{cache="feature_flags",result="hit"} 3\n');
    expect(text).toContain('aikb_cache_requests_total{cache="feature_flags",result="miss"} 1');
  });

  it('makes a Histogram a Prometheus histogram with the advised buckets, le first, attributes in their order', async () => {
    const { registry, meter } = setup();
    const histogram = meter.createHistogram('http.server.request.duration', {
      unit: 's',
      description: 'Duration of HTTP server requests.',
      advice: { explicitBucketBoundaries: [0.1, 0.5, 1] },
    });
    for (const seconds of [0.05, 0.1, 0.3, 2]) histogram.record(seconds, { 'http.request.method': 'GET', 'http.response.status_code': 200 });
    const text = await registry.metrics();
    expect(text).toContain('# TYPE http_server_request_duration_seconds histogram');
    expect(text).toContain(
      [
        'http_server_request_duration_seconds_bucket{le="0.1",http_request_method="GET",http_response_status_code="200"} 2',
        'http_server_request_duration_seconds_bucket{le="0.5",http_request_method="GET",http_response_status_code="200"} 3',
        'http_server_request_duration_seconds_bucket{le="1",http_request_method="GET",http_response_status_code="200"} 3',
        'http_server_request_duration_seconds_bucket{le="+Inf",http_request_method="GET",http_response_status_code="200"} 4',
        'http_server_request_duration_seconds_sum{http_request_method="GET",http_response_status_code="200"} 2.45',
        'http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200"} 4',
      ].join('\n'),
    );
  });

  it('uses the OpenTelemetry default buckets without advice', async () => {
    const { registry, meter } = setup();
    meter.createHistogram('job.latency', { unit: 'ms' }).record(7);
    const [family] = parsePrometheusTextFormat(await registry.metrics()).filter((f) => f.name === 'job_latency_milliseconds');
    expect(Object.keys(family!.metrics[0]!.buckets!)).toEqual([...DEFAULT_BUCKETS.map(String), '+Inf']);
    expect(family!.help).toBe('description missing');
  });

  it('makes UpDownCounters and Gauges Prometheus gauges', async () => {
    const { registry, meter } = setup();
    const inFlight = meter.createUpDownCounter('jobs.in_flight', { unit: '{job}', description: 'Jobs running.' });
    inFlight.add(3);
    inFlight.add(-2);
    meter.createGauge('cpu.utilization', { unit: '1', description: 'CPU.' }).record(0.25, { cpu: 0 });
    const found = await families(registry);
    expect(found.jobs_in_flight).toMatchObject({ type: 'GAUGE', metrics: [{ value: '1' }] });
    expect(found.cpu_utilization_ratio).toMatchObject({ type: 'GAUGE', metrics: [{ value: '0.25', labels: { cpu: '0' } }] });
  });

  it('runs observable callbacks at scrape time, batch ones once per scrape for all their instruments', async () => {
    const { registry, meter } = setup();
    let used = 2;
    let scrapes = 0;
    const usage = meter.createObservableUpDownCounter('db.client.connections.usage', { unit: '{connection}', description: 'Connections.' });
    const max = meter.createObservableUpDownCounter('db.client.connections.max', { unit: '{connection}', description: 'Most connections.' });
    const leaks = meter.createObservableCounter('aikb.db.client.connection.leaks', { unit: '{connection}', description: 'Leaks.' });
    leaks.addCallback((result) => result.observe(5, { 'pool.name': 'main' }));
    const batch = (result: Parameters<Parameters<typeof meter.addBatchObservableCallback>[0]>[0]) => {
      scrapes++;
      result.observe(usage, used, { 'pool.name': 'main', state: 'used' });
      result.observe(usage, 10 - used, { 'pool.name': 'main', state: 'idle' });
      result.observe(max, 10, { 'pool.name': 'main' });
    };
    meter.addBatchObservableCallback(batch, [usage, max]);
    let text = await registry.metrics();
    expect(scrapes).toBe(1);
    expect(text).toContain('db_client_connections_usage{pool_name="main",state="used"} 2');
    expect(text).toContain('db_client_connections_max{pool_name="main"} 10');
    expect(text).toContain('# TYPE aikb_db_client_connection_leaks_total counter\naikb_db_client_connection_leaks_total{pool_name="main"} 5');
    used = 7;
    text = await registry.metrics();
    expect(scrapes).toBe(2);
    expect(text).toContain('db_client_connections_usage{pool_name="main",state="used"} 7');

    meter.removeBatchObservableCallback(batch, [usage, max]);
    text = await registry.metrics();
    expect(scrapes).toBe(2);
    expect(text).not.toContain('db_client_connections_usage{');
    expect(text).toContain('# TYPE db_client_connections_usage gauge');
  });

  it('keeps serving the other observations when a callback throws, rejects or never settles', async () => {
    const { registry, meter } = setup({ collectTimeoutMs: 50 });
    const gauge = meter.createObservableGauge('queue.depth', { unit: '{job}', description: 'Depth.' });
    gauge.addCallback(() => {
      throw new Error('broken');
    });
    gauge.addCallback(async () => {
      throw new Error('rejected');
    });
    let late: ((v: number) => void) | undefined;
    gauge.addCallback((result) => new Promise<void>(() => void (late = (v) => result.observe(v, { queue: 'late' }))));
    gauge.addCallback((result) => result.observe(4, { queue: 'mail' }));
    const text = await registry.metrics();
    expect(text).toContain('queue_depth{queue="mail"} 4');
    late!(9); // after its collection ended: ignored
    expect(await registry.metrics()).not.toContain('queue="late"');
  });

  it('drops and counts new label sets beyond maxSeriesPerMetric, keeping the ones it has', async () => {
    const { registry, meter } = setup({ maxSeriesPerMetric: 2 });
    const counter = meter.createCounter('aikb.flag.evaluations', { unit: '{evaluation}', description: 'Evaluations.' });
    for (const flag of ['a', 'b', 'c', 'd', 'a']) counter.add(1, { flag });
    const found = await families(registry);
    expect(found.aikb_flag_evaluations_total!.metrics).toEqual([
      { value: '2', labels: { flag: 'a' } },
      { value: '1', labels: { flag: 'b' } },
    ]);
    expect(await dropped(registry, 'aikb_flag_evaluations_total', 'cardinality')).toBe(2);
  });

  it('drops and counts invalid values: negative counter increments and histogram values, NaN, Infinity', async () => {
    const { registry, meter } = setup();
    const counter = meter.createCounter('things', { description: 'Things.' });
    const histogram = meter.createHistogram('wait', { unit: 's', description: 'Wait.' });
    const gauge = meter.createGauge('level', { description: 'Level.' });
    counter.add(-1);
    counter.add(Number.NaN);
    counter.add('3' as unknown as number);
    histogram.record(-0.5);
    gauge.record(Number.POSITIVE_INFINITY);
    counter.add(1);
    expect(await dropped(registry, 'things_total', 'invalid_value')).toBe(3);
    expect(await dropped(registry, 'wait_seconds', 'invalid_value')).toBe(1);
    expect(await dropped(registry, 'level', 'invalid_value')).toBe(1);
    expect(await registry.metrics()).toContain('things_total 1');
  });

  it('shares a metric between instruments of the same name and type (two monitors, two meters, two providers)', async () => {
    const registry = new Registry();
    const first = createPrometheusMeterProvider({ registry }).getMeter('a');
    const second = createPrometheusMeterProvider({ registry }).getMeter('b');
    first.createCounter('aikb.leaks', { description: 'Leaks.' }).add(1, { pool: 'x' });
    second.createCounter('aikb.leaks', { description: 'Leaks.' }).add(2, { pool: 'x' });
    expect(await registry.metrics()).toContain('aikb_leaks_total{pool="x"} 3');
  });

  it('drops and counts what an instrument records when its name is taken by another type or outside the bridge', async () => {
    const { registry, meter } = setup();
    new Counter({ name: 'taken_total', help: 'Registered by hand.', registers: [registry] });
    meter.createCounter('taken').add(1);
    meter.createCounter('shape', { description: 'A counter.' }).add(1);
    meter.createObservableCounter('shape').addCallback((r) => r.observe(5));
    meter.createCounter('bad name!').add(1);
    const text = await registry.metrics();
    expect(text).toContain('taken_total 0');
    expect(text).toContain('shape_total 1');
    expect(await dropped(registry, 'taken_total', 'conflict')).toBe(1);
  });

  it('makes safe labels of hostile attributes: sanitized names, no le on histograms, long values cut, non-scalars dropped', async () => {
    const { registry, meter } = setup();
    const attributes = {
      'a.b': 'x',
      a_b: 'y',
      le: 'no',
      '9z': 1,
      'quote"key': 'va"l\nue',
      big: 'v'.repeat(5000),
      list: ['p', 'q'],
      none: undefined,
    } as unknown as Attributes;
    meter.createHistogram('h', { advice: { explicitBucketBoundaries: [1] } }).record(0.5, attributes);
    const text = await registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith('h_count'))!;
    expect(line).toContain('a_b="x;y"');
    expect(line).toContain('key_le="no"');
    expect(line).toContain('key_9z="1"');
    expect(line).toContain('quote_key="va\\"l\\nue"');
    expect(line).toContain(`big="${'v'.repeat(1024)}"`);
    expect(line).toContain('list="[\\"p\\",\\"q\\"]"');
    expect(line).not.toContain('none');
    expect(parsePrometheusTextFormat(text).find((f) => f.name === 'h')!.metrics).toHaveLength(1);
  });

  it('keeps one series per label set, whatever the attribute order, and never merges two sets whose values look alike', async () => {
    const { registry, meter } = setup();
    const counter = meter.createCounter('sets');
    // Pairs a naive join (by "," "=" ";" or NUL, or without the lengths) would merge into one series.
    const sets: Attributes[] = [
      { a: 'x,b=y' },
      { a: 'x', b: 'y' },
      { a: 'x\u00001\u0000b' },
      { a: 'x', b: '' },
      { a: '' },
      { b: 'x' },
      { a: '1', b: '23' },
      { a: '12', b: '3' },
      { z: 'last', a: 'first', m: 'middle' },
    ];
    for (const attributes of sets) counter.add(1, attributes);
    counter.add(1, { m: 'middle', z: 'last', a: 'first' });
    counter.add(1, { b: 'y', a: 'x' });
    const values = (await registry.getSingleMetric('sets_total')!.get()).values;
    expect(values).toHaveLength(sets.length);
    expect(values.find((v) => v.labels.a === 'first')).toMatchObject({ value: 2, labels: { a: 'first', m: 'middle', z: 'last' } });
    expect(values.find((v) => v.labels.a === 'x' && v.labels.b === 'y')!.value).toBe(2);
    expect(values.filter((v) => v.value === 1)).toHaveLength(sets.length - 2);
  });

  it('works as the global MeterProvider of @opentelemetry/api', async () => {
    const { registry, provider } = setup();
    metrics.setGlobalMeterProvider(provider);
    metrics.getMeter('@aikb/core').createCounter('global.things', { description: 'Things.' }).add(4, { kind: 'k' });
    expect(await registry.metrics()).toContain('global_things_total{kind="k"} 4');
  });

  it('empties every metric on registry.resetMetrics()', async () => {
    const { registry, meter } = setup();
    meter.createCounter('resettable', { description: 'R.' }).add(3);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('resettable_total 3');
  });

  it('rejects bad options at construction, naming the option', () => {
    expect(() => createPrometheusMeterProvider({} as never)).toThrow(/registry must be a prom-client Registry/);
    expect(() => createPrometheusMeterProvider({ registry: new Registry(), maxSeriesPerMetric: 0 })).toThrow(/maxSeriesPerMetric must be a whole number/);
    expect(() => createPrometheusMeterProvider({ registry: new Registry(), defaultBuckets: [1, 1] })).toThrow(/defaultBuckets must be increasing/);
  });

  it.runIf(hasPromtool)('passes promtool check metrics with every kind of instrument', async () => {
    const { registry, meter } = setup();
    meter.createCounter('aikb.cache.requests', { unit: '{request}', description: 'Cache lookups.' }).add(1, { result: 'hit' });
    meter.createHistogram('http.server.request.duration', { unit: 's', description: 'Durations.' }).record(0.2, { 'http.route': '/x' });
    meter.createUpDownCounter('jobs.active', { unit: '{job}', description: 'Jobs.' }).add(1);
    meter.createGauge('memory.used', { unit: 'By', description: 'Memory.' }).record(1024);
    meter.createObservableGauge('pool.usage', { unit: '1', description: 'Usage.' }).addCallback((r) => r.observe(0.5));
    meter.createObservableCounter('aikb.leaks', { unit: '{connection}', description: 'Leaks.' }).addCallback((r) => r.observe(0));
    const run = spawnSync('promtool', ['check', 'metrics'], { input: await registry.metrics(), encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
    expect(run.status).toBe(0);
  });
});
