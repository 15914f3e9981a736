import { describe, expect, it } from 'vitest';
import { createTemporaryDatabase, createThrowawayRedis, hasRedisServer, testDatabaseUrl } from '@aikb/test-support';
import { eventually, startServerProcess, useServerProcesses, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-0123456789';
const FLAG = 'priority_2_2_rbac_api_filtering';

const { running, cleanups } = useServerProcesses();

async function admin(server: ServerProcess, path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

describe.runIf(testDatabaseUrl && hasRedisServer())('aikb-server feature flags while Redis is down', () => {
  it('shows a change made through A on B within seconds, and A says that propagation is degraded', async () => {
    const database = await createTemporaryDatabase(testDatabaseUrl!);
    cleanups.push(database.drop);
    const redis = await createThrowawayRedis();
    cleanups.push(redis.kill);
    await redis.start();
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, ADMIN_TOKEN };
    const a = await startServerProcess(env);
    running.push(a);
    const b = await startServerProcess(env);
    running.push(b);
    const statusOnB = async () => (await admin(b, `/api/admin/feature-flags/${FLAG}/status?userId=test-user`)).body;
    const systemStatus = async (server: ServerProcess) => (await admin(server, '/api/admin/system/status')).body.subsystems.flags;
    const propagating = async () => (await systemStatus(a)).propagation.status === 'ok' && (await systemStatus(b)).propagation.status === 'ok';
    await eventually(propagating, 5000, 'both connected to Redis');
    expect(await statusOnB()).toMatchObject({ enabled: true, rolloutPercentage: 100 });
    const healthy = await admin(a, `/api/admin/feature-flags/${FLAG}`, { method: 'POST', body: '{"rolloutPercentage": 100}' });
    expect(healthy.body.propagation).toEqual({ bus: 'redis', status: 'ok', convergesWithinSeconds: 0 });

    await redis.kill();
    await eventually(
      async () => (await systemStatus(a)).bus.state === 'disconnected' && (await systemStatus(b)).bus.state === 'disconnected',
      5000,
      'both see Redis down',
    );

    const changed = await admin(a, `/api/admin/feature-flags/${FLAG}`, { method: 'POST', body: '{"rolloutPercentage": 0}' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ rolloutPercentage: 0, propagation: { bus: 'redis', status: 'degraded', convergesWithinSeconds: expect.any(Number) } });
    expect(changed.body.propagation.convergesWithinSeconds).toBeLessThanOrEqual(5);
    expect(changed.headers.get('aikb-propagation')).toBe('degraded');
    // B answers from its cache: the change reaches it through the store's change marker, not the TTL.
    await eventually(async () => (await statusOnB()).rolloutPercentage === 0, 5000, 'B sees the change made through A while Redis is down');
    expect(await statusOnB()).toMatchObject({ enabled: false, reason: 'STATIC' });
    expect(await systemStatus(b)).toMatchObject({ polling: true, propagation: { status: 'degraded' } });
    expect(await (await fetch(`${a.url}/metrics`)).text()).toContain('aikb_feature_flag_propagation_degraded 1');

    // Redis back: one reconciliation, polling stops, writes propagate over the bus again.
    await redis.start();
    await eventually(propagating, 15_000, 'propagation ok again');
    expect(await systemStatus(b)).toMatchObject({ polling: false, stale: false });
    const again = await admin(a, `/api/admin/feature-flags/${FLAG}`, { method: 'POST', body: '{"rolloutPercentage": 100}' });
    expect(again.body.propagation.status).toBe('ok');
    await eventually(async () => (await statusOnB()).rolloutPercentage === 100, 2000, 'B sees the change over Redis');
  });
});
