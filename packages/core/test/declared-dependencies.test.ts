/**
 * Every workspace package declares what its shipped source imports, and declares nothing it does
 * not use: a user installs exactly the dependencies listed, not the repository's hoisted
 * node_modules. Tests and contract suites (`*.test.ts`, `*.contract.ts`) are not shipped and
 * are left out.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../..', import.meta.url));

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const readManifest = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;

const workspaces = (readManifest(repo) as Manifest & { workspaces: string[] }).workspaces.map((dir) => ({
  dir: path.join(repo, dir),
  manifest: readManifest(path.join(repo, dir)),
}));

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
function packageNameOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function shippedSources(dir: string): string[] {
  return readdirSync(path.join(dir, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !/\.(test|contract)\.ts$/.test(file))
    .map((file) => path.join(dir, 'src', file));
}

/** `require.resolve('pkg/…')` or `createRequire(…).resolve('pkg/…')`: a package located at run time (a worker thread's import). */
const RESOLVED = /\.resolve\(\s*['"]([^'"./][^'"]*)['"]\s*\)/g;

/** Bare package names imported (statically, dynamically or as `import type`) or resolved at run time by the files. */
function importedPackages(files: string[]): Map<string, string> {
  const imported = new Map<string, string>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const resolved = [...text.matchAll(RESOLVED)].map((m) => ({ fileName: m[1]! }));
    for (const { fileName } of [...ts.preProcessFile(text, true, true).importedFiles, ...resolved]) {
      if (fileName.startsWith('.') || fileName.startsWith('node:') || builtinModules.includes(fileName)) continue;
      const name = packageNameOf(fileName);
      if (!imported.has(name)) imported.set(name, path.relative(repo, file));
    }
  }
  return imported;
}

const declared = (m: Manifest) => new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})]);

describe.each(workspaces.map((w) => [w.manifest.name, w] as const))('%s', (_name, { dir, manifest }) => {
  const imported = importedPackages(shippedSources(dir));

  it('declares every package its source imports in dependencies or peerDependencies', () => {
    const mine = declared(manifest);
    const undeclared = [...imported].filter(([name]) => name !== manifest.name && !mine.has(name)).map(([name, file]) => `${name} (imported by ${file})`);
    expect(undeclared).toEqual([]);
  });

  it('lists no dependency its source does not import (a workspace package it uses may need it at run time)', () => {
    // An application bundles the workspace packages it uses, so their dependencies and peers are its own.
    const viaWorkspace = new Set(workspaces.filter((w) => declared(manifest).has(w.manifest.name)).flatMap((w) => [...declared(w.manifest)]));
    const unused = Object.keys(manifest.dependencies ?? {}).filter((name) => !imported.has(name) && !viaWorkspace.has(name) && !name.startsWith('@types/'));
    expect(unused).toEqual([]);
  });
});
