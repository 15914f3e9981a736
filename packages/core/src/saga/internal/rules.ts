import { AikbError, ValidationError } from '../../errors';
import { errorType } from '../../tracing/with-span';
import type { JsonValue, SagaErrorInfo, SagaState, SagaStepRecord } from '../saga';

/** The allowed transitions (see {@link SagaState}); `parked` → its `parkedFrom` is checked apart. */
export const TRANSITIONS: Readonly<Record<SagaState, readonly SagaState[]>> = Object.freeze({
  running: ['completed', 'compensating', 'parked'],
  compensating: ['compensated', 'cancelled', 'compensation_failed', 'parked'],
  compensation_failed: ['compensating'],
  parked: ['running', 'compensating'],
  completed: [],
  compensated: [],
  cancelled: [],
});

/** States a runner works in (leased, claimable when the lease expires). */
export const ACTIVE_STATES: readonly SagaState[] = ['running', 'compensating'];
/** States that wait for an operator. */
export const OPERATOR_STATES: readonly SagaState[] = ['compensation_failed', 'parked'];
/** States nothing leaves. */
export const FINAL_STATES: readonly SagaState[] = ['completed', 'compensated', 'cancelled'];
/** States that set `finishedAtMs`. */
export const FINISHED_STATES: readonly SagaState[] = [...FINAL_STATES, ...OPERATOR_STATES];

/** @throws {AikbError} `FAILED_PRECONDITION` when `from → to` is not allowed */
export function assertTransition(id: string, from: SagaState, to: SagaState): void {
  if (!TRANSITIONS[from].includes(to)) {
    throw new AikbError('FAILED_PRECONDITION', `saga ${id} cannot go from ${from} to ${to}`, { details: { reason: 'transition', from, to } });
  }
}

export const leaseLost = (id: string) =>
  new AikbError('FAILED_PRECONDITION', `saga ${id} is no longer leased to this runner, or its state changed`, { details: { reason: 'lease_lost' } });

export const isLeaseLost = (error: unknown) => error instanceof AikbError && error.details.reason === 'lease_lost';

export const notFound = (id: string) => new AikbError('NOT_FOUND', `no saga with id ${id}`, { details: { key: id } });

export const wrongState = (id: string, state: SagaState, wanted: string) =>
  new AikbError('FAILED_PRECONDITION', `saga ${id} is ${state}; it must be ${wanted}`, { details: { reason: 'state', state } });

/** Steps whose compensation runs: every action that may have taken effect (all but `failed`). */
export function compensable(step: SagaStepRecord): boolean {
  return step.phase === 'action' && step.status !== 'failed';
}

const MAX_MESSAGE = 2000;

/** An error as the log keeps it. */
export function errorInfo(error: unknown, step?: string): SagaErrorInfo {
  const message = (error instanceof Error ? error.message : String(error)).slice(0, MAX_MESSAGE);
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return {
    type: errorType(error).slice(0, 200),
    message,
    ...(typeof code === 'string' ? { code: code.slice(0, 100) } : {}),
    ...(step !== undefined ? { step } : {}),
  };
}

/** An error the log kept, as an Error again (for a cause read back after a restart). */
export function errorFromInfo(info: SagaErrorInfo): Error {
  const error = new Error(info.message);
  error.name = info.type;
  if (info.code !== undefined) Object.assign(error, { code: info.code });
  return error;
}

const MAX_DEPTH = 64;

/**
 * Whether `value` is JSON that round-trips: plain objects, arrays, finite numbers, strings
 * without NUL (Postgres refuses them in jsonb), booleans, null; no cycles, no class instances.
 * Returns the path of the first offending value, or `undefined`.
 */
export function nonJsonPath(value: unknown, path = '', depth = 0, seen: Set<object> = new Set()): string | undefined {
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'string') return value.includes('\u0000') ? path || '(root)' : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path || '(root)';
  if (typeof value !== 'object' || depth > MAX_DEPTH || seen.has(value)) return path || '(root)';
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const bad = nonJsonPath(value[i], `${path}[${i}]`, depth + 1, seen);
        if (bad !== undefined) return bad;
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return path || '(root)';
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\u0000')) return `${path}.${key}`;
      const bad = nonJsonPath(item, path ? `${path}.${key}` : key, depth + 1, seen);
      if (bad !== undefined) return bad;
    }
    return undefined;
  } finally {
    seen.delete(value);
  }
}

/** @throws {ValidationError} naming `field` (and the path inside it) when `value` is not JSON */
export function assertJson(field: string, value: unknown): asserts value is JsonValue {
  const bad = nonJsonPath(value);
  if (bad !== undefined)
    throw new ValidationError(field, `${field} must be JSON (plain objects, arrays, finite numbers, strings, booleans, null); ${bad} is not`);
}

/** A deep copy through JSON, so the log never shares objects with the caller. */
export const copyJson = <T extends JsonValue>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** Canonical JSON (sorted keys), to compare two inputs. */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${(value as readonly JsonValue[]).map(canonicalJson).join(',')}]`;
  const record = value as { readonly [key: string]: JsonValue };
  return `{${Object.keys(record)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key]!)}`)
    .join(',')}}`;
}
