/**
 * What users install is the tarball, not the source: pack every publishable workspace package,
 * unpack it into a plain project and load each entry point from a plain Node script, as ESM and
 * as CommonJS.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../..', import.meta.url));

interface Manifest {
  name: string;
  private?: boolean;
  exports?: Record<string, unknown>;
}

const rootManifest = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { workspaces: string[] };
const packages = rootManifest.workspaces
  .map((dir) => ({ dir: path.join(repo, dir), manifest: JSON.parse(readFileSync(path.join(repo, dir, 'package.json'), 'utf8')) as Manifest }))
  .filter((p) => !p.manifest.private);

// Inside the repository, so that peer dependencies (pg, express, ...) resolve from its node_modules
// the way they would from a user's; the packed packages shadow the workspace links.
let project: string;

beforeAll(() => {
  mkdirSync(path.join(repo, '.tmp'), { recursive: true });
  project = mkdtempSync(path.join(repo, '.tmp', 'pack-smoke-'));
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'pack-smoke', private: true }));
  // In dependency order: each package's type build reads the previous one's output.
  for (const { dir, manifest } of packages) {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', project], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [{ filename }] = JSON.parse(out.slice(out.indexOf('['))) as [{ filename: string }];
    const target = path.join(project, 'node_modules', manifest.name);
    mkdirSync(target, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(project, filename), '-C', target, '--strip-components=1']);
  }
}, 240_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

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

describe.each(packages.map((p) => [p.manifest.name, p] as const))('the packed %s', (_name, { dir, manifest }) => {
  it('ships only dist and its manifest, and passes publint', () => {
    const packed = JSON.parse(readFileSync(path.join(project, 'node_modules', manifest.name, 'package.json'), 'utf8')) as Manifest & { files: string[] };
    expect(packed.files).toEqual(['dist']);
    execFileSync('npx', ['publint', '--strict'], { cwd: path.join(project, 'node_modules', manifest.name), encoding: 'utf8' });
    expect(dir).toBeTruthy();
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
  const core = packages.find((p) => p.manifest.name === '@aikb/core')!;

  it.each(subpaths(core.manifest))('%s loads no database or Redis driver until one is used', (specifier) => {
    const loaded = runNode(
      'drivers.cjs',
      `require(${JSON.stringify(specifier)});
       const names = Object.keys(require.cache)
         .filter((f) => f.includes('/node_modules/'))
         .map((f) => /^((?:@[^/]+\\/)?[^/]+)\\//.exec(f.slice(f.lastIndexOf('/node_modules/') + 14))?.[1])
         .filter(Boolean);
       console.log(JSON.stringify([...new Set(names)]));`,
    );
    expect(loaded.filter((name) => drivers.includes(name))).toEqual([]);
  });
});
