import type { IncomingMessage, ServerResponse } from 'node:http';
import { diag } from '@opentelemetry/api';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { checkObject, checkOptions } from '@aikb/core/options';

/** {@link createMetricsHandler} options. */
export interface MetricsHandlerOptions {
  /** The registry to serve (the one given to `createPrometheusMeterProvider`). */
  registry: Registry;
}

/**
 * A framework-free `/metrics` handler: answers `GET` and `HEAD` with every metric of `registry` in
 * its text format (`Content-Type` from the registry), anything else with 405. When collecting
 * fails, it answers 500 with a short text (the error goes to OpenTelemetry's `diag`, never to the
 * client). Mount it with `app.get('/metrics', handler)` in Express or call it from `http.createServer`.
 *
 * @throws {TypeError} at construction, naming the option, when one is missing or invalid
 * @example
 * ```ts
 * app.get('/metrics', createMetricsHandler({ registry }))
 * ```
 */
export function createMetricsHandler(options: MetricsHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const check = checkOptions('createMetricsHandler', options);
  check.object('registry', 'a prom-client Registry', true, ['metrics']);
  const { registry } = options;

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    let body: string;
    try {
      body = await registry.metrics();
    } catch (error) {
      diag.error('@aikb/prometheus: collecting metrics failed', error);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n');
      return;
    }
    res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  return (req, res) => {
    void respond(req, res);
  };
}

// Gauges named *_total break Prometheus' naming rule (`promtool check metrics`); the per-type
// gauges beside them (nodejs_active_handles, ...) carry the same counts.
const MISNAMED_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * Adds prom-client's process metrics (CPU, memory, event-loop lag, GC, handles) to `registry`,
 * once per registry however often it is called, without the three gauges whose `_total` names
 * `promtool check metrics` rejects.
 *
 * @throws {TypeError} when `registry` is not a prom-client Registry
 */
export function registerProcessMetrics(registry: Registry): void {
  checkObject('registerProcessMetrics', 'registry', registry, 'a prom-client Registry', ['getSingleMetric', 'removeSingleMetric']);
  if (registry.getSingleMetric('process_cpu_user_seconds_total')) return;
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_GAUGES) registry.removeSingleMetric(name);
}
