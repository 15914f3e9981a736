/**
 * What users install is the tarball, not the source: pack every publishable workspace package,
 * unpack it into a plain project and load each entry point from a plain Node script, as ESM and
 * as CommonJS.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../..', import.meta.url));

interface Manifest {
  name: string;
  private?: boolean;
  exports?: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const rootManifest = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { workspaces: string[] };
const packages = rootManifest.workspaces
  .map((dir) => ({ dir: path.join(repo, dir), manifest: JSON.parse(readFileSync(path.join(repo, dir, 'package.json'), 'utf8')) as Manifest }))
  .filter((p) => !p.manifest.private);

// Inside the repository, so that peer dependencies (pg, express, ...) resolve from its node_modules
// the way they would from a user's; the packed packages shadow the workspace links.
let project: string;
const tarballs = new Map<string, string>();

beforeAll(() => {
  mkdirSync(path.join(repo, '.tmp'), { recursive: true });
  project = mkdtempSync(path.join(repo, '.tmp', 'pack-smoke-'));
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'pack-smoke', private: true }));
  // In dependency order: each package's type build reads the previous one's output.
  for (const { dir, manifest } of packages) {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', project], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [{ filename }] = JSON.parse(out.slice(out.indexOf('['))) as [{ filename: string }];
    tarballs.set(manifest.name, path.join(project, filename));
    const target = path.join(project, 'node_modules', manifest.name);
    mkdirSync(target, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(project, filename), '-C', target, '--strip-components=1']);
  }
}, 240_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** DefinitelyTyped's name for a package's types: `express` → `@types/express`, `@a/b` → `@types/a__b`. */
function typesPackageOf(name: string): string {
  return `@types/${name.startsWith('@') ? name.slice(1).replace('/', '__') : name}`;
}

/** Whether the installed package carries its own type declarations. */
function shipsTypes(name: string): boolean {
  const dir = path.join(repo, 'node_modules', name);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { types?: string; typings?: string; exports?: unknown };
  return Boolean(manifest.types ?? manifest.typings) || JSON.stringify(manifest.exports ?? {}).includes('"types"') || existsSync(path.join(dir, 'index.d.ts'));
}

function subpaths(manifest: Manifest): string[] {
  return Object.entries(manifest.exports ?? {})
    .filter(([, target]) => typeof target === 'object')
    .map(([subpath]) => (subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`));
}

function runNode(file: string, source: string): string[] {
  writeFileSync(path.join(project, file), source);
  const out = execFileSync(process.execPath, [file], { cwd: project, encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

describe.each(packages.map((p) => [p.manifest.name, p] as const))('the packed %s', (_name, { manifest }) => {
  it('ships only dist and its manifest, and passes publint', () => {
    const packed = JSON.parse(readFileSync(path.join(project, 'node_modules', manifest.name, 'package.json'), 'utf8')) as Manifest & { files: string[] };
    expect(packed.files).toEqual(['dist']);
    execFileSync('npx', ['publint', '--strict'], { cwd: path.join(project, 'node_modules', manifest.name), encoding: 'utf8' });
  });

  it('passes @arethetypeswrong/cli: types resolve for node10, node16 (CJS and ESM) and bundler', () => {
    const attw = path.join(repo, 'node_modules', '.bin', 'attw');
    try {
      execFileSync(attw, [tarballs.get(manifest.name)!, '--no-definitely-typed', '--format', 'ascii'], {
        cwd: project,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`attw found problems in ${manifest.name}:\n${stdout ?? ''}${stderr ?? ''}`);
    }
  });

  it('declares every package its JavaScript and type declarations import, and the @types of those that ship none', () => {
    const packed = path.join(project, 'node_modules', manifest.name);
    const mine = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    const missing = new Set<string>();
    for (const file of readdirSync(path.join(packed, 'dist'), { recursive: true, encoding: 'utf8' })) {
      if (!/\.(c?js|d\.c?ts)$/.test(file)) continue;
      const isTypes = /\.d\.c?ts$/.test(file);
      for (const { fileName } of ts.preProcessFile(readFileSync(path.join(packed, 'dist', file), 'utf8'), true, true).importedFiles) {
        if (fileName.startsWith('.') || fileName.startsWith('node:') || builtinModules.includes(fileName)) continue;
        const name = packageNameOf(fileName);
        if (name === manifest.name) continue;
        if (!mine.has(name)) missing.add(name);
        else if (isTypes && !shipsTypes(name) && !mine.has(typesPackageOf(name))) missing.add(typesPackageOf(name));
      }
    }
    expect([...missing]).toEqual([]);
  });

  it.each(subpaths(manifest))('loads %s from ESM and from CommonJS with the same exports', (specifier) => {
    const esm = runNode('esm.mjs', `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()));`);
    const cjs = runNode('cjs.cjs', `const m = require(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m).sort()));`);
    expect(esm.length).toBeGreaterThan(0);
    expect(cjs).toEqual(esm.filter((key) => key !== 'default'));
  });
});

describe('the packed @aikb/core entry points', () => {
  const drivers = ['pg', 'pg-pool', 'ioredis', '@electric-sql/pglite', '@electric-sql/pglite-pgvector', '@node-rs/argon2', 'pgvector'];
  // What only logins, tokens and login rate limits need: argon2's native binary, JWTs, rate limits.
  const authDependencies = ['@node-rs/argon2', 'jose', 'rate-limiter-flexible'];
  const core = packages.find((p) => p.manifest.name === '@aikb/core')!;
  const packageOf = `(f) => /^((?:@[^/]+\\/)?[^/]+)\\//.exec(f.slice(f.lastIndexOf('/node_modules/') + 14))?.[1]`;

  /** The packages of node_modules that `require(specifier)` loads, from CommonJS. */
  function requiredPackages(specifier: string): string[] {
    return runNode(
      'drivers.cjs',
      `require(${JSON.stringify(specifier)});
       const names = Object.keys(require.cache).filter((f) => f.includes('/node_modules/')).map(${packageOf}).filter(Boolean);
       console.log(JSON.stringify([...new Set(names)]));`,
    );
  }

  /** The packages of node_modules that `import(specifier)` loads, from ESM, as seen by a resolve hook. */
  function importedPackages(specifier: string): string[] {
    const log = path.join(project, 'resolved.log');
    writeFileSync(log, '');
    writeFileSync(
      path.join(project, 'log-hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
       export async function resolve(specifier, context, next) {
         const resolved = await next(specifier, context);
         appendFileSync(${JSON.stringify(log)}, resolved.url + '\\n');
         return resolved;
       }`,
    );
    writeFileSync(path.join(project, 'log-register.mjs'), `import { register } from 'node:module'; register('./log-hooks.mjs', import.meta.url);`);
    writeFileSync(path.join(project, 'imports.mjs'), `await import(${JSON.stringify(specifier)});`);
    execFileSync(process.execPath, ['--import', './log-register.mjs', 'imports.mjs'], { cwd: project, encoding: 'utf8' });
    const files = readFileSync(log, 'utf8')
      .split('\n')
      .filter((url) => url.startsWith('file:') && url.includes('/node_modules/'));
    expect(files.some((f) => f.includes('/node_modules/@aikb/core/'))).toBe(true);
    const names = files.map((url) => /^((?:@[^/]+\/)?[^/]+)\//.exec(url.slice(url.lastIndexOf('/node_modules/') + 14))?.[1]);
    return [...new Set(names.filter((name): name is string => Boolean(name)))];
  }

  it.each(subpaths(core.manifest))('%s loads no database or Redis driver until one is used', (specifier) => {
    expect(requiredPackages(specifier).filter((name) => drivers.includes(name))).toEqual([]);
  });

  it.each(subpaths(core.manifest).filter((specifier) => specifier !== '@aikb/core' && specifier !== '@aikb/core/auth'))(
    '%s loads none of the auth dependencies (argon2, jose, rate-limiter-flexible), from CommonJS or ESM',
    (specifier) => {
      expect(requiredPackages(specifier).filter((name) => authDependencies.includes(name))).toEqual([]);
      expect(importedPackages(specifier).filter((name) => authDependencies.includes(name))).toEqual([]);
    },
  );

  it('sees the auth dependencies load where they are used: the check can fail', () => {
    expect(requiredPackages('@aikb/core/auth')).toEqual(expect.arrayContaining(['jose', 'rate-limiter-flexible']));
    expect(importedPackages('@aikb/core/auth')).toEqual(expect.arrayContaining(['jose', 'rate-limiter-flexible']));
  });
});
