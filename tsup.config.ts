/**
 * One build configuration for every workspace package, run from the package's own folder
 * (`tsup --config ../../tsup.config.ts`).
 *
 * - A library package (has an `exports` map) is built to ESM + CJS + `.d.ts`; its entry points are
 *   derived from the `exports` map, so adding a subpath export is the only step to add an entry.
 * - An application package (private, has a `bin`) is bundled to ESM with the `@aikb/*` workspace
 *   packages compiled from source, so `npm start` needs no prior library build.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { defineConfig, type Options } from 'tsup';

const root = path.dirname(fileURLToPath(import.meta.url));

interface PackageJson {
  name: string;
  private?: boolean;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
}

function libraryEntries(pkg: PackageJson): Record<string, string> {
  const entry: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    if (typeof target !== 'object') continue; // "./package.json"
    const name = subpath === '.' ? 'index' : `${subpath.slice(2)}/index`;
    entry[name] = `src/${name}.ts`;
  }
  return entry;
}

/**
 * One entry per `bin`: `./dist/<name>.js`, or a committed launcher `./bin/<name>.js` that imports
 * `../dist/<name>.js` (it exists before the build, so `npm install` links it); built from
 * `src/<name>.ts` either way.
 */
function applicationEntries(pkg: PackageJson): Record<string, string> {
  const entry: Record<string, string> = {};
  for (const target of Object.values(pkg.bin ?? {})) {
    const name = path.basename(target, '.js');
    entry[name] = `src/${name}.ts`;
  }
  return entry;
}

/** Workspace packages compiled from source into applications. */
const workspaceSource: Record<string, string> = {
  '@aikb/core': path.join(root, 'packages/core/src'),
  '@aikb/express': path.join(root, 'packages/express-adapter/src'),
  '@aikb/openfeature': path.join(root, 'packages/openfeature-provider/src'),
  '@aikb/prometheus': path.join(root, 'packages/prometheus/src'),
};

export default defineConfig((): Options => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson;
  const base: Options = {
    target: 'node20',
    platform: 'node',
    sourcemap: true,
    clean: true,
    outDir: 'dist',
    silent: true,
  };
  if (pkg.private && pkg.bin) {
    return {
      ...base,
      entry: applicationEntries(pkg),
      format: ['esm'],
      dts: false,
      splitting: true,
      noExternal: [/^@aikb\//],
      esbuildOptions(options) {
        options.alias = workspaceSource;
      },
    };
  }
  return {
    ...base,
    entry: libraryEntries(pkg),
    format: ['esm', 'cjs'],
    dts: true,
    splitting: true,
    treeshake: true,
  };
});
