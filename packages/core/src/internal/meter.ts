import { metrics, type Meter } from '@opentelemetry/api';
import { checkObject } from '../options';

/** What every core primitive's metrics are recorded through unless its `meter` option says otherwise. */
export const CORE_METER_NAME = '@aikb/core';

/**
 * A factory's `meter` option resolved: the given meter (checked at construction), or the global
 * meter provider's `@aikb/core` meter, a no-op unless the app registered an OpenTelemetry SDK
 * before creating the primitive.
 *
 * @throws {TypeError} naming `factory` and `meter` when the option is not a Meter
 */
export function resolveMeter(factory: string, meter: unknown): Meter {
  if (meter === undefined) return metrics.getMeter(CORE_METER_NAME);
  checkObject(factory, 'meter', meter, 'an OpenTelemetry Meter', ['createCounter', 'createHistogram', 'createObservableCounter', 'addBatchObservableCallback']);
  return meter as Meter;
}
