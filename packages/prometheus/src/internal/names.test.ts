import { describe, expect, it } from 'vitest';
import { labelName, prometheusName } from './names';

describe('prometheusName', () => {
  it.each([
    ['http.server.request.duration', 's', 'histogram', 'http_server_request_duration_seconds'],
    ['aikb.cache.requests', '{request}', 'counter', 'aikb_cache_requests_total'],
    ['aikb.db.client.connection.leaks', '{connection}', 'counter', 'aikb_db_client_connection_leaks_total'],
    ['db.client.connections.usage', '{connection}', 'gauge', 'db_client_connections_usage'],
    ['process.memory', 'By', 'gauge', 'process_memory_bytes'],
    ['job.latency', 'ms', 'histogram', 'job_latency_milliseconds'],
    ['cpu.utilization', '1', 'gauge', 'cpu_utilization_ratio'],
    ['items', '1', 'counter', 'items_total'],
    ['network.io', 'By/s', 'gauge', 'network_io_bytes_per_second'],
    ['requests_total', '', 'counter', 'requests_total'],
    ['wait_seconds', 's', 'histogram', 'wait_seconds'],
    ['aikb.retries', 'retry', 'counter', 'aikb_retries_retry_total'],
    ['queue--depth..now', undefined, 'gauge', 'queue_depth_now'],
    ['2xx.responses', '{response}', 'counter', '_2xx_responses_total'],
  ] as const)('%s in %j as a %s → %s', (name, unit, kind, expected) => {
    expect(prometheusName(name, unit, kind)).toBe(expected);
  });
});

describe('labelName', () => {
  it.each([
    ['http.route', 'http_route'],
    ['pool.name', 'pool_name'],
    ['outcome', 'outcome'],
    ['9lives', 'key_9lives'],
    ['__name__', 'key__name__'],
    ['a-b c', 'a_b_c'],
    ['', undefined],
  ])('%j → %j', (key, expected) => {
    expect(labelName(key)).toBe(expected);
  });
});
