/**
 * The root entry point `@aikb/core` is the union of the subpath entry points (`@aikb/core/db`,
 * `@aikb/core/flags`, ...) named in the `exports` map: a name added to a subpath must be added to
 * the root as well (or listed below as a deliberate difference), so the two never drift apart.
 * And the public API is aikb's own: no entry point re-exports a dependency's values or types.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const core = fileURLToPath(new URL('..', import.meta.url));

/**
 * Deliberate differences between the root and the union of the subpaths; each entry says why.
 *
 * - Modules of `src/` that have no subpath of their own and are exported from the root only:
 *   `errors.ts` (`AikbError` and its subclasses: every primitive throws them, so they belong to
 *   no single subpath), `logger.ts` (the `Logger` interface every primitive accepts), `clock.ts`
 *   (the `Clock` every primitive that reads time accepts) and `principal.ts` (the caller, as the
 *   auth layer produces it and search consumes it).
 * - Names a subpath exports that the root leaves out: `@aikb/core/options` is a tool for adapter
 *   authors (the options check every factory runs), not a primitive, so it stays on its subpath.
 */
const rootOnlyModules: readonly string[] = ['errors.ts', 'logger.ts', 'clock.ts', 'principal.ts'];
const onlyInSubpaths: ReadonlySet<string> = new Set<string>(['checkOptions', 'checkObject', 'OptionChecks']);

/** Source entry of each export: `"./db"` → `src/db/index.ts`, `"."` → `src/index.ts`. */
const entries = Object.entries((JSON.parse(readFileSync(path.join(core, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports)
  .filter(([, target]) => typeof target === 'object')
  .map(([subpath]) => ({ subpath, file: path.join(core, 'src', subpath === '.' ? 'index.ts' : `${subpath.slice(2)}/index.ts`) }));

const program = ts.createProgram(
  entries.map((e) => e.file),
  {
    strict: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    noEmit: true,
  },
);
const checker = program.getTypeChecker();

interface Exported {
  /** `value` when importable at run time, `type` when only by `import type`. */
  kind: 'value' | 'type';
  /** Where the exported thing is declared. */
  declaredIn: string;
}

/** Every name an entry point exports, with its kind and where it is declared. */
function exportsOf(file: string): Map<string, Exported> {
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`${file} is not in the program`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error(`${file} has no exports`);
  const result = new Map<string, Exported>();
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    const typeOnly =
      symbol.declarations?.some((d) => ts.isTypeOnlyExportDeclaration(d) || (ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly))) ?? false;
    const kind = !typeOnly && target.flags & ts.SymbolFlags.Value ? 'value' : 'type';
    const declaredIn = target.declarations?.[0]?.getSourceFile().fileName ?? '';
    result.set(symbol.name, { kind, declaredIn });
  }
  return result;
}

const root = exportsOf(entries.find((e) => e.subpath === '.')!.file);
const subpaths = entries.filter((e) => e.subpath !== '.').map((e) => ({ ...e, exported: exportsOf(e.file) }));
const onlyInRoot: ReadonlySet<string> = new Set(
  [...root].filter(([, e]) => rootOnlyModules.some((file) => e.declaredIn === path.join(core, 'src', file))).map(([name]) => name),
);
const union = new Map<string, Exported & { subpath: string }>();
for (const { subpath, exported } of subpaths) for (const [name, e] of exported) union.set(name, { ...e, subpath });

describe('the root entry point @aikb/core', () => {
  it('finds every subpath entry point of the exports map', () => {
    expect(subpaths.map((s) => s.subpath)).toEqual(expect.arrayContaining(['./db', './flags', './health']));
    for (const { subpath, exported } of subpaths) expect(exported.size, subpath).toBeGreaterThan(0);
  });

  it('exports every name a subpath exports', () => {
    const missing = [...union].filter(([name]) => !root.has(name) && !onlyInSubpaths.has(name)).map(([name, e]) => `${name} (${e.subpath})`);
    expect(missing).toEqual([]);
  });

  it('exports the root-only modules (errors, logger)', () => {
    expect([...onlyInRoot]).toEqual(expect.arrayContaining(['AikbError', 'ValidationError', 'Logger', 'noopLogger']));
  });

  it('exports nothing no subpath exports', () => {
    expect([...root.keys()].filter((name) => !union.has(name) && !onlyInRoot.has(name))).toEqual([]);
  });

  it('exports each name as the same thing, and as a value exactly where the subpath does', () => {
    const differing = [...root]
      .filter(([name]) => union.has(name))
      .filter(([name, e]) => e.kind !== union.get(name)!.kind || e.declaredIn !== union.get(name)!.declaredIn)
      .map(([name, e]) => `${name}: root ${e.kind}, ${union.get(name)!.subpath} ${union.get(name)!.kind}`);
    expect(differing).toEqual([]);
  });

  it('has the same run-time exports as the union of the subpaths', async () => {
    const runtime = async (file: string) => Object.keys((await import(file)) as object);
    const rootNames = await runtime(entries.find((e) => e.subpath === '.')!.file);
    const subpathNames = new Set((await Promise.all(subpaths.map((s) => runtime(s.file)))).flat());
    expect(rootNames.filter((n) => !onlyInRoot.has(n)).sort()).toEqual([...subpathNames].filter((n) => !onlyInSubpaths.has(n)).sort());
  });
});

describe('the public API of @aikb/core', () => {
  it.each(entries.map((e) => [e.subpath, e.file] as const))('%s re-exports nothing declared by a dependency', (_subpath, file) => {
    const foreign = [...exportsOf(file)]
      .filter(([, e]) => e.declaredIn.includes(`${path.sep}node_modules${path.sep}`))
      .map(([name, e]) => `${name} (${e.declaredIn.slice(e.declaredIn.lastIndexOf('node_modules'))})`);
    expect(foreign).toEqual([]);
  });

  it('keeps the murmur3 hash internal: flags export rolloutBucket, not the hash it is built on', () => {
    expect([...root.keys(), ...union.keys()].filter((name) => /murmur/i.test(name))).toEqual([]);
  });
});
