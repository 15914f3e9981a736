import { randomUUID } from 'node:crypto';
import { ErrorCode, OpenFeature, ProviderEvents, type EventDetails } from '@openfeature/server-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { createInProcessInvalidationBus } from '@aikb/core/cache';
import { createFeatureFlagClient, createMemoryFlagStore, rolloutBucket } from '@aikb/core/flags';
import { until } from '@aikb/test-support';
import { createAikbProvider } from './index';

afterAll(async () => {
  await OpenFeature.close();
});

/** A provider in a domain of its own, set through the SDK, and a client for that domain. */
async function setUp() {
  const store = createMemoryFlagStore();
  await store.put('checkout', { enabled: true, rolloutPercentage: 50 }, 't');
  await store.put('everyone', { enabled: true, rolloutPercentage: 100 }, 't');
  await store.put('legacy', { enabled: false, rolloutPercentage: 100 }, 't');
  const bus = createInProcessInvalidationBus();
  const flags = createFeatureFlagClient({ store, bus });
  const domain = randomUUID();
  await OpenFeature.setProviderAndWait(domain, createAikbProvider({ flags }));
  return { store, bus, flags, client: OpenFeature.getClient(domain) };
}

describe('createAikbProvider through @openfeature/server-sdk', () => {
  it('resolves booleans with targetingKey as the user, with variant and reason', async () => {
    const { client } = await setUp();
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const details = await client.getBooleanDetails('checkout', false, { targetingKey: user });
      expect(details).toMatchObject({
        flagKey: 'checkout',
        value: rolloutBucket('checkout', user) <= 50,
        variant: rolloutBucket('checkout', user) <= 50 ? 'on' : 'off',
        reason: 'SPLIT',
        flagMetadata: { bucket: rolloutBucket('checkout', user), rolloutPercentage: 50 },
      });
      expect(details.errorCode).toBeUndefined();
    }
    expect(await client.getBooleanDetails('everyone', false)).toMatchObject({ value: true, reason: 'STATIC', variant: 'on' });
    expect(await client.getBooleanDetails('legacy', true)).toMatchObject({ value: false, reason: 'DISABLED', variant: 'off' });
  });

  it('answers an unknown flag with the default and FLAG_NOT_FOUND', async () => {
    const { client } = await setUp();
    expect(await client.getBooleanDetails('missing', true)).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.FLAG_NOT_FOUND });
  });

  it('answers a non-boolean lookup with the default and TYPE_MISMATCH', async () => {
    const { client } = await setUp();
    expect(await client.getStringDetails('checkout', 'x')).toMatchObject({ value: 'x', errorCode: ErrorCode.TYPE_MISMATCH });
    expect(await client.getNumberValue('checkout', 3)).toBe(3);
  });

  it('emits PROVIDER_CONFIGURATION_CHANGED with the flag names on a change from another instance and on invalidation', async () => {
    const { client, store, bus } = await setUp();
    const changes: string[][] = [];
    client.addHandler(ProviderEvents.ConfigurationChanged, (event?: EventDetails) => changes.push([...((event?.flagsChanged as string[] | undefined) ?? [])]));
    const other = createFeatureFlagClient({ store, bus });
    await other.start();
    await other.updateFlag('checkout', { rolloutPercentage: 0 });
    await until(() => changes.length > 0, 'the change event');
    expect(changes).toEqual([['checkout']]);
    expect(await client.getBooleanValue('checkout', true, { targetingKey: 'alice' })).toBe(false);

    await store.update('legacy', { enabled: true }, 'behind its back');
    await other.invalidate(['feature_flags:legacy']);
    await until(() => changes.length > 1, 'the invalidation event');
    expect(changes).toEqual([['checkout'], ['legacy']]);
    expect(await client.getBooleanValue('legacy', false)).toBe(true);
    await other.close();
  });

  it('rejects options without a flag client', () => {
    expect(() => createAikbProvider({} as never)).toThrow(/flags must be a FeatureFlagClient/);
  });
});
