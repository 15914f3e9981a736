import { systemClock } from '../clock';
import { ValidationError } from '../errors';
import { checkOptions } from '../options';
import type {
  EndpointErrors,
  ErrorMetrics,
  ErrorMetricsOptions,
  ErrorReport,
  ErrorTypeCount,
  ErrorWindow,
  OutcomeError,
  RequestOutcome,
} from './error-metrics';

const WINDOWS: Record<ErrorWindow, { slots: number; slotMs: number }> = {
  '5m': { slots: 30, slotMs: 10_000 },
  '1h': { slots: 60, slotMs: 60_000 },
  '24h': { slots: 96, slotMs: 15 * 60_000 },
};
const WINDOW_NAMES = Object.keys(WINDOWS) as ErrorWindow[];
const OTHER = '(other)';
const MAX_MESSAGE = 200;

type TypeCounts = Map<string, { count: number; message: string }>;

interface Slot {
  epoch: number;
  requests: number;
  errors: number;
  clientErrors: number;
  types: TypeCounts | undefined;
  clientTypes: TypeCounts | undefined;
}

function countType(types: TypeCounts, error: OutcomeError, maxTypes: number): void {
  let type = error.type || 'Error';
  if (!types.has(type) && types.size >= maxTypes) type = OTHER;
  const entry = types.get(type) ?? { count: 0, message: '' };
  entry.count++;
  if (error.message) entry.message = error.message.slice(0, MAX_MESSAGE);
  types.set(type, entry);
}

/** Adds a slot's type counts into `totals`; the newest slot's message is the sample. */
function addTypes(totals: Map<string, { count: number; message: string; epoch: number }>, types: TypeCounts | undefined, epoch: number): void {
  for (const [type, { count, message }] of types ?? []) {
    const total = totals.get(type) ?? { count: 0, message, epoch };
    total.count += count;
    if (epoch >= total.epoch && message) Object.assign(total, { message, epoch });
    totals.set(type, total);
  }
}

function topOf(totals: Map<string, { count: number; message: string }>, top: number): ErrorTypeCount[] {
  return [...totals]
    .map(([type, { count, message }]) => ({ type, count, message }))
    .sort((a, b) => b.count - a.count || a.type.localeCompare(b.type))
    .slice(0, top);
}

const rate = (count: number, requests: number) => (requests === 0 ? 0 : Math.round((count / requests) * 10_000) / 10_000);

/** One window of one endpoint: a ring of slots, each stamped with the slot number it counts. */
class Ring {
  readonly #slots: Slot[];
  constructor(
    readonly size: number,
    readonly slotMs: number,
  ) {
    this.#slots = Array.from({ length: size }, () => ({ epoch: -1, requests: 0, errors: 0, clientErrors: 0, types: undefined, clientTypes: undefined }));
  }

  record(now: number, outcome: RequestOutcome, maxTypes: number): void {
    const epoch = Math.floor(now / this.slotMs);
    const slot = this.#slots[epoch % this.size]!;
    if (slot.epoch !== epoch) {
      slot.epoch = epoch;
      slot.requests = 0;
      slot.errors = 0;
      slot.clientErrors = 0;
      slot.types?.clear();
      slot.clientTypes?.clear();
    }
    slot.requests++;
    if (outcome.error) {
      slot.errors++;
      countType((slot.types ??= new Map() as TypeCounts), outcome.error, maxTypes);
    } else if (outcome.clientError) {
      slot.clientErrors++;
      countType((slot.clientTypes ??= new Map() as TypeCounts), outcome.clientError, maxTypes);
    }
  }

  sum(now: number, top: number): Omit<EndpointErrors, 'endpoint'> {
    const current = Math.floor(now / this.slotMs);
    let requestCount = 0;
    let errorCount = 0;
    let clientErrorCount = 0;
    const types = new Map<string, { count: number; message: string; epoch: number }>();
    const clientTypes = new Map<string, { count: number; message: string; epoch: number }>();
    for (const slot of this.#slots) {
      if (slot.epoch <= current - this.size || slot.epoch > current) continue;
      requestCount += slot.requests;
      errorCount += slot.errors;
      clientErrorCount += slot.clientErrors;
      addTypes(types, slot.types, slot.epoch);
      addTypes(clientTypes, slot.clientTypes, slot.epoch);
    }
    return {
      requestCount,
      errorCount,
      errorRate: rate(errorCount, requestCount),
      topErrors: topOf(types, top),
      clientErrorCount,
      clientErrorRate: rate(clientErrorCount, requestCount),
      topClientErrors: topOf(clientTypes, top),
    };
  }
}

/**
 * Creates {@link ErrorMetrics}.
 *
 * @throws {TypeError} when an option is invalid (the message names it)
 *
 * @example
 * ```ts
 * const errors = createErrorMetrics()
 * errors.record({ endpoint: '/api/documents/upload', error: { type: 'SagaCompensationError', message: 'Failed to delete from Drive' } })
 * errors.record({ endpoint: '/api/documents/:id', clientError: { type: 'NotFoundError', message: 'no document with this id' } })
 * errors.report('1h')   // { window: '1h', errors: [{ endpoint: '/api/documents/upload', errorCount: 1, errorRate: 1, topErrors: [...], clientErrorCount: 0, ... }, ...] }
 * ```
 */
export function createErrorMetrics(options: ErrorMetricsOptions = {}): ErrorMetrics {
  const check = checkOptions('createErrorMetrics', options, true);
  check.clock();
  for (const name of ['maxEndpoints', 'maxErrorTypes', 'topErrors'] as const) check.number(name, { min: 1, integer: true });
  const clock = options.clock ?? systemClock;
  const { maxEndpoints = 200, maxErrorTypes = 10, topErrors: top = 5 } = options;
  const endpoints = new Map<string, Record<ErrorWindow, Ring>>();

  function rings(endpoint: string): Record<ErrorWindow, Ring> {
    let found = endpoints.get(endpoint);
    if (!found) {
      if (endpoints.size >= maxEndpoints && endpoint !== OTHER) return rings(OTHER);
      found = Object.fromEntries(WINDOW_NAMES.map((w) => [w, new Ring(WINDOWS[w].slots, WINDOWS[w].slotMs)])) as Record<ErrorWindow, Ring>;
      endpoints.set(endpoint, found);
    }
    return found;
  }

  function checkWindow(window: unknown): ErrorWindow {
    // Own keys only: `__proto__`, `constructor` or `toString` are in every object.
    if (typeof window !== 'string' || !Object.hasOwn(WINDOWS, window)) {
      throw new ValidationError('window', `window must be one of ${WINDOW_NAMES.join(', ')} (got ${JSON.stringify(window)})`);
    }
    return window as ErrorWindow;
  }

  function all(window: ErrorWindow): EndpointErrors[] {
    const now = clock.now();
    return [...endpoints].map(([endpoint, byWindow]) => ({ endpoint, ...byWindow[window].sum(now, top) }));
  }

  return {
    windows: WINDOW_NAMES,
    record(outcome) {
      if (!outcome || typeof outcome.endpoint !== 'string' || outcome.endpoint.length === 0) {
        throw new TypeError('ErrorMetrics.record: endpoint must be a non-empty string');
      }
      const now = clock.now();
      const byWindow = rings(outcome.endpoint);
      for (const window of WINDOW_NAMES) byWindow[window].record(now, outcome, maxErrorTypes);
    },
    report(window): ErrorReport {
      const checked = checkWindow(window);
      const errors = all(checked)
        .filter((e) => e.errorCount > 0 || e.clientErrorCount > 0)
        .sort((a, b) => b.errorCount - a.errorCount || b.clientErrorCount - a.clientErrorCount || a.endpoint.localeCompare(b.endpoint));
      return { window: checked, errors };
    },
    endpoints(window) {
      return all(checkWindow(window));
    },
  };
}
