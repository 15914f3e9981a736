import { describe, expect, it } from 'vitest';
import {
  adminGuard,
  cacheRouter,
  errorHandler,
  errorMetricsRouter,
  featureFlagsRouter,
  healthRouter,
  httpMetrics,
  jsonBody,
  leakHuntRouter,
  loginHandler,
  poolStatsRouter,
  requestLogging,
  requireRole,
  requireUser,
  systemStatusRouter,
  tracesRouter,
  tracing,
  usersRouter,
} from './index';

// Options are passed untyped on purpose: these are the mistakes a JavaScript caller (or a cast) makes.
const call =
  (factory: unknown, ...args: unknown[]) =>
  () =>
    (factory as (...a: unknown[]) => unknown)(...args);
const fn = () => undefined;
const service = (...methods: string[]) => Object.fromEntries(methods.map((m) => [m, fn]));
const flags = service('evaluate', 'getFlag', 'listFlags', 'putFlag', 'updateFlag', 'invalidate', 'propagation', 'stats');
const registry = service('check');
const monitor = service('stats', 'subscribe', 'startLeakHunt', 'stopLeakHunt');
const authenticator = { ...service('begin'), floorMs: 500 };
const tokens = service('issue');
const sessions = service('verify', 'invalidate');

/** [factory name, call, the option the TypeError must name] */
const cases: [string, () => unknown, string][] = [
  ['featureFlagsRouter({})', call(featureFlagsRouter, {}), 'flags'],
  ['featureFlagsRouter()', call(featureFlagsRouter), 'options'],
  ['featureFlagsRouter({ flags: 1 })', call(featureFlagsRouter, { flags: 1 }), 'flags'],
  ['featureFlagsRouter({ actor: "x" })', call(featureFlagsRouter, { flags, actor: 'admin' }), 'actor'],
  ['cacheRouter({})', call(cacheRouter, {}), 'flags'],
  ['cacheRouter({ flags: {} })', call(cacheRouter, { flags: {} }), 'flags'],
  ['usersRouter({})', call(usersRouter, {}), 'users'],
  ['usersRouter({ maxBodyBytes: 0 })', call(usersRouter, { users: service('add', 'get', 'list', 'update', 'remove'), maxBodyBytes: 0 }), 'maxBodyBytes'],
  ['usersRouter({ actor: 1 })', call(usersRouter, { users: service('add', 'get', 'list', 'update', 'remove'), actor: 1 }), 'actor'],
  ['healthRouter({})', call(healthRouter, {}), 'registry'],
  ['healthRouter({ now: 1 })', call(healthRouter, { registry, now: 1 }), 'now'],
  ['healthRouter({ extra: {} })', call(healthRouter, { registry, extra: {} }), 'extra'],
  ['healthRouter({ tracing: "yes" })', call(healthRouter, { registry, tracing: 'yes' }), 'tracing'],
  ['poolStatsRouter()', call(poolStatsRouter), 'monitor'],
  ['leakHuntRouter()', call(leakHuntRouter), 'monitor'],
  ['leakHuntRouter(monitor, 5)', call(leakHuntRouter, monitor, 5), 'options'],
  ['leakHuntRouter(monitor, { maxMinutes: -1 })', call(leakHuntRouter, monitor, { maxMinutes: -1 }), 'maxMinutes'],
  ['tracesRouter()', call(tracesRouter), 'store'],
  ['errorMetricsRouter()', call(errorMetricsRouter, null), 'metrics'],
  ['systemStatusRouter()', call(systemStatusRouter, 'status'), 'status'],
  ['adminGuard(null)', call(adminGuard, null), 'options'],
  ['adminGuard({ adminToken: 1 })', call(adminGuard, { adminToken: 1 }), 'adminToken'],
  ['adminGuard({ role: "" })', call(adminGuard, { role: '' }), 'role'],
  ['adminGuard({ sessions: tokens })', call(adminGuard, { sessions: tokens }), 'sessions'],
  ['requireUser({})', call(requireUser, {}), 'sessions'],
  ['requireUser()', call(requireUser), 'options'],
  ['requireRole()', call(requireRole), 'role'],
  ['requireRole("")', call(requireRole, ''), 'role'],
  ['loginHandler({})', call(loginHandler, {}), 'authenticator'],
  ['loginHandler({ authenticator })', call(loginHandler, { authenticator }), 'tokens'],
  ['loginHandler({ maxBodyBytes: 1.5 })', call(loginHandler, { authenticator, tokens, maxBodyBytes: 1.5 }), 'maxBodyBytes'],
  ['loginHandler({ drainBodyBytes: -1 })', call(loginHandler, { authenticator, tokens, drainBodyBytes: -1 }), 'drainBodyBytes'],
  ['tracing("x")', call(tracing, 'X-Trace-ID'), 'options'],
  ['tracing({ header: "" })', call(tracing, { header: '' }), 'header'],
  ['tracing({ recorder: 1 })', call(tracing, { recorder: 1 }), 'recorder'],
  ['requestLogging({ logger: {} })', call(requestLogging, { logger: {} }), 'logger'],
  ['requestLogging({ child: 1 })', call(requestLogging, { child: 1 }), 'child'],
  ['requestLogging({ header: 5 })', call(requestLogging, { header: 5 }), 'header'],
  ['httpMetrics(5)', call(httpMetrics, 5), 'options'],
  ['httpMetrics({ meter: {} })', call(httpMetrics, { meter: {} }), 'meter'],
  ['httpMetrics({ buckets: [] })', call(httpMetrics, { buckets: [] }), 'buckets'],
  ['httpMetrics({ errorMetrics: 1 })', call(httpMetrics, { errorMetrics: 1 }), 'errorMetrics'],
  ['jsonBody(100)', call(jsonBody, 100), 'options'],
  ['jsonBody({ limit: NaN })', call(jsonBody, { limit: Number.NaN }), 'limit'],
  ['errorHandler({ logger: "console" })', call(errorHandler, { logger: 'console' }), 'logger'],
];

describe('adapter factories', () => {
  describe('validate their options at construction', () => {
    it.each(cases)('%s throws a TypeError naming the option', (_name, construct, option) => {
      expect(construct).toThrow(TypeError);
      expect(construct).toThrow(new RegExp(`^\\w+: ${option} must be `));
    });
  });

  it('accept valid options', () => {
    const valid: unknown[] = [
      featureFlagsRouter({ flags } as never),
      cacheRouter({ flags } as never),
      healthRouter({ registry } as never),
      poolStatsRouter(monitor as never),
      leakHuntRouter(monitor as never),
      adminGuard({}),
      adminGuard({ adminToken: '' }),
      adminGuard({ sessions } as never),
      requireUser({ sessions } as never),
      requireRole('admin'),
      loginHandler({ authenticator, tokens } as never),
      tracing(),
      requestLogging(),
      httpMetrics(),
      jsonBody(),
      errorHandler(),
    ];
    for (const made of valid) expect(typeof made).toBe('function');
  });
});
