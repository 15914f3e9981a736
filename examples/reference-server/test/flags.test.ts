import { describe, expect, it } from 'vitest';
import { createTemporaryDatabase, testDatabaseUrl, testRedisUrl } from '@aikb/test-support';
import { curl as runbookCurl, eventually, startServerProcess, tempDataDir, useServerProcesses, type ServerProcess } from './harness';

const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

const { running, cleanups } = useServerProcesses();

/** A runbook curl command as written, plus the admin token the admin endpoints require. */
const curl = (server: ServerProcess, args: string[]) => runbookCurl(server, args, { token: ADMIN_TOKEN });

describe('aikb-server feature flags, with the runbook commands', () => {
  it('answers the runbook flag commands, and a change survives a restart on the embedded data dir', async () => {
    const data = tempDataDir();
    cleanups.push(data.cleanup);
    const env = { AIKB_DATA_DIR: data.dir, ADMIN_TOKEN };
    const server = await startServerProcess(env);
    running.push(server);

    // "Auth latency", step 1: the seeded flag, as the runbook expects it.
    const auth = await curl(server, ['http://localhost:3000/api/admin/feature-flags/priority_1_3_constant_time_auth']);
    expect(auth).toMatchObject({
      status: 200,
      body: { name: 'priority_1_3_constant_time_auth', enabled: true, rolloutPercentage: 100, description: 'Prevents timing attacks on auth' },
    });

    // "Flags not taking effect", step 2: cache status.
    const info = await curl(server, ['http://localhost:3000/api/admin/feature-flags?include=cache-info']);
    expect(info.status).toBe(200);
    expect(info.body.cacheAge).toEqual({ secondsSinceUpdate: expect.any(Number), ttl: 300 });
    expect(info.body.flags.map((f: { name: string }) => f.name)).toEqual(
      expect.arrayContaining([
        'priority_1_1_vector_validation',
        'priority_1_3_constant_time_auth',
        'priority_2_1_saga_pattern',
        'priority_2_2_rbac_api_filtering',
      ]),
    );

    // "Error rate spikes", step 3: disable the saga pattern (with the Content-Type header).
    const disabled = await curl(server, [
      '-X',
      'POST',
      'http://localhost:3000/api/admin/feature-flags/priority_2_1_saga_pattern',
      '-H',
      'Content-Type: application/json',
      '-d',
      '{"rolloutPercentage": 0}',
    ]);
    expect(disabled).toMatchObject({ status: 200, body: { rolloutPercentage: 0 } });

    // Standard deployment, step 5: the same without a Content-Type (curl sends form-urlencoded).
    const gradual = await curl(server, [
      '-X',
      'POST',
      'http://localhost:3000/api/admin/feature-flags/priority_2_1_saga_pattern',
      '-d',
      '{"rolloutPercentage": 10}',
    ]);
    expect(gradual).toMatchObject({ status: 200, body: { rolloutPercentage: 10 } });

    // Emergency rollback, step 1: short names match no flag; the operator sees it at once.
    const rollback = await curl(server, ['-X', 'POST', 'http://localhost:3000/api/admin/feature-flags/priority_2_2', '-d', '{"rolloutPercentage": 0}']);
    expect(rollback.status).toBe(404);
    expect(rollback.body).toMatchObject({ similar: ['priority_2_2_rbac_api_filtering'], detail: expect.stringMatching(/priority_2_2_rbac_api_filtering/) });
    const nothing = await curl(server, ['-X', 'POST', 'http://localhost:3000/api/admin/feature-flags/priority_2_4', '-d', '{"rolloutPercentage": 0}']);
    expect(nothing).toMatchObject({ status: 404, body: { similar: [] } });
    const invalid = await curl(server, [
      '-X',
      'POST',
      'http://localhost:3000/api/admin/feature-flags/priority_2_1_saga_pattern',
      '-d',
      '{"rolloutPercentage": 150}',
    ]);
    expect(invalid).toMatchObject({ status: 400, body: { field: 'rolloutPercentage' } });

    // Step 3, options A and B: invalidation.
    const one = await curl(server, [
      '-X',
      'POST',
      'http://localhost:3000/api/admin/cache/invalidate',
      '-H',
      'Content-Type: application/json',
      '-d',
      '{"keys": ["feature_flags:priority_2_1_saga_pattern"]}',
    ]);
    expect({ status: one.status, body: one.body }).toEqual({
      status: 200,
      body: { invalidated: ['feature_flags:priority_2_1_saga_pattern'], propagation: { bus: 'in-process', status: 'ok', convergesWithinSeconds: 0 } },
    });
    const all = await curl(server, [
      '-X',
      'POST',
      'http://localhost:3000/api/admin/cache/invalidate',
      '-H',
      'Content-Type: application/json',
      '-d',
      '{"keys": ["feature_flags:*"]}',
    ]);
    expect(all.body.invalidated).toHaveLength(4);

    // Step 4: the decision for a user.
    const status = await curl(server, ['http://localhost:3000/api/admin/feature-flags/priority_2_1_saga_pattern/status?userId=test-user']);
    expect(status.body).toMatchObject({
      name: 'priority_2_1_saga_pattern',
      userId: 'test-user',
      rolloutPercentage: 10,
      bucket: expect.any(Number),
      reason: 'SPLIT',
    });
    expect(status.body.enabled).toBe(status.body.bucket <= 10);

    const history = await curl(server, ['http://localhost:3000/api/admin/feature-flags/priority_2_1_saga_pattern/history']);
    expect(history.body.history.map((c: { after: { rolloutPercentage: number }; actor: string }) => [c.after.rolloutPercentage, c.actor])).toEqual([
      [10, 'admin-token'],
      [0, 'admin-token'],
      [100, 'seed'],
    ]);

    // Without the admin token: refused.
    const anonymous = await fetch(`${server.url}/api/admin/feature-flags`);
    expect(anonymous.status).toBe(401);

    // Step 5: restart; the change is still there and seeding did not overwrite it.
    expect(await server.stop('SIGTERM')).toBe(0);
    const again = await startServerProcess(env);
    running.push(again);
    const after = await curl(again, ['http://localhost:3000/api/admin/feature-flags/priority_2_1_saga_pattern']);
    expect(after).toMatchObject({ status: 200, body: { rolloutPercentage: 10, enabled: true } });
    const health = await fetch(`${again.url}/api/health`);
    expect(health.status).toBe(200);
  });
});

describe.runIf(testDatabaseUrl && testRedisUrl)('aikb-server feature flags across two instances on PostgreSQL and Redis', () => {
  it('shows a change made through instance A on instance B at once, without invalidating anything', async () => {
    const database = await createTemporaryDatabase(testDatabaseUrl!);
    cleanups.push(database.drop);
    const env = { DATABASE_URL: database.url, REDIS_URL: testRedisUrl!, ADMIN_TOKEN };
    const a = await startServerProcess(env);
    running.push(a);
    const b = await startServerProcess(env);
    running.push(b);
    const statusOnB = () => curl(b, ['http://localhost:3000/api/admin/feature-flags/priority_2_2_rbac_api_filtering/status?userId=test-user']);
    expect((await statusOnB()).body).toMatchObject({ enabled: true, rolloutPercentage: 100 });

    const changed = await curl(a, [
      '-X',
      'POST',
      'http://localhost:3000/api/admin/feature-flags/priority_2_2_rbac_api_filtering',
      '-d',
      '{"rolloutPercentage": 0}',
    ]);
    expect(changed.status).toBe(200);
    // B's status endpoint answers from its cache: no reload, no TTL wait.
    await eventually(async () => (await statusOnB()).body.rolloutPercentage === 0, 2000, 'B sees the change');
    expect((await statusOnB()).body).toMatchObject({ enabled: false, reason: 'STATIC', stale: false });
  });
});
