import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createFeatureFlagClient, createMemoryFlagStore, type InvalidationBus } from '@aikb/core';
import { registerFeatureFlagMetrics } from './index';

describe('registerFeatureFlagMetrics', () => {
  it('exposes evaluations by flag and result and cache hits and misses, growing between scrapes', async () => {
    const store = createMemoryFlagStore();
    await store.put('checkout', { enabled: true, rolloutPercentage: 100 }, 't');
    await store.put('legacy', { enabled: false, rolloutPercentage: 100 }, 't');
    const flags = createFeatureFlagClient({ store });
    await flags.start();
    const registry = new Registry();
    registerFeatureFlagMetrics({ flags, registry });
    flags.isEnabled('checkout');
    flags.isEnabled('checkout');
    flags.isEnabled('legacy');
    flags.isEnabled('unknown');
    let text = await registry.metrics();
    expect(text).toContain('aikb_feature_flag_evaluations_total{flag="checkout",result="enabled"} 2');
    expect(text).toContain('aikb_feature_flag_evaluations_total{flag="legacy",result="disabled"} 1');
    expect(text).toContain('aikb_cache_requests_total{cache="feature_flags",result="hit"} 3');
    expect(text).toContain('aikb_cache_requests_total{cache="feature_flags",result="miss"} 1');
    expect(text).toContain('aikb_feature_flag_stale 0');
    expect(text).toContain('aikb_feature_flag_propagation_degraded 0');
    flags.isEnabled('checkout');
    text = await registry.metrics();
    expect(text).toContain('aikb_feature_flag_evaluations_total{flag="checkout",result="enabled"} 3');
    await flags.close();
  });

  it('shows 1 in aikb_feature_flag_propagation_degraded while the bus is down', async () => {
    const store = createMemoryFlagStore();
    const bus: InvalidationBus = {
      kind: 'redis',
      state: 'disconnected',
      publish: async () => {
        throw new Error('down');
      },
      subscribe: () => () => {},
      onStateChange: () => () => {},
      close: async () => {},
    };
    const flags = createFeatureFlagClient({ store, bus });
    await flags.start();
    const registry = new Registry();
    registerFeatureFlagMetrics({ flags, registry });
    expect(await registry.metrics()).toContain('aikb_feature_flag_propagation_degraded 1');
    await flags.close();
  });
});
