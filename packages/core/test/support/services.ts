/**
 * Which external services the test run uses. Suites that need Postgres or Redis read
 * `AIKB_TEST_DATABASE_URL` / `AIKB_TEST_REDIS_URL`. Where unset, Postgres suites run on embedded
 * PGlite only and Redis-only suites are skipped (saying so); with `AIKB_REQUIRE_SERVICES=1` a
 * missing service fails the run instead.
 */
export const testDatabaseUrl: string | undefined = process.env.AIKB_TEST_DATABASE_URL || undefined;
export const testRedisUrl: string | undefined = process.env.AIKB_TEST_REDIS_URL || undefined;
export const servicesRequired: boolean = process.env.AIKB_REQUIRE_SERVICES === '1';
