/** Test helpers shared by every package's suites (imported as `@aikb/test-support`). */
export { servicesRequired, testDatabaseUrl, testRedisUrl } from './services';
export { createIsolatedPostgres, createTemporaryDatabase, describeEachDatabase, testBackends, type TestBackend } from './databases';
export { describeWithRedis } from './redis';
export {
  createThrowawayPostgres,
  createThrowawayRedis,
  freePort,
  hasPostgresBinaries,
  hasRedisServer,
  useThrowawayRedis,
  type ThrowawayPostgres,
  type ThrowawayRedis,
} from './throwaway';
export { createRecordingMeter, type RecordedPoint, type RecordingMeter } from './metrics';
export { createManualClock, type ManualClock } from './clock';
export { settle, until } from './until';
export { createRecordingLogger, type LoggedLine, type RecordingLogger } from './logger';
export { createFakeClock, type FakeClock } from './clock';
export { describePostgresStoreOptions } from './store-options';
export { seededRandom } from './random';
