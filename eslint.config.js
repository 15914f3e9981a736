// @ts-check
/**
 * ESLint for the whole repository: typescript-eslint's type-checked rules over the root tsconfig.json
 * (which covers packages/*\/src and test, examples/*\/src and test, bench/ and the root configs), and
 * eslint-config-prettier last so that formatting is Prettier's alone (`npm run format`).
 */
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Build output, caches and the embedded database's data dirs (`npm start` makes one).
  { ignores: ['**/dist/', '**/node_modules/', '.tmp/', 'coverage/', 'data/', 'examples/*/data/'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        // The root tsconfig, not `projectService`: the service would pick each package's own build
        // tsconfig.json, which leaves out the tests and resolves `@aikb/*` to built `dist` types.
        project: './tsconfig.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // A switch on a union lists every member or says `default:` for the rest on purpose; a
      // switch on a plain string or number always has a `default:`.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // `ignoreRestSiblings`: `const { leaks, ...rest } = x` is how a key is left out of a copy.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Off: an `async` method without `await` is how a memory store or a test double implements an
      // async interface, and `async` is what turns its validation throws into rejections, as the
      // real implementations' are. Dropping `async` to please the rule would make them throw
      // synchronously; no-floating-promises and no-misused-promises cover the mistakes that matter.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests read JSON as `any`, as supertest types `res.body` and `fetch().json()` returns it (and
    // the e2e helpers pass it on the same way), and vitest types its asymmetric matchers
    // (`expect.stringMatching(...)`) as `any`. The test's `expect` is the check of that shape;
    // typing each body would restate the assertion. The promise rules stay on in tests.
    files: ['**/*.test.ts', '**/test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Plain JavaScript (this file) is outside the TypeScript program.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
);
