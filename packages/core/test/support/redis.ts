import { describe, it } from 'vitest';
import { servicesRequired, testRedisUrl } from './services';

/**
 * Declares a suite that needs the shared test Redis. Without `AIKB_TEST_REDIS_URL` it is skipped
 * with a title that says why, or, under `AIKB_REQUIRE_SERVICES=1`, fails.
 */
export function describeWithRedis(title: string, suite: (redisUrl: string) => void): void {
  const url = testRedisUrl;
  if (url) {
    describe(`${title} [redis]`, () => suite(url));
    return;
  }
  if (servicesRequired) {
    describe(`${title} [redis]`, () => {
      it('needs AIKB_TEST_REDIS_URL (AIKB_REQUIRE_SERVICES=1)', () => {
        throw new Error('AIKB_TEST_REDIS_URL is not set');
      });
    });
    return;
  }
  describe.skip(`${title} [redis] (skipped: AIKB_TEST_REDIS_URL not set)`, () => suite(''));
}
