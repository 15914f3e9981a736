import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Tests import workspace packages from source: no build is needed to run them. */
const alias = [
  { find: /^@aikb\/core$/, replacement: src('./packages/core/src/index.ts') },
  { find: /^@aikb\/core\/(.+)$/, replacement: src('./packages/core/src/$1/index.ts') },
  { find: /^@aikb\/express$/, replacement: src('./packages/express-adapter/src/index.ts') },
  { find: /^@aikb\/openfeature$/, replacement: src('./packages/openfeature-provider/src/index.ts') },
  { find: /^@aikb\/prometheus$/, replacement: src('./packages/prometheus/src/index.ts') },
  { find: /^@aikb\/test-support$/, replacement: src('./packages/core/test/support/index.ts') },
];

export default defineConfig({
  resolve: { alias },
  test: {
    // In CI: every test by name (suite titles say [pglite] / [postgres]) and a JSON summary for .ci/run.
    reporters: process.env.CI ? ['verbose', ['json', { outputFile: '.tmp/vitest-results.json' }]] : ['default'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: [src('./packages/core/test/support/global-setup.ts')],
    projects: [
      { extends: true, test: { name: 'core', root: src('./packages/core'), include: ['src/**/*.test.ts', 'test/**/*.test.ts'] } },
      { extends: true, test: { name: 'express', root: src('./packages/express-adapter'), include: ['src/**/*.test.ts', 'test/**/*.test.ts'] } },
      { extends: true, test: { name: 'openfeature', root: src('./packages/openfeature-provider'), include: ['src/**/*.test.ts', 'test/**/*.test.ts'] } },
      { extends: true, test: { name: 'prometheus', root: src('./packages/prometheus'), include: ['src/**/*.test.ts', 'test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'reference-server',
          root: src('./examples/reference-server'),
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          globalSetup: [src('./packages/core/test/support/global-setup.ts'), src('./examples/reference-server/test/build.global-setup.ts')],
        },
      },
    ],
  },
});
