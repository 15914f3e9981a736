import {
  ErrorCode,
  OpenFeatureEventEmitter,
  ProviderEvents,
  StandardResolutionReasons,
  type EvaluationContext,
  type FlagMetadata,
  type JsonValue,
  type Provider,
  type ProviderMetadata,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import type { FeatureFlagClient, FlagEvaluation } from '@aikb/core/flags';

/** {@link createAikbProvider} options. */
export interface AikbProviderOptions {
  /** The flag client to resolve from. The provider starts it on `initialize`. */
  flags: FeatureFlagClient;
  /**
   * Close the client when OpenFeature closes the provider.
   * @default false (the client is yours)
   */
  closeClient?: boolean;
}

const REASONS: Record<FlagEvaluation['reason'], string> = {
  DISABLED: StandardResolutionReasons.DISABLED,
  STATIC: StandardResolutionReasons.STATIC,
  SPLIT: StandardResolutionReasons.SPLIT,
  RANDOM: StandardResolutionReasons.SPLIT,
  DEFAULT: StandardResolutionReasons.DEFAULT,
};

function metadata(evaluation: FlagEvaluation): FlagMetadata {
  const out: Record<string, string | number | boolean> = { aikbReason: evaluation.reason, stale: evaluation.stale };
  if (evaluation.bucket !== undefined) out.bucket = evaluation.bucket;
  if (evaluation.rolloutPercentage !== undefined) out.rolloutPercentage = evaluation.rolloutPercentage;
  if (evaluation.version !== undefined) out.version = evaluation.version;
  return out;
}

class AikbProvider implements Provider {
  readonly metadata: ProviderMetadata = { name: 'aikb' };
  readonly runsOn = 'server' as const;
  readonly events = new OpenFeatureEventEmitter();
  readonly #flags: FeatureFlagClient;
  readonly #closeClient: boolean;
  #unsubscribe: (() => void) | undefined;

  constructor(flags: FeatureFlagClient, closeClient: boolean) {
    this.#flags = flags;
    this.#closeClient = closeClient;
  }

  async initialize(): Promise<void> {
    this.#unsubscribe ??= this.#flags.onChange((names) => {
      this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: [...names] });
    });
    await this.#flags.start();
  }

  async onClose(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#closeClient) await this.#flags.close();
  }

  async resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    const targetingKey = context?.targetingKey;
    const evaluation = this.#flags.evaluate(flagKey, typeof targetingKey === 'string' ? { userId: targetingKey } : {}, defaultValue);
    if (evaluation.reason === 'DEFAULT') {
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.FLAG_NOT_FOUND,
        errorMessage: `no feature flag named ${flagKey}`,
      };
    }
    return {
      value: evaluation.value,
      variant: evaluation.value ? 'on' : 'off',
      // A possibly out-of-date answer says so; the aikb reason stays in the metadata.
      reason: evaluation.stale ? StandardResolutionReasons.STALE : REASONS[evaluation.reason],
      flagMetadata: metadata(evaluation),
    };
  }

  resolveStringEvaluation(_flagKey: string, defaultValue: string): Promise<ResolutionDetails<string>> {
    return this.#mismatch(defaultValue);
  }

  resolveNumberEvaluation(_flagKey: string, defaultValue: number): Promise<ResolutionDetails<number>> {
    return this.#mismatch(defaultValue);
  }

  resolveObjectEvaluation<T extends JsonValue>(_flagKey: string, defaultValue: T): Promise<ResolutionDetails<T>> {
    return this.#mismatch(defaultValue);
  }

  async #mismatch<T>(defaultValue: T): Promise<ResolutionDetails<T>> {
    return {
      value: defaultValue,
      reason: StandardResolutionReasons.ERROR,
      errorCode: ErrorCode.TYPE_MISMATCH,
      errorMessage: 'aikb feature flags are boolean: use getBooleanValue / getBooleanDetails',
    };
  }
}

/**
 * An OpenFeature server provider over a {@link FeatureFlagClient}: the evaluation context's
 * `targetingKey` is the user id that picks the rollout bucket; boolean flags resolve with a
 * variant (`on`/`off`), a standard reason (`STATIC`, `SPLIT`, `DISABLED`, `STALE`) and
 * `FLAG_NOT_FOUND` for an unknown flag; `PROVIDER_CONFIGURATION_CHANGED` is emitted with the
 * changed flag names whenever a flag changes here or on another instance.
 *
 * @throws {TypeError} when `flags` is not a FeatureFlagClient
 *
 * @example
 * ```ts
 * await OpenFeature.setProviderAndWait(createAikbProvider({ flags }))
 * const client = OpenFeature.getClient()
 * if (await client.getBooleanValue('priority_2_1_saga_pattern', false, { targetingKey: userId })) { ... }
 * ```
 */
export function createAikbProvider(options: AikbProviderOptions): Provider {
  const flags = options?.flags;
  if (!flags || typeof flags.evaluate !== 'function' || typeof flags.onChange !== 'function') {
    throw new TypeError('createAikbProvider: flags must be a FeatureFlagClient');
  }
  const closeClient = options.closeClient ?? false;
  if (typeof closeClient !== 'boolean') throw new TypeError('createAikbProvider: closeClient must be a boolean');
  return new AikbProvider(flags, closeClient);
}
