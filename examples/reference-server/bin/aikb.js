#!/usr/bin/env node
// The `aikb` command as npm links it. The CLI itself is bundled into dist/ by `npm run build`;
// this launcher exists before any build, so `npm install` always links `aikb` and `npx aikb` in
// the repository never falls through to the npm registry.
try {
  await import('../dist/aikb.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/aikb.js')) throw error;
  process.stderr.write('aikb: the CLI is not built yet: run `npm run build` in the repository\n');
  process.exitCode = 2;
}
