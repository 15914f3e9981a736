import { checkOptions } from '../options';
import type { JsonValue, SagaDefinition, SagaDefinitionOptions, SagaRetryPolicy, SagaStepDefinition, SagaStepOptions } from './saga';

const NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

const DEFAULT_TIMEOUT_MS = 30_000;

function retryPolicy(where: string, policy: SagaRetryPolicy | undefined, retries: number): Readonly<Required<SagaRetryPolicy>> {
  const check = checkOptions(where, policy, true);
  check.number('retries', { min: 0, max: 100, integer: true });
  check.number('minDelayMs', { min: 0, max: 3_600_000 });
  check.number('maxDelayMs', { min: 0, max: 3_600_000 });
  check.number('factor', { min: 1, max: 100 });
  check.boolean('randomize');
  check.function('retryable');
  return Object.freeze({
    retries: policy?.retries ?? retries,
    minDelayMs: policy?.minDelayMs ?? 100,
    maxDelayMs: policy?.maxDelayMs ?? 5000,
    factor: policy?.factor ?? 2,
    randomize: policy?.randomize ?? true,
    retryable: policy?.retryable ?? (() => true),
  });
}

function build<I extends JsonValue, P extends Record<string, JsonValue>>(
  options: Required<SagaDefinitionOptions>,
  steps: readonly SagaStepDefinition[],
): SagaDefinition<I, P> {
  return Object.freeze({
    name: options.name,
    version: options.version,
    recovery: options.recovery,
    steps: Object.freeze([...steps]),
    step<N extends string, O extends JsonValue>(
      name: N extends keyof P ? never : N,
      step: SagaStepOptions<I, P, O>,
    ): SagaDefinition<I, P & { readonly [K in N]: O }> {
      const where = `saga ${options.name} step ${String(name)}`;
      if (typeof name !== 'string' || !NAME.test(name)) throw new TypeError(`${where}: name must match ${NAME} (got ${JSON.stringify(name)})`);
      if (steps.some((s) => s.name === name)) throw new TypeError(`${where}: a step with this name already exists`);
      const check = checkOptions(where, step);
      check.function('action', true);
      check.function('compensate');
      check.number('timeoutMs', { min: 1, max: 86_400_000, integer: true });
      check.number('compensationTimeoutMs', { min: 1, max: 86_400_000, integer: true });
      check.object('retry', 'a retry policy');
      check.object('compensationRetry', 'a retry policy');
      const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const definition: SagaStepDefinition = Object.freeze({
        name,
        // eslint-disable-next-line @typescript-eslint/unbound-method -- the step's own function, always called without a this
        action: step.action as unknown as SagaStepDefinition['action'],
        // eslint-disable-next-line @typescript-eslint/unbound-method -- the step's own function, always called without a this
        ...(step.compensate ? { compensate: step.compensate as unknown as SagaStepDefinition['compensate'] } : {}),
        timeoutMs,
        compensationTimeoutMs: step.compensationTimeoutMs ?? timeoutMs,
        retry: retryPolicy(`${where} retry`, step.retry, 2),
        compensationRetry: retryPolicy(`${where} compensationRetry`, step.compensationRetry, 5),
      });
      return build<I, P & { readonly [K in N]: O }>(options, [...steps, definition]);
    },
  });
}

/**
 * Starts a saga definition; add steps with `.step(name, { action, compensate })`, in order. Each
 * step's action sees the saga's input and the outputs of the steps before it, typed.
 *
 * @throws {TypeError} on a bad name, version or recovery policy
 * @example
 * ```ts
 * const upload = defineSaga<{ path: string }>({ name: 'document_upload', version: 1 })
 *   .step('drive', {
 *     action: async ({ input }) => ({ fileId: await drive.put(input.path) }),
 *     compensate: async ({ output }) => { if (output) await drive.deleteIfExists(output.fileId) },
 *   })
 *   .step('rows', {
 *     action: async ({ outputs }) => ({ documentId: await db.insertDocument(outputs.drive.fileId) }),
 *     compensate: async ({ input }) => db.deleteDocumentsOf(input.path),
 *   })
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no step has an output yet; each .step() adds one with &
export function defineSaga<I extends JsonValue>(options: SagaDefinitionOptions): SagaDefinition<I, {}> {
  const check = checkOptions('defineSaga', options);
  check.string('name', true);
  check.number('version', { min: 1, max: 2_147_483_647, integer: true });
  if (options.version === undefined) throw new TypeError('defineSaga: version must be a whole number ≥ 1 (got undefined)');
  if (!NAME.test(options.name)) throw new TypeError(`defineSaga: name must match ${NAME} (got ${JSON.stringify(options.name)})`);
  const recovery = options.recovery ?? 'compensate';
  if (recovery !== 'compensate' && recovery !== 'resume')
    throw new TypeError(`defineSaga: recovery must be "compensate" or "resume" (got ${JSON.stringify(recovery)})`);
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- as above
  return build<I, {}>({ name: options.name, version: options.version, recovery }, []);
}
